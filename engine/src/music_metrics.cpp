// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/music_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <numeric>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "tatumflow/engine/theory_features.hpp"

namespace tatumflow::metrics {

namespace {

constexpr double kUsPerSecond = 1e6;
constexpr std::int64_t kMinSpanUs = 10'000;
constexpr std::size_t kMinOverlapGridPoints = 4001;
constexpr std::size_t kMaxOverlapGridPoints = 200'001;
constexpr double kIntegrationReachBandwidths = 6.0;
constexpr double kKernelReachBandwidths = 8.0;
constexpr double kBandwidthFloor = 1e-3;
constexpr std::size_t kIoiBins = 16;
constexpr std::size_t kVelocityBins = 32;

// The order every function here relies on; read_smf and Performance::sort give it.
void require_sorted(const Performance& clip) {
  const auto it = std::adjacent_find(clip.notes.begin(), clip.notes.end(), [](const Note& a, const Note& b) {
    return b.onset_us < a.onset_us || (b.onset_us == a.onset_us && b.pitch < a.pitch);
  });
  if (it != clip.notes.end()) {
    throw std::invalid_argument("music metrics: notes are not sorted by (onset, pitch) at note " +
                                std::to_string(std::distance(clip.notes.begin(), it) + 1) +
                                "; call Performance::sort()");
  }
}

std::int64_t end_us(const Performance& clip) {
  std::int64_t end = clip.length_us;
  for (const Note& note : clip.notes) end = std::max(end, note.offset_us());
  return end;
}

struct Span {
  std::int64_t start_us;
  std::int64_t end_us;
  [[nodiscard]] std::int64_t length_us() const { return std::max(end_us - start_us, kMinSpanUs); }
};

// Callers check for notes first.
Span span_of(const Performance& clip) { return {clip.notes.front().onset_us, end_us(clip)}; }

double mean_of(const std::vector<double>& values) {
  return values.empty()
             ? 0.0
             : std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double population_std(const std::vector<double>& values, double mean) {
  if (values.empty()) return 0.0;
  double sum = 0.0;
  for (double v : values) sum += (v - mean) * (v - mean);
  return std::sqrt(sum / static_cast<double>(values.size()));
}

void normalise(std::span<double> values) {
  const double total = std::accumulate(values.begin(), values.end(), 0.0);
  if (total <= 0.0) return;
  for (double& v : values) v /= total;
}

std::int64_t frame_of(std::int64_t time_us) {
  return time_us >= 0 ? time_us / kPianoRollFrameUs
                      : -((-time_us + kPianoRollFrameUs - 1) / kPianoRollFrameUs);
}

// Onset-count pitch-class histogram of the notes with onset in [from_us, to_us).
PitchClassHistogram onset_histogram(const std::vector<Note>& notes, std::int64_t from_us,
                                    std::int64_t to_us) {
  auto first = std::lower_bound(notes.begin(), notes.end(), from_us,
                                [](const Note& n, std::int64_t t) { return n.onset_us < t; });
  PitchClassHistogram histogram{};
  for (auto it = first; it != notes.end() && it->onset_us < to_us; ++it) histogram[it->pitch % 12] += 1.0;
  return histogram;
}

double entropy_bits(const PitchClassHistogram& counts) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  double entropy = 0.0;
  for (double c : counts) {
    if (c > 0) entropy -= (c / total) * std::log2(c / total);
  }
  return entropy;
}

std::optional<double> optional_gap(const std::optional<double>& generated,
                                   const std::optional<double>& reference) {
  if (!generated || !reference || *reference <= 0.0) return std::nullopt;
  return (*generated - *reference) / *reference;
}

// Kernel density at x from a sorted sample; kernels beyond 8 bandwidths add
// less than 1e-14 and are skipped.
double kde_at(const std::vector<double>& sorted, double bandwidth, double x) {
  const double reach = kKernelReachBandwidths * bandwidth;
  const auto first = std::lower_bound(sorted.begin(), sorted.end(), x - reach);
  const auto last = std::upper_bound(first, sorted.end(), x + reach);
  double sum = 0.0;
  for (auto it = first; it != last; ++it) {
    const double z = (x - *it) / bandwidth;
    sum += std::exp(-0.5 * z * z);
  }
  return sum / (static_cast<double>(sorted.size()) * bandwidth * std::sqrt(2.0 * std::numbers::pi));
}

double euclidean(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(sum);
}

struct MgevalFeatureView {
  const char* name;
  std::function<std::vector<double>(const MgevalFeatures&)> values;
};

const std::vector<MgevalFeatureView>& mgeval_views() {
  static const std::vector<MgevalFeatureView> views = {
      {"pitch_count", [](const MgevalFeatures& f) { return std::vector<double>{f.pitch_count}; }},
      {"pitch_range", [](const MgevalFeatures& f) { return std::vector<double>{f.pitch_range}; }},
      {"pitch_class_histogram",
       [](const MgevalFeatures& f) {
         return std::vector<double>(f.pitch_class_histogram.begin(), f.pitch_class_histogram.end());
       }},
      {"pitch_interval", [](const MgevalFeatures& f) { return std::vector<double>{f.pitch_interval}; }},
      {"avg_ioi", [](const MgevalFeatures& f) { return std::vector<double>{f.avg_ioi_s}; }},
      {"note_length_histogram",
       [](const MgevalFeatures& f) {
         return std::vector<double>(f.note_length_histogram.begin(), f.note_length_histogram.end());
       }},
  };
  return views;
}

}  // namespace

PitchClassHistogram pitch_class_histogram(const Performance& clip) {
  require_sorted(clip);
  // Pedal-down stretches in frames, as pretty_midi pairs them: a down while up
  // opens one, an up while down closes it, one still open at the end is dropped.
  std::vector<std::pair<std::int64_t, std::int64_t>> pedal_frames;
  bool down = false;
  std::int64_t down_frame = 0;
  for (const PedalChange& change : clip.pedals) {
    if (!down && change.down) {
      down = true;
      down_frame = frame_of(change.time_us);
    } else if (down && !change.down) {
      down = false;
      const std::int64_t up_frame = frame_of(change.time_us);
      if (up_frame > down_frame) pedal_frames.emplace_back(down_frame, up_frame);
    }
  }

  // Per pitch, the roll is piecewise constant between note and pedal
  // boundaries, so it is summed segment by segment instead of frame by frame.
  std::array<std::vector<std::pair<std::int64_t, double>>, 128> changes;
  for (const Note& note : clip.notes) {
    const std::int64_t first = frame_of(note.onset_us);
    const std::int64_t last = frame_of(note.offset_us());
    if (last <= first) continue;  // an empty numpy slice
    changes[note.pitch].emplace_back(first, note.velocity);
    changes[note.pitch].emplace_back(last, -static_cast<double>(note.velocity));
  }

  PitchClassHistogram histogram{};
  std::vector<std::int64_t> bounds;
  for (std::size_t pitch = 0; pitch < changes.size(); ++pitch) {
    auto& events = changes[pitch];
    if (events.empty()) continue;
    std::sort(events.begin(), events.end());
    bounds.clear();
    for (const auto& [frame, delta] : events) bounds.push_back(frame);
    // A stretch that starts after the pitch's last release holds nothing.
    const std::int64_t last_frame = bounds.back();
    for (const auto& [on, off] : pedal_frames) {
      if (on >= last_frame) break;
      bounds.push_back(on);
      bounds.push_back(off);
    }
    std::sort(bounds.begin(), bounds.end());
    bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());

    double level = 0.0;
    double held = 0.0;
    std::size_t next_event = 0;
    std::size_t pedal = 0;
    double total = 0.0;
    for (std::size_t b = 0; b + 1 < bounds.size(); ++b) {
      const std::int64_t from = bounds[b];
      const std::int64_t to = bounds[b + 1];
      while (next_event < events.size() && events[next_event].first <= from)
        level += events[next_event++].second;
      while (pedal < pedal_frames.size() && pedal_frames[pedal].second <= from) ++pedal;
      const bool pedalled = pedal < pedal_frames.size() && pedal_frames[pedal].first <= from;
      if (pedalled) {
        held = from == pedal_frames[pedal].first ? level : std::max(held, level);
        total += held * static_cast<double>(to - from);
      } else {
        total += level * static_cast<double>(to - from);
      }
    }
    histogram[pitch % 12] += total;
  }
  normalise(histogram);
  return histogram;
}

