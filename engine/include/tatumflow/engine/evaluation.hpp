// SPDX-License-Identifier: GPL-3.0-or-later
// What `tatumflow eval` scores: validation performances cut into consecutive
// windows, the same windows for the neural model and the Markov baseline, so
// their numbers compare token for token. Any non-real-time thread.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/dataset.hpp"

namespace tatumflow {

struct EvalSelection {
  std::size_t window_tokens = 512;
  std::size_t max_files = 0;  // 0: all
  std::string performer;      // case-insensitive substring; empty: all
  std::optional<dataset::Transcription> transcription = dataset::Transcription::kKong;
};

struct EvalWindows {
  std::vector<std::span<const tokens::Token>> windows;  // views into the cache
  std::size_t performances = 0;
  double seconds_of_music = 0.0;  // of the performances the windows cover
};

// Validation performances in cache order, each cut into windows of at most
// window_tokens (every token belongs to exactly one window).
[[nodiscard]] EvalWindows validation_windows(const dataset::TokenCache& cache, const EvalSelection& selection);

// Every token of the training split (both transcriptions), one span per performance.
[[nodiscard]] std::vector<std::span<const tokens::Token>> training_sequences(const dataset::TokenCache& cache);

}  // namespace tatumflow
