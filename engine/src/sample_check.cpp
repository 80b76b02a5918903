// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/sample_check.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "tatumflow/engine/bench_stats.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::sample_check {

namespace fs = std::filesystem;

namespace {

// The writer rounds times to 0.5 ms ticks.
constexpr std::int64_t kOnsetToleranceUs = 500;

void add_clips(const Performance& performance, std::int64_t clip_us, CorpusClips& out) {
  const std::vector<ClipStats> clips = performance_clips(performance, clip_us);
  out.clips.insert(out.clips.end(), clips.begin(), clips.end());
  ++out.performances;
}

}  // namespace

ClipStats clip_stats(const Performance& performance, std::int64_t start_us, std::int64_t length_us) {
  if (length_us <= 0) throw std::invalid_argument("clip length " + std::to_string(length_us) + " us");
  const auto& notes = performance.notes;
  const auto first = std::lower_bound(notes.begin(), notes.end(), start_us,
                                      [](const Note& note, std::int64_t t) { return note.onset_us < t; });
  const auto last = std::lower_bound(first, notes.end(), start_us + length_us,
                                     [](const Note& note, std::int64_t t) { return note.onset_us < t; });
  ClipStats stats;
  stats.notes = static_cast<std::size_t>(last - first);
  if (stats.notes == 0) return stats;
  const auto [low, high] =
      std::minmax_element(first, last, [](const Note& a, const Note& b) { return a.pitch < b.pitch; });
  stats.pitch_range = double(high->pitch) - double(low->pitch);
  stats.notes_per_second = double(stats.notes) / (double(length_us) * 1e-6);
  return stats;
}

std::vector<ClipStats> performance_clips(const Performance& performance, std::int64_t clip_us) {
  if (clip_us <= 0) throw std::invalid_argument("clip length " + std::to_string(clip_us) + " us");
  const auto end_us = static_cast<std::int64_t>(performance.seconds() * 1e6);
  std::vector<ClipStats> clips;
  for (std::int64_t start = 0; start + clip_us <= end_us; start += clip_us) {
    const ClipStats stats = clip_stats(performance, start, clip_us);
    if (stats.notes > 0) clips.push_back(stats);
  }
  return clips;
}

CorpusClips cache_clips(const fs::path& cache_dir, std::int64_t clip_us, std::string_view performer) {
  const dataset::TokenCache cache = dataset::TokenCache::open(cache_dir);
  CorpusClips out;
  for (std::size_t i = 0; i < cache.performances().size(); ++i) {
    const dataset::CachedPerformance& record = cache.performances()[i];
    if (record.split != dataset::Split::kTrain || !dataset::performer_matches(record.performer, performer))
      continue;
    add_clips(tokens::decode(cache.tokens(i)), clip_us, out);
  }
  return out;
}

CorpusClips file_clips(std::span<const fs::path> files, std::int64_t clip_us) {
  CorpusClips out;
  for (const fs::path& file : files) {
    try {
      add_clips(read_smf(file), clip_us, out);
    } catch (const SmfError&) {
      ++out.unreadable_files;  // the corpus' own bad files do not void the band
    }
  }
  return out;
}

CorpusBands corpus_bands(const std::vector<ClipStats>& clips, double low_percent, double high_percent) {
  if (clips.empty()) throw std::invalid_argument("corpus bands of no clips");
  if (!(low_percent >= 0.0 && low_percent <= high_percent && high_percent <= 100.0)) {
    throw std::invalid_argument("corpus band percents " + std::to_string(low_percent) + ", " +
                                std::to_string(high_percent) + " (need 0 <= low <= high <= 100)");
  }
  std::vector<double> ranges;
  std::vector<double> densities;
  for (const ClipStats& clip : clips) {
    ranges.push_back(clip.pitch_range);
    densities.push_back(clip.notes_per_second);
  }
  CorpusBands bands;
  bands.low_percent = low_percent;
  bands.high_percent = high_percent;
  bands.pitch_range = {percentile(ranges, low_percent), percentile(ranges, high_percent)};
  bands.notes_per_second = {percentile(densities, low_percent), percentile(densities, high_percent)};
  return bands;
}

SampleCheck check_sample_file(const fs::path& file, const Performance& written, std::int64_t clip_us) {
  SampleCheck check;
  Performance reread;
  SmfReadReport report;
  try {
    reread = read_smf(file, &report);
  } catch (const SmfError& e) {
    check.error = e.what();
    return check;
  }
  check.notes = reread.notes.size();
  check.hanging_notes = report.unterminated_notes;
  check.stats = clip_stats(reread, 0, clip_us);
  if (reread.notes.size() != written.notes.size()) {
    check.error = file.string() + ": " + std::to_string(reread.notes.size()) + " notes read back, " +
                  std::to_string(written.notes.size()) + " written";
    return check;
  }
  for (std::size_t i = 0; i < reread.notes.size(); ++i) {
    const Note& a = reread.notes[i];
    const Note& b = written.notes[i];
    if (a.pitch != b.pitch || std::llabs(a.onset_us - b.onset_us) > kOnsetToleranceUs) {
      check.error = file.string() + ": note " + std::to_string(i) + " reads back as pitch " +
                    std::to_string(a.pitch) + " at " + std::to_string(a.onset_us) + " us, written as pitch " +
                    std::to_string(b.pitch) + " at " + std::to_string(b.onset_us) + " us";
      return check;
    }
  }
  check.valid = true;
  return check;
}

std::size_t notes_without_duration(std::span<const tokens::Token> sequence) {
  std::size_t open = 0;
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    if (tokens::kind_of(sequence[i]) != tokens::Kind::NoteOn) continue;
    if (i + 1 == sequence.size() || tokens::kind_of(sequence[i + 1]) != tokens::Kind::Duration) ++open;
  }
  return open;
}

CheckSummary summarize(const std::vector<SampleCheck>& samples, const CorpusBands& bands) {
  if (samples.empty()) throw std::invalid_argument("summary of no samples");
  CheckSummary summary;
  summary.count = samples.size();
  std::vector<double> ranges;
  std::vector<double> densities;
  std::size_t range_inside = 0;
  std::size_t density_inside = 0;
  for (const SampleCheck& sample : samples) {
    summary.hanging_notes += sample.hanging_notes;
    if (sample.hanging_notes > 0) ++summary.samples_with_hanging_notes;
    if (!sample.valid) continue;
    ++summary.valid;
    ranges.push_back(sample.stats.pitch_range);
    densities.push_back(sample.stats.notes_per_second);
    if (bands.pitch_range.contains(sample.stats.pitch_range)) ++range_inside;
    if (bands.notes_per_second.contains(sample.stats.notes_per_second)) ++density_inside;
  }
  const auto statistic = [&](const std::vector<double>& values, std::size_t inside, const Band& band) {
    StatisticSummary out;
    out.inside_share = double(inside) / double(samples.size());
    if (!values.empty()) {
      out.median = percentile(values, 50.0);
      out.median_inside = band.contains(out.median);
    }
    return out;
  };
  summary.pitch_range = statistic(ranges, range_inside, bands.pitch_range);
  summary.notes_per_second = statistic(densities, density_inside, bands.notes_per_second);
  summary.pass = summary.valid == summary.count && summary.hanging_notes == 0 &&
                 summary.pitch_range.median_inside && summary.notes_per_second.median_inside;
  return summary;
}

}  // namespace tatumflow::sample_check