PitchClassTransitions pitch_class_transitions(const Performance& clip) {
  require_sorted(clip);
  PitchClassTransitions matrix{};
  const std::vector<Note>& notes = clip.notes;
  for (const Note& from : notes) {
    const std::int64_t offset = from.offset_us();
    auto first = std::upper_bound(notes.begin(), notes.end(), offset - kTransitionThresholdUs,
                                  [](std::int64_t t, const Note& n) { return t < n.onset_us; });
    for (auto to = first; to != notes.end() && to->onset_us < offset + kTransitionThresholdUs; ++to) {
      matrix[(from.pitch % 12) * 12 + to->pitch % 12] += 1.0;
    }
  }
  normalise(matrix);
  return matrix;
}

double pitch_class_kl(const PitchClassHistogram& reference, const PitchClassHistogram& generated) {
  double kl = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i] + kPitchClassKlEpsilon;
    const double g = generated[i] + kPitchClassKlEpsilon;
    kl += r * std::log(r / g);
  }
  return kl;
}

double cosine_similarity(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("cosine_similarity: vectors of " + std::to_string(a.size()) + " and " +
                                std::to_string(b.size()) + " values");
  }
  double dot = 0.0;
  double norm_a = 0.0;
  double norm_b = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    norm_a += a[i] * a[i];
    norm_b += b[i] * b[i];
  }
  if (norm_a == 0.0 && norm_b == 0.0) return 1.0;
  if (norm_a == 0.0 || norm_b == 0.0) return 0.0;
  return dot / std::sqrt(norm_a * norm_b);
}

