// SPDX-License-Identifier: GPL-3.0-or-later
// The generated-sample validity check behind `tatumflow check-samples`: is each
// sample a MIDI file that reads back with every note it was written with and
// no hanging note, and do its pitch range and note density lie inside what the
// training corpus plays in clips of the same length (the 5th to 95th
// percentile of those clips)? No torch. Everything allocates and may read
// files: any thread except a real-time one.
//
// Pass criterion (the "inside the corpus band", read for a set of samples):
// every sample valid, no hanging note in any, and the MEDIAN sample's pitch
// range and note density each inside its band. Single samples may lie outside
// (a 5-95 band leaves out 10% of the corpus itself), so the share of samples
// inside each band is reported beside the verdict rather than required to be 1.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::sample_check {

// The notes that start inside one clip.
struct ClipStats {
  std::size_t notes = 0;
  double pitch_range = 0.0;       // highest minus lowest MIDI pitch; 0 without notes
  double notes_per_second = 0.0;  // notes / clip length
};

// Statistics of the notes with onset in [start_us, start_us + length_us);
// length_us > 0 (std::invalid_argument otherwise). // any thread
[[nodiscard]] ClipStats clip_stats(const Performance& performance, std::int64_t start_us,
                                   std::int64_t length_us);

// The whole clips [k L, (k + 1) L) that end within performance.seconds(), for
// L = clip_us, without the ones where no note starts (a pause between pieces
// says nothing about how the pianist plays). // any thread
[[nodiscard]] std::vector<ClipStats> performance_clips(const Performance& performance, std::int64_t clip_us);

struct Band {
  double low = 0.0;
  double high = 0.0;
  [[nodiscard]] bool contains(double value) const { return value >= low && value <= high; }  // any thread
};

struct CorpusClips {
  std::vector<ClipStats> clips;
  std::size_t performances = 0;      // read
  std::size_t unreadable_files = 0;  // files the SMF reader rejected (file_clips only)
};

// Clips of a token cache's training split, both transcriptions, as training
// reads it; `performer` keeps the performers whose name contains it,
// case-insensitively (empty: all). Throws dataset::CacheError for a missing or
// damaged cache.
[[nodiscard]] CorpusClips cache_clips(const std::filesystem::path& cache_dir, std::int64_t clip_us,
                                      std::string_view performer = {});
// Clips of MIDI files; a file the SMF reader rejects is counted, not fatal
// (corpora hold a few broken files).
[[nodiscard]] CorpusClips file_clips(std::span<const std::filesystem::path> files, std::int64_t clip_us);

struct CorpusBands {
  Band pitch_range;
  Band notes_per_second;
  double low_percent = 5.0;
  double high_percent = 95.0;
};

// The [low_percent, high_percent] percentile band of each statistic over the
// clips (linear interpolation, bench_stats.hpp). Throws std::invalid_argument
// for no clips or percents that are not 0 <= low <= high <= 100.
[[nodiscard]] CorpusBands corpus_bands(const std::vector<ClipStats>& clips, double low_percent = 5.0,
                                       double high_percent = 95.0);

// One sample file, read back.
struct SampleCheck {
  bool valid = false;             // parsed, and holds the written notes (pitch and onset)
  std::string error;              // why not valid
  std::size_t notes = 0;          // read back, in the whole file
  std::size_t hanging_notes = 0;  // note-ons the reader found no note-off for
  ClipStats stats;                // of the notes read back that start in [0, clip_us)
};

// Reads `file` with the project's SMF reader and compares it with `written`,
// the performance it was written from: same note count, and each note's pitch
// and onset (to within the writer's 0.5 ms tick). // any thread
[[nodiscard]] SampleCheck check_sample_file(const std::filesystem::path& file, const Performance& written,
                                            std::int64_t clip_us);

// NOTE_ON tokens that no DURATION follows: notes the model left open, which
// tokens::decode() closes with its default duration. // any thread
[[nodiscard]] std::size_t notes_without_duration(std::span<const tokens::Token> sequence);

struct StatisticSummary {
  double median = 0.0;
  double inside_share = 0.0;  // of all samples, invalid ones counted as outside
  bool median_inside = false;
};

struct CheckSummary {
  std::size_t count = 0;
  std::size_t valid = 0;
  std::size_t hanging_notes = 0;  // summed over the samples
  std::size_t samples_with_hanging_notes = 0;
  StatisticSummary pitch_range;
  StatisticSummary notes_per_second;
  bool pass = false;  // the criterion at the top of this file
};

// Throws std::invalid_argument for an empty sample list. // any thread
[[nodiscard]] CheckSummary summarize(const std::vector<SampleCheck>& samples, const CorpusBands& bands);

}  // namespace tatumflow::sample_check
