// SPDX-License-Identifier: GPL-3.0-or-later
// Music-level metrics, generated against reference (DESIGN.md section 4): per
// pair of clips, aggregated over pairs, and set-level (mgeval). Pure functions
// of their arguments; they allocate, so any thread except a real-time one.
//
// Time base: a clip's span runs from its first note onset to its end
// (Performance::seconds()), so a continuation stored at its absolute time
// (starting after the prompt) measures the same as one moved to 0.
//
// ImprovNet's two metrics follow its evaluation code (midi_obj_eval, read in
// the public keshavbhandari/improvnet repository; it calls pretty_midi):
//  * pitch-class histogram: the pretty_midi piano roll at 100 frames/s summed
//    per pitch class, i.e. velocity x sounding frames, with the sustain pedal
//    holding each pitch at the running maximum of its roll from pedal-down to
//    pedal-up (a pedal still down at the end holds nothing); normalised to sum
//    1. Frames are floor(time_us / 10 000). Note: not a count of onsets.
//  * PC-KL = sum_i (r_i + e) ln((r_i + e) / (g_i + e)) with e = 1e-5 added to
//    both histograms without renormalising: KL(reference || generated), nats.
//  * PCTM: pretty_midi's pitch-class transition matrix: a count for every
//    ordered pair of notes (i, j), i == j included, with |offset_i - onset_j|
//    < 50 ms (legato successions, not onset order), normalised to sum 1.
//    Cosine between the flattened 144-vectors.
// pretty_midi reads only the first instrument; here every channel counts, and
// every channel's pedal changes drive one pedal. An empty clip gives an
// all-zero histogram or matrix (numpy would give NaN); the cosine of two zero
// matrices is 1, of a zero and a non-zero one 0.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::metrics {

inline constexpr double kPitchClassKlEpsilon = 1e-5;
inline constexpr std::int64_t kPianoRollFrameUs = 10'000;       // pretty_midi fs = 100
inline constexpr std::int64_t kTransitionThresholdUs = 50'000;  // pretty_midi time_thresh
inline constexpr int kCopyNgram = 4;
inline constexpr std::int64_t kDensityWindowUs = 5'000'000;
inline constexpr std::int64_t kEntropyWindowUs = 15'000'000;
inline constexpr std::int64_t kEntropyHopUs = 1'000'000;
inline constexpr std::int64_t kSelfSimilarityWindowUs = 4'000'000;
inline constexpr std::int64_t kSelfSimilarityHopUs = 2'000'000;
// mgeval's note-length classes are fractions of a 4/4 bar counted in ticks of
// the file; TatumFlow writes SMF at 120 bpm, so a quarter is 0.5 s.
inline constexpr std::int64_t kMgevalQuarterUs = 500'000;

using PitchClassHistogram = std::array<double, 12>;
using PitchClassTransitions = std::array<double, 144>;  // row = from, column = to

// --- ImprovNet ------------------------------------------------------------------

[[nodiscard]] PitchClassHistogram pitch_class_histogram(const Performance& clip);      // any thread
[[nodiscard]] PitchClassTransitions pitch_class_transitions(const Performance& clip);  // any thread
// KL(reference || generated) as above. // any thread
[[nodiscard]] double pitch_class_kl(const PitchClassHistogram& reference,
                                    const PitchClassHistogram& generated);
// Cosine of two equal-length vectors, with the zero-vector rule above. // any thread
[[nodiscard]] double cosine_similarity(const std::vector<double>& a, const std::vector<double>& b);

// --- single-clip measures ---------------------------------------------------------

// Share of the continuation's pitch 4-grams (consecutive pitches in (onset,
// pitch) order, counted with repetition) that occur anywhere in the prompt;
// empty when the continuation has fewer than 4 notes. // any thread
[[nodiscard]] std::optional<double> copy_rate(const Performance& continuation, const Performance& prompt);

// Notes per 5 s of span; empty for a clip without notes. // any thread
[[nodiscard]] std::optional<double> note_density_per_5s(const Performance& clip);

// Shannon entropy (bits, at most log2 12) of the onset-count pitch-class
// histogram in 15 s windows every 1 s from the first onset; the last window
// ends at or before the clip's end, and a clip shorter than 15 s is one window.
// Windows without onsets are skipped.
struct EntropyStats {
  double mean_bits = 0.0;
  double std_bits = 0.0;  // population std over the windows
  std::size_t windows = 0;
};
[[nodiscard]] std::optional<EntropyStats> sliding_pitch_class_entropy(const Performance& clip);  // any thread

// Mean number of notes sounding (onset <= t < offset, or starting at t) at each
// distinct onset time t; the pedal does not count. Empty without notes. // any thread
[[nodiscard]] std::optional<double> polyphony(const Performance& clip);

// Sum over bins of min(a, b): the overlapping area of two histograms that each
// sum to 1 (1 = identical; 1 - total variation distance). // any thread
[[nodiscard]] double histogram_overlap(const std::vector<double>& a, const std::vector<double>& b);

// Onset-count pitch-class histograms of 4 s windows every 2 s from the first
// onset (windows wholly inside the span); mean histogram_overlap of each window
// with the next, skipping pairs with an empty window. Empty when no pair counts.
// // any thread
[[nodiscard]] std::optional<double> self_similarity(const Performance& clip);