std::optional<double> copy_rate(const Performance& continuation, const Performance& prompt) {
  require_sorted(continuation);
  require_sorted(prompt);
  auto grams = [](const Performance& clip) {
    std::vector<std::uint32_t> keys;
    const std::vector<Note>& notes = clip.notes;
    for (std::size_t i = 0; i + kCopyNgram <= notes.size(); ++i) {
      std::uint32_t key = 0;
      for (std::size_t k = 0; k < kCopyNgram; ++k) key = (key << 8) | notes[i + k].pitch;
      keys.push_back(key);
    }
    return keys;
  };
  const std::vector<std::uint32_t> generated = grams(continuation);
  if (generated.empty()) return std::nullopt;
  std::vector<std::uint32_t> source = grams(prompt);
  std::sort(source.begin(), source.end());
  const auto copied = std::count_if(generated.begin(), generated.end(), [&](std::uint32_t key) {
    return std::binary_search(source.begin(), source.end(), key);
  });
  return static_cast<double>(copied) / static_cast<double>(generated.size());
}

std::optional<double> note_density_per_5s(const Performance& clip) {
  require_sorted(clip);
  if (clip.notes.empty()) return std::nullopt;
  return static_cast<double>(clip.notes.size()) * static_cast<double>(kDensityWindowUs) /
         static_cast<double>(span_of(clip).length_us());
}

std::optional<EntropyStats> sliding_pitch_class_entropy(const Performance& clip) {
  require_sorted(clip);
  if (clip.notes.empty()) return std::nullopt;
  const Span span = span_of(clip);
  std::vector<double> entropies;
  auto add_window = [&](std::int64_t from_us, std::int64_t to_us) {
    const PitchClassHistogram counts = onset_histogram(clip.notes, from_us, to_us);
    if (std::accumulate(counts.begin(), counts.end(), 0.0) > 0) entropies.push_back(entropy_bits(counts));
  };
  if (span.end_us - span.start_us <= kEntropyWindowUs) {
    add_window(span.start_us, span.end_us + 1);
  } else {
    for (std::int64_t from = span.start_us; from + kEntropyWindowUs <= span.end_us; from += kEntropyHopUs) {
      add_window(from, from + kEntropyWindowUs);
    }
  }
  EntropyStats stats;
  stats.windows = entropies.size();
  stats.mean_bits = mean_of(entropies);
  stats.std_bits = population_std(entropies, stats.mean_bits);
  return stats;
}

std::optional<double> polyphony(const Performance& clip) {
  require_sorted(clip);
  if (clip.notes.empty()) return std::nullopt;
  std::vector<std::int64_t> sounding_offsets;  // a min-heap
  const auto later = std::greater<>();
  double total = 0.0;
  std::size_t onsets = 0;
  for (std::size_t i = 0; i < clip.notes.size();) {
    const std::int64_t t = clip.notes[i].onset_us;
    while (!sounding_offsets.empty() && sounding_offsets.front() <= t) {
      std::pop_heap(sounding_offsets.begin(), sounding_offsets.end(), later);
      sounding_offsets.pop_back();
    }
    for (; i < clip.notes.size() && clip.notes[i].onset_us == t; ++i) {
      sounding_offsets.push_back(clip.notes[i].offset_us());
      std::push_heap(sounding_offsets.begin(), sounding_offsets.end(), later);
    }
    total += static_cast<double>(sounding_offsets.size());
    ++onsets;
  }
  return total / static_cast<double>(onsets);
}

