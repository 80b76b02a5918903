// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/evaluation.hpp"

#include <algorithm>
#include <cctype>

namespace tatumflow {

namespace {
bool contains_ignoring_case(const std::string& text, const std::string& part) {
  return std::search(text.begin(), text.end(), part.begin(), part.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}
}  // namespace

EvalWindows validation_windows(const dataset::TokenCache& cache, const EvalSelection& selection) {
  EvalWindows result;
  const auto& performances = cache.performances();
  for (std::size_t i = 0; i < performances.size(); ++i) {
    const auto& performance = performances[i];
    if (performance.split != dataset::Split::kValidation) continue;
    if (selection.transcription && performance.transcription != *selection.transcription) continue;
    if (!selection.performer.empty() && !contains_ignoring_case(performance.performer, selection.performer)) continue;
    if (selection.max_files > 0 && result.performances == selection.max_files) break;
    const auto sequence = cache.tokens(i);
    for (std::size_t start = 0; start < sequence.size(); start += selection.window_tokens) {
      result.windows.push_back(sequence.subspan(start, std::min(selection.window_tokens, sequence.size() - start)));
    }
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

}  // namespace tatumflow
