// SPDX-License-Identifier: GPL-3.0-or-later
// What `tatumflow eval` scores: validation performances cut into windows, the
// same windows for the neural model and the Markov baseline, so their numbers
// compare token for token. Any non-real-time thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/markov.hpp"

namespace tatumflow {

// A window of tokens of which those from first_scored on are scored, each given
// every token before it in the window; the ones before first_scored are context.
struct ScoredWindow {
  std::span<const tokens::Token> tokens;
  std::size_t first_scored = 1;
  std::span<const tokens::Token> before;  // the performance's tokens before the window
};

// Cuts a sequence into windows of at most window_tokens that score every token
// after the first exactly once. Consecutive windows overlap by context_tokens
// (strided evaluation; at least 1), so every scored token after the first
// window sees at least context_tokens predecessors; with 0 or 1 a window's
// early tokens see few. Throws std::invalid_argument unless
// context_tokens < window_tokens - 1.
[[nodiscard]] std::vector<ScoredWindow> scored_windows(std::span<const tokens::Token> sequence,
                                                       std::size_t window_tokens, std::size_t context_tokens);

struct EvalSelection {
  std::size_t window_tokens = 512;
  std::size_t context_tokens = 0;  // see scored_windows()
  std::size_t max_files = 0;       // 0: all
  std::string performer;           // case-insensitive substring; empty: all
  std::optional<dataset::Transcription> transcription = dataset::Transcription::kKong;
};

struct EvalWindows {
  std::vector<ScoredWindow> windows;  // views into the cache
  std::size_t performances = 0;
  double seconds_of_music = 0.0;  // of the performances the windows cover
};

// Validation performances in cache order, each cut by scored_windows().
[[nodiscard]] EvalWindows validation_windows(const dataset::TokenCache& cache,
                                             const EvalSelection& selection);

// Every token of the training split (both transcriptions), one span per performance.
[[nodiscard]] std::vector<std::span<const tokens::Token>> training_sequences(
    const dataset::TokenCache& cache);

// Next-token prediction numbers over a set of scored tokens.
struct TokenScore {
  std::int64_t tokens = 0;
  double nll_per_token = 0.0;  // nats
  double perplexity = 0.0;
  double token_accuracy = 0.0;
  double bits_per_second_of_music = 0.0;
};

// From the summed negative log-likelihood (nats) and the count of correct
// (most likely) predictions over `tokens` tokens.
[[nodiscard]] TokenScore token_score(double nll, double correct, std::int64_t tokens,
                                     double seconds_of_music);

// Scores each window's scored tokens, as the neural model's evaluation does.
[[nodiscard]] TokenScore evaluate(const MarkovModel& model, std::span<const ScoredWindow> windows,
                                  double seconds_of_music);

}  // namespace tatumflow