double histogram_overlap(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("histogram_overlap: histograms of " + std::to_string(a.size()) + " and " +
                                std::to_string(b.size()) + " bins");
  }
  double overlap = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) overlap += std::min(a[i], b[i]);
  return overlap;
}

std::optional<double> self_similarity(const Performance& clip) {
  require_sorted(clip);
  if (clip.notes.empty()) return std::nullopt;
  const Span span = span_of(clip);
  std::vector<PitchClassHistogram> windows;
  for (std::int64_t from = span.start_us; from + kSelfSimilarityWindowUs <= span.end_us;
       from += kSelfSimilarityHopUs) {
    windows.push_back(onset_histogram(clip.notes, from, from + kSelfSimilarityWindowUs));
    normalise(windows.back());
  }
  std::vector<double> overlaps;
  auto empty = [](const PitchClassHistogram& h) { return std::accumulate(h.begin(), h.end(), 0.0) == 0.0; };
  for (std::size_t k = 0; k + 1 < windows.size(); ++k) {
    if (empty(windows[k]) || empty(windows[k + 1])) continue;
    overlaps.push_back(histogram_overlap(std::vector<double>(windows[k].begin(), windows[k].end()),
                                         std::vector<double>(windows[k + 1].begin(), windows[k + 1].end())));
  }
  if (overlaps.empty()) return std::nullopt;
  return mean_of(overlaps);
}

MgevalFeatures mgeval_features(const Performance& clip) {
  require_sorted(clip);
  MgevalFeatures features;
  features.pitch_class_histogram = pitch_class_histogram(clip);
  const std::vector<Note>& notes = clip.notes;
  if (notes.empty()) return features;

  std::array<bool, 128> used{};
  int lowest = 127;
  int highest = 0;
  for (const Note& note : notes) {
    used[note.pitch] = true;
    lowest = std::min<int>(lowest, note.pitch);
    highest = std::max<int>(highest, note.pitch);
  }
  features.pitch_count = static_cast<double>(std::count(used.begin(), used.end(), true));
  features.pitch_range = highest - lowest;
  if (notes.size() > 1) {
    double steps = 0.0;
    for (std::size_t i = 1; i < notes.size(); ++i) steps += std::abs(notes[i].pitch - notes[i - 1].pitch);
    const auto intervals = static_cast<double>(notes.size() - 1);
    features.pitch_interval = steps / intervals;
    features.avg_ioi_s =
        static_cast<double>(notes.back().onset_us - notes.front().onset_us) / kUsPerSecond / intervals;
  }

  // mgeval's classes in 96ths of a 4/4 bar: full, half, quarter, 8th, 16th,
  // dotted half, dotted quarter, dotted 8th, dotted 16th, and the triplets.
  constexpr std::array<double, 12> kClassUnits = {96, 48, 24, 12, 6, 72, 36, 18, 9, 32, 16, 8};
  const double unit_us = static_cast<double>(4 * kMgevalQuarterUs) / 96.0;
  for (const Note& note : notes) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < kClassUnits.size(); ++c) {
      if (std::abs(kClassUnits[c] * unit_us - static_cast<double>(note.duration_us)) <
          std::abs(kClassUnits[best] * unit_us - static_cast<double>(note.duration_us))) {
        best = c;
      }
    }
    features.note_length_histogram[best] += 1.0;
  }
  normalise(features.note_length_histogram);
  return features;
}

ClipMeasures measure_clip(const Performance& clip) {
  require_sorted(clip);
  const TheoryFeatures theory = compute_theory_features(clip);
  ClipMeasures m;
  m.notes = clip.notes.size();
  m.mgeval = mgeval_features(clip);
  m.pitch_class_histogram = m.mgeval.pitch_class_histogram;
  m.pitch_class_transitions = pitch_class_transitions(clip);
  const auto ioi = theory.rhythm.begin() + rhythm_index::kIoi;
  m.ioi_histogram.assign(ioi, ioi + kIoiBins);
  const auto velocity = theory.dynamics.begin() + dynamics_index::kVelocity;
  m.velocity_histogram.assign(velocity, velocity + kVelocityBins);
  m.note_density_per_5s = note_density_per_5s(clip);
  m.entropy = sliding_pitch_class_entropy(clip);
  m.polyphony = polyphony(clip);
  m.self_similarity = self_similarity(clip);
  if (!clip.notes.empty()) {
    std::set<std::pair<int, int>> distinct;
    for (const ChordEstimate& estimate : theory.chords) {
      distinct.emplace(estimate.chord.root, static_cast<int>(estimate.chord.type));
    }
    const double minutes = static_cast<double>(span_of(clip).length_us()) / (60.0 * kUsPerSecond);
    m.chords_per_minute = static_cast<double>(distinct.size()) / minutes;
  }
  m.syncopation = theory.syncopation;
  if (theory.swing_pairs > 0) m.swing_ratio = theory.swing_ratio;
  return m;
}

