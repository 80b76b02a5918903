// SPDX-License-Identifier: GPL-3.0-or-later
// The continuation evaluation behind `tatumflow evaluate` (issue 5, DESIGN.md
// section 4), without torch: validation performances cut into context /
// continuation clips, the copy-the-prompt and Markov baselines, every system
// scored against the real continuation, averaged over clips and seeds, checked
// against the targets and written as a Markdown table. The model's own
// continuations come from model_api.hpp, in the CLI.
//
// Time: a clip has its own clock. The context covers [0, context_us); every
// continuation, real or generated, covers [context_us, context_us +
// continuation_us). Notes are cut at the end of their part, so a note held
// past the clip counts the same for every system.
//
// Everything allocates: any non-real-time thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/markov.hpp"
#include "tatumflow/engine/music_metrics.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::continuation {

struct ClipOptions {
  std::int64_t context_us = 20'000'000;
  std::int64_t continuation_us = 10'000'000;
  // Near-silent stretches say nothing about a continuation: clips with fewer
  // notes in either part are dropped.
  std::size_t min_context_notes = 20;
  std::size_t min_continuation_notes = 10;

  // Throws std::invalid_argument unless 0 < continuation_us <= context_us (the
  // copy baseline needs continuation_us of context) and context_us <= 10 min.
  void validate() const;
  [[nodiscard]] std::int64_t clip_us() const { return context_us + continuation_us; }
};

// The notes starting in [from_us, to_us), moved by shift_us, their durations
// cut at to_us (at least 1 us); the pedal as it stands at from_us, its changes
// inside, released at to_us when still down. length_us = to_us + shift_us.
// Throws std::invalid_argument when to_us <= from_us. // any thread
[[nodiscard]] Performance excerpt(const Performance& performance, std::int64_t from_us, std::int64_t to_us,
                                  std::int64_t shift_us);

struct Clip {
  std::int64_t start_us = 0;  // in the performance
  Performance context;        // [0, context_us)
  Performance continuation;   // the real one, [context_us, clip_us)
};

// Consecutive clips of clip_us from the performance's first onset, minus those
// with too few notes. // any thread
[[nodiscard]] std::vector<Clip> cut_clips(const Performance& performance, const ClipOptions& options);

// min(count, total) distinct indices spread evenly over [0, total), ascending:
// floor(i * total / count). // any thread
[[nodiscard]] std::vector<std::size_t> spread_evenly(std::size_t total, std::size_t count);

// What the model and the Markov chain continue: SOS, the context's tokens,
// then <T> and TIME_SHIFT moving the clock to context_us, so that the
// continuation starts where the real one does. // any thread
[[nodiscard]] std::vector<tokens::Token> context_tokens(const Performance& context, std::int64_t context_us);

// The end of a context for a model trained on windows of `limit` tokens (0:
// no limit): at most `limit` tokens, cut where time moves (a <T> or
// TIME_SHIFT), so no note is split. A cut at a TIME_SHIFT gets SOS and a
// TIME_SHIFT to the chunk phase in front, so every token after it means what
// it meant in the whole context: tokens generated after the window can be
// appended to the whole context. The whole context when it fits or when no
// cut is found. // any thread
[[nodiscard]] std::vector<tokens::Token> context_window(std::span<const tokens::Token> context,
                                                        std::size_t limit);

// The copy-the-prompt baseline: the context's last continuation_us, moved on
// by continuation_us. // any thread
[[nodiscard]] Performance copy_baseline(const Performance& context, const ClipOptions& options);

// Context followed by a continuation, for listening: the pedal release that
// ends one part and the press that opens the next at the same time cancel.
// // any thread
[[nodiscard]] Performance join_parts(const Performance& context, const Performance& continuation);

// The continuation part [context_us, clip_us) of a decoded sequence that
// starts with context_tokens(). // any thread
[[nodiscard]] Performance continuation_of(std::span<const tokens::Token> sequence,
                                          const ClipOptions& options);

struct MarkovContinuation {
  std::vector<tokens::Token> tokens;  // the drawn tokens, without the context
  bool capped = false;                // max_tokens drawn before the clock got to end_us
};

// Draws tokens from the chain after `context` until the tokenizer clock of
// context + drawn reaches end_us. PAD, SOS, EOS and MASK never belong inside a
// continuation and are drawn again (the chain gives every token a non-zero
// probability, so a draw can land on them). Deterministic for a seed.
// // any thread (the chain is only read)
[[nodiscard]] MarkovContinuation markov_continuation(const MarkovModel& markov,
                                                     std::span<const tokens::Token> context,
                                                     std::int64_t end_us, std::uint64_t seed,
                                                     std::size_t max_tokens, double temperature = 1.0);

