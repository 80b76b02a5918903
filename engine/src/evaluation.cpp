// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/evaluation.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>
#include <string>

namespace tatumflow {

namespace {
bool contains_ignoring_case(const std::string& text, const std::string& part) {
  return std::search(text.begin(), text.end(), part.begin(), part.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}
}  // namespace

std::vector<ScoredWindow> scored_windows(std::span<const tokens::Token> sequence, std::size_t window_tokens,
                                         std::size_t context_tokens) {
  if (window_tokens < 2 || context_tokens + 1 >= window_tokens) {
    throw std::invalid_argument(
        "scored windows: " + std::to_string(context_tokens) + " context tokens need windows longer than " +
        std::to_string(context_tokens + 1) + " tokens, not " + std::to_string(window_tokens));
  }
  std::vector<ScoredWindow> windows;
  if (sequence.size() < 2) return windows;
  // A window's first token has nothing before it to be predicted from, so
  // consecutive windows share at least that one.
  const std::size_t overlap = std::max<std::size_t>(context_tokens, 1);
  const std::size_t stride = window_tokens - overlap;
  for (std::size_t start = 0;; start += stride) {
    const std::size_t length = std::min(window_tokens, sequence.size() - start);
    windows.push_back({sequence.subspan(start, length), start == 0 ? 1 : overlap, sequence.first(start)});
    if (start + length == sequence.size()) break;
  }
  return windows;
}

EvalWindows validation_windows(const dataset::TokenCache& cache, const EvalSelection& selection) {
  EvalWindows result;
  const auto& performances = cache.performances();
  for (std::size_t i = 0; i < performances.size(); ++i) {
    const auto& performance = performances[i];
    if (performance.split != dataset::Split::kValidation) continue;
    if (selection.transcription && performance.transcription != *selection.transcription) continue;
    if (!selection.performer.empty() && !contains_ignoring_case(performance.performer, selection.performer))
      continue;
    if (selection.max_files > 0 && result.performances == selection.max_files) break;
    const auto sequence = cache.tokens(i);
    const auto windows = scored_windows(sequence, selection.window_tokens, selection.context_tokens);
    result.windows.insert(result.windows.end(), windows.begin(), windows.end());
    ++result.performances;
    result.seconds_of_music += performance.seconds;
  }
  return result;
}

std::vector<std::span<const tokens::Token>> training_sequences(const dataset::TokenCache& cache) {
  std::vector<std::span<const tokens::Token>> sequences;
  const auto& performances = cache.performances();
  for (std::size_t i = 0; i < performances.size(); ++i) {
    if (performances[i].split == dataset::Split::kTrain) sequences.push_back(cache.tokens(i));
  }
  return sequences;
}

TokenScore token_score(double nll, double correct, std::int64_t tokens, double seconds_of_music) {
  TokenScore score;
  score.tokens = tokens;
  if (tokens == 0) return score;
  score.nll_per_token = nll / double(tokens);
  score.perplexity = std::exp(score.nll_per_token);
  score.token_accuracy = correct / double(tokens);
  score.bits_per_second_of_music = seconds_of_music > 0 ? nll / std::log(2.0) / seconds_of_music : 0.0;
  return score;
}

TokenScore evaluate(const MarkovModel& model, std::span<const ScoredWindow> windows,
                    double seconds_of_music) {
  double nll = 0.0, correct = 0.0;
  std::int64_t scored = 0;
  for (const ScoredWindow& window : windows) {
    for (std::size_t i = window.first_scored; i < window.tokens.size(); ++i) {
      const auto history = window.tokens.first(i);
      nll -= model.log_prob(history, window.tokens[i]);
      correct += model.predict(history) == window.tokens[i] ? 1.0 : 0.0;
      ++scored;
    }
  }
  return token_score(nll, correct, scored, seconds_of_music);
}

}  // namespace tatumflow