PairMetrics compare_clips(const ClipMeasures& reference, const ClipMeasures& generated) {
  PairMetrics p;
  p.pitch_class_kl = pitch_class_kl(reference.pitch_class_histogram, generated.pitch_class_histogram);
  p.pctm_cosine = cosine_similarity(
      std::vector<double>(reference.pitch_class_transitions.begin(), reference.pitch_class_transitions.end()),
      std::vector<double>(generated.pitch_class_transitions.begin(),
                          generated.pitch_class_transitions.end()));
  p.note_density_generated = generated.note_density_per_5s;
  p.note_density_reference = reference.note_density_per_5s;
  p.note_density_relative_gap = optional_gap(generated.note_density_per_5s, reference.note_density_per_5s);
  auto entropy_mean = [](const ClipMeasures& m) {
    return m.entropy ? std::optional<double>(m.entropy->mean_bits) : std::nullopt;
  };
  auto entropy_std = [](const ClipMeasures& m) {
    return m.entropy ? std::optional<double>(m.entropy->std_bits) : std::nullopt;
  };
  p.pc_entropy_mean_generated = entropy_mean(generated);
  p.pc_entropy_mean_reference = entropy_mean(reference);
  p.pc_entropy_std_generated = entropy_std(generated);
  p.pc_entropy_std_reference = entropy_std(reference);
  p.polyphony_generated = generated.polyphony;
  p.polyphony_reference = reference.polyphony;
  p.ioi_histogram_overlap = histogram_overlap(reference.ioi_histogram, generated.ioi_histogram);
  p.velocity_histogram_overlap =
      histogram_overlap(reference.velocity_histogram, generated.velocity_histogram);
  p.self_similarity_generated = generated.self_similarity;
  p.self_similarity_reference = reference.self_similarity;
  p.chords_per_minute_generated = generated.chords_per_minute;
  p.chords_per_minute_reference = reference.chords_per_minute;
  p.syncopation_generated = generated.syncopation;
  p.syncopation_reference = reference.syncopation;
  p.swing_ratio_generated = generated.swing_ratio;
  p.swing_ratio_reference = reference.swing_ratio;
  return p;
}

std::vector<NamedValue> named_values(const PairMetrics& m) {
  return {
      {"pitch_class_kl", m.pitch_class_kl},
      {"pctm_cosine", m.pctm_cosine},
      {"copy_rate_generated", m.copy_rate_generated},
      {"copy_rate_reference", m.copy_rate_reference},
      {"note_density_generated", m.note_density_generated},
      {"note_density_reference", m.note_density_reference},
      {"note_density_relative_gap", m.note_density_relative_gap},
      {"pc_entropy_mean_generated", m.pc_entropy_mean_generated},
      {"pc_entropy_mean_reference", m.pc_entropy_mean_reference},
      {"pc_entropy_std_generated", m.pc_entropy_std_generated},
      {"pc_entropy_std_reference", m.pc_entropy_std_reference},
      {"polyphony_generated", m.polyphony_generated},
      {"polyphony_reference", m.polyphony_reference},
      {"ioi_histogram_overlap", m.ioi_histogram_overlap},
      {"velocity_histogram_overlap", m.velocity_histogram_overlap},
      {"self_similarity_generated", m.self_similarity_generated},
      {"self_similarity_reference", m.self_similarity_reference},
      {"chords_per_minute_generated", m.chords_per_minute_generated},
      {"chords_per_minute_reference", m.chords_per_minute_reference},
      {"syncopation_generated", m.syncopation_generated},
      {"syncopation_reference", m.syncopation_reference},
      {"swing_ratio_generated", m.swing_ratio_generated},
      {"swing_ratio_reference", m.swing_ratio_reference},
  };
}