// One system's continuation of one clip against the real one.
struct Score {
  metrics::PairMetrics pair;  // copy rates of both against the clip's context
  std::optional<double> p_art_tatum;
};

// compare_clips(real, generated) plus the copy rates; the measures are
// measure_clip() of clip.continuation and of `generated`. // any thread
[[nodiscard]] Score score_continuation(const Clip& clip, const metrics::ClipMeasures& real,
                                       const Performance& generated,
                                       const metrics::ClipMeasures& generated_measures);

// A metric of one system over its runs (one run = one seed over all clips):
// the run's value is the mean over the clips where the metric exists, except
//   note_density_gap = mean generated density / mean real density - 1 over the
//                      clips where both exist (the "within 5%");
//   p_art_tatum      = mean classifier probability.
struct MetricSummary {
  std::string name;
  std::vector<double> per_run;  // runs where the metric exists, in run order
  double mean = 0;              // of per_run
  double run_std = 0;           // population std of per_run: the spread over seeds
  double clip_std = 0;          // population std over the clips, averaged over runs
  std::size_t values = 0;       // clip values over all runs
};

// runs[r][c]: run r, clip c. One summary per named_values() field, then
// note_density_gap and p_art_tatum; a metric no run has is left out. // any thread
[[nodiscard]] std::vector<MetricSummary> summarize(const std::vector<std::vector<Score>>& runs);

// The summary called `name`, or nullptr. // any thread
[[nodiscard]] const MetricSummary* find_metric(const std::vector<MetricSummary>& metrics,
                                               const std::string& name);

// --- the targets ---------------------------------------------------------

enum class Bound { kAtMost, kAtLeast, kWithin };  // kWithin: |value| <= limit

struct Target {
  const char* metric;  // a MetricSummary name
  const char* label;
  Bound bound;
  double limit;
};

inline constexpr std::array<Target, 4> kTargets = {{
    {"pitch_class_kl", "PC-KL", Bound::kAtMost, 0.30},
    {"pctm_cosine", "PCTM cosine", Bound::kAtLeast, 0.55},
    {"note_density_gap", "density gap", Bound::kWithin, 0.05},
    {"copy_rate_generated", "copy rate", Bound::kAtMost, 0.10},
}};

struct TargetCheck {
  bool pass = false;
  double shortfall = 0;  // how far the value is from the limit; 0 when it passes
};
[[nodiscard]] TargetCheck check(const Target& target, double value);  // any thread
// "≤0.30", "≥0.55", "within ±5%". // any thread
[[nodiscard]] std::string describe_limit(const Target& target);
// "pass" or "short by 0.123" (3 significant digits; "short by 3.2 points" for
// kWithin, whose fraction shows in percent). // any thread
[[nodiscard]] std::string describe_check(const Target& target, const TargetCheck& result);

// --- the table -------------------------------------------------------------------

struct SystemSummary {
  std::string name;         // "model", "markov", ...
  std::string description;  // shown in the table
  bool reference = false;   // the real continuation: no targets
  std::vector<MetricSummary> metrics;
};

// The headline table: per system PC-KL, PCTM cosine, density, density gap, copy
// rate and P(Art Tatum) as mean ± spread over seeds, each target cell with its
// pass/fail text. // any thread
[[nodiscard]] std::string markdown_table(const std::vector<SystemSummary>& systems);

// The other pair metrics (entropy, polyphony, histogram overlaps, self-similarity,
// chords, syncopation, swing), generated values beside the real ones. // any thread
[[nodiscard]] std::string markdown_secondary_table(const std::vector<SystemSummary>& systems);

// --- style latents ------------------------------------------------------------------

// Leave-one-out nearest-centroid accuracy: each point is given the label of
// the nearest (Euclidean) class mean, its own class's mean taken without it.
// Classes with one point cannot be scored without it and are skipped, and the
// point they have still counts as a centroid. Empty when nothing can be scored.
// Throws std::invalid_argument when sizes disagree. // any thread
[[nodiscard]] std::optional<double> nearest_centroid_accuracy(const std::vector<std::vector<double>>& points,
                                                              const std::vector<std::size_t>& labels);

}  // namespace tatumflow::continuation