// mgeval's standard per-clip features (Yang & Lerch 2018).
struct MgevalFeatures {
  double pitch_count = 0;                       // total_used_pitch: distinct MIDI pitches
  double pitch_range = 0;                       // highest - lowest pitch
  PitchClassHistogram pitch_class_histogram{};  // total_pitch_class_histogram (= ImprovNet's)
  double pitch_interval = 0;                    // avg_pitch_shift: mean |pitch step| in (onset, pitch) order
  double avg_ioi_s = 0;                         // mean difference of consecutive sorted note onsets
  std::array<double, 12> note_length_histogram{};  // nearest of mgeval's 12 length classes, normalised
};
[[nodiscard]] MgevalFeatures mgeval_features(const Performance& clip);  // any thread

// Everything the pair metrics need from one clip; computing it once per clip
// lets a reference be compared with several generations.
struct ClipMeasures {
  PitchClassHistogram pitch_class_histogram{};
  PitchClassTransitions pitch_class_transitions{};
  std::vector<double> ioi_histogram;       // theory features' rhythm IOI block
  std::vector<double> velocity_histogram;  // theory features' dynamics velocity block
  std::optional<double> note_density_per_5s;
  std::optional<EntropyStats> entropy;
  std::optional<double> polyphony;
  std::optional<double> self_similarity;
  std::optional<double>
      chords_per_minute;   // distinct (root, type) of the theory chord estimates per minute of span
  double syncopation = 0;  // theory features, [0, 1]
  std::optional<double> swing_ratio;  // theory features; empty when no eighth pair was found
  MgevalFeatures mgeval;
  std::size_t notes = 0;
};
// Throws std::invalid_argument (from compute_theory_features) for a note out of
// range. // any thread
[[nodiscard]] ClipMeasures measure_clip(const Performance& clip);

// --- pairs and aggregates -----------------------------------------------------------

// A metric that cannot be computed for a pair (too few notes, no prompt) is empty.
struct PairMetrics {
  double pitch_class_kl = 0;
  double pctm_cosine = 0;
  std::optional<double> copy_rate_generated;  // generated continuation vs its prompt
  std::optional<double> copy_rate_reference;  // real continuation vs the same prompt
  std::optional<double> note_density_generated;
  std::optional<double> note_density_reference;
  std::optional<double> note_density_relative_gap;  // (generated - reference) / reference
  std::optional<double> pc_entropy_mean_generated;
  std::optional<double> pc_entropy_mean_reference;
  std::optional<double> pc_entropy_std_generated;
  std::optional<double> pc_entropy_std_reference;
  std::optional<double> polyphony_generated;
  std::optional<double> polyphony_reference;
  // histogram_overlap of the theory features' inter-onset (16 log2 bins, between
  // onset groups) and velocity (32 bins) histograms.
  double ioi_histogram_overlap = 0;
  double velocity_histogram_overlap = 0;
  std::optional<double> self_similarity_generated;
  std::optional<double> self_similarity_reference;
  std::optional<double> chords_per_minute_generated;
  std::optional<double> chords_per_minute_reference;
  double syncopation_generated = 0;
  double syncopation_reference = 0;
  std::optional<double> swing_ratio_generated;
  std::optional<double> swing_ratio_reference;
};

// Everything but the copy rates, which need the prompt. // any thread
[[nodiscard]] PairMetrics compare_clips(const ClipMeasures& reference, const ClipMeasures& generated);

struct NamedValue {
  const char* name;  // snake_case, as in the struct
  std::optional<double> value;
};
// The fields of PairMetrics in declaration order: the one list that reports
// and aggregates use. // any thread
[[nodiscard]] std::vector<NamedValue> named_values(const PairMetrics& metrics);

struct Aggregate {
  std::string name;
  std::size_t count = 0;  // pairs where the metric exists
  double mean = 0;
  double std = 0;  // population std
};
// One entry per named value, over the pairs where it exists (count 0: mean
// and std 0). // any thread
[[nodiscard]] std::vector<Aggregate> aggregate(const std::vector<PairMetrics>& pairs);

// --- mgeval set-level overlap ---------------------------------------------------------

// Gaussian kernel density estimate with Silverman's factor as scipy defines it:
// bandwidth = sample std x (3n / 4)^(-1/5), floored at 1e-3 x `floor_scale` so
// a constant sample still has a density.
[[nodiscard]] double silverman_bandwidth(const std::vector<double>& sample,
                                         double floor_scale);  // any thread

// Overlapping area of the KDEs of two samples: the integral of the smaller
// density over the whole line (trapezoid rule from 6 bandwidths below the
// smallest value to 6 above the largest, two or more points per bandwidth), so
// a sample against itself gives 1. mgeval integrates only over [min, max] and
// uses Scott's bandwidth, so its numbers run a little lower. 1 when every value
// of both samples is the same. Throws std::invalid_argument for an empty
// sample. // any thread
[[nodiscard]] double kde_overlap_area(const std::vector<double>& a, const std::vector<double>& b);

// Per mgeval feature: Euclidean distances within the reference set (each
// unordered pair once), within the generated set, and across the sets; then
// OA(reference intra, inter), the number Yang & Lerch report, and
// OA(generated intra, inter). Empty when a set has fewer than 2 clips.
struct MgevalOverlap {
  std::string feature;  // pitch_count, pitch_range, pitch_class_histogram, pitch_interval, avg_ioi,
                        // note_length_histogram
  std::optional<double> reference_intra_vs_inter;
  std::optional<double> generated_intra_vs_inter;
};
[[nodiscard]] std::vector<MgevalOverlap> mgeval_overlaps(
    const std::vector<MgevalFeatures>& reference,
    const std::vector<MgevalFeatures>& generated);  // any thread

}  // namespace tatumflow::metrics