std::vector<Aggregate> aggregate(const std::vector<PairMetrics>& pairs) {
  std::vector<Aggregate> result;
  for (const NamedValue& field : named_values(PairMetrics{})) result.push_back({field.name, 0, 0.0, 0.0});
  std::vector<std::vector<double>> columns(result.size());
  for (const PairMetrics& pair : pairs) {
    const std::vector<NamedValue> values = named_values(pair);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (values[i].value) columns[i].push_back(*values[i].value);
    }
  }
  for (std::size_t i = 0; i < result.size(); ++i) {
    result[i].count = columns[i].size();
    result[i].mean = mean_of(columns[i]);
    result[i].std = population_std(columns[i], result[i].mean);
  }
  return result;
}

double silverman_bandwidth(const std::vector<double>& sample, double floor_scale) {
  const double floor = kBandwidthFloor * floor_scale;
  if (sample.size() < 2) return floor;
  const double mean = mean_of(sample);
  double sum = 0.0;
  for (double v : sample) sum += (v - mean) * (v - mean);
  const auto n = static_cast<double>(sample.size());
  const double std = std::sqrt(sum / (n - 1.0));  // scipy's covariance is unbiased
  return std::max(std * std::pow(3.0 * n / 4.0, -0.2), floor);
}

double kde_overlap_area(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) throw std::invalid_argument("kde_overlap_area: an empty sample");
  std::vector<double> sorted_a = a;
  std::vector<double> sorted_b = b;
  std::sort(sorted_a.begin(), sorted_a.end());
  std::sort(sorted_b.begin(), sorted_b.end());
  const double lo = std::min(sorted_a.front(), sorted_b.front());
  const double hi = std::max(sorted_a.back(), sorted_b.back());
  if (hi <= lo) return 1.0;
  const double bandwidth_a = silverman_bandwidth(a, hi - lo);
  const double bandwidth_b = silverman_bandwidth(b, hi - lo);
  const double reach = kIntegrationReachBandwidths * std::max(bandwidth_a, bandwidth_b);
  const double from = lo - reach;
  const double width = hi - lo + 2 * reach;
  // At least two points per narrowest bandwidth keep the trapezoid exact to
  // well under 1e-6 for Gaussian kernels.
  const double points_needed = std::ceil(width / (0.5 * std::min(bandwidth_a, bandwidth_b))) + 1;
  const auto points = static_cast<std::size_t>(std::clamp(
      points_needed, static_cast<double>(kMinOverlapGridPoints), static_cast<double>(kMaxOverlapGridPoints)));
  const double step = width / static_cast<double>(points - 1);
  double area = 0.0;
  for (std::size_t i = 0; i < points; ++i) {
    const double x = from + step * static_cast<double>(i);
    const double low = std::min(kde_at(sorted_a, bandwidth_a, x), kde_at(sorted_b, bandwidth_b, x));
    area += (i == 0 || i + 1 == points) ? 0.5 * low : low;
  }
  return area * step;
}

std::vector<MgevalOverlap> mgeval_overlaps(const std::vector<MgevalFeatures>& reference,
                                           const std::vector<MgevalFeatures>& generated) {
  std::vector<MgevalOverlap> result;
  for (const MgevalFeatureView& view : mgeval_views()) {
    std::vector<std::vector<double>> ref;
    std::vector<std::vector<double>> gen;
    for (const MgevalFeatures& f : reference) ref.push_back(view.values(f));
    for (const MgevalFeatures& f : generated) gen.push_back(view.values(f));
    auto intra = [](const std::vector<std::vector<double>>& set) {
      std::vector<double> distances;
      for (std::size_t i = 0; i < set.size(); ++i) {
        for (std::size_t j = i + 1; j < set.size(); ++j) distances.push_back(euclidean(set[i], set[j]));
      }
      return distances;
    };
    std::vector<double> inter;
    for (const auto& r : ref) {
      for (const auto& g : gen) inter.push_back(euclidean(r, g));
    }
    MgevalOverlap overlap{view.name, std::nullopt, std::nullopt};
    if (!inter.empty()) {
      if (const std::vector<double> d = intra(ref); !d.empty())
        overlap.reference_intra_vs_inter = kde_overlap_area(d, inter);
      if (const std::vector<double> d = intra(gen); !d.empty())
        overlap.generated_intra_vs_inter = kde_overlap_area(d, inter);
    }
    result.push_back(std::move(overlap));
  }
  return result;
}

}  // namespace tatumflow::metrics
