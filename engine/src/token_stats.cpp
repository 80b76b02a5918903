// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/token_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::tokens {

void RoundTripStats::merge(const RoundTripStats& other) {
  files += other.files;
  notes += other.notes;
  notes_lost += other.notes_lost;
  notes_folded += other.notes_folded;
  notes_over_cap += other.notes_over_cap;
  tokens += other.tokens;
  velocity_bin_exact += other.velocity_bin_exact;
  onset_error_ms_max = std::max(onset_error_ms_max, other.onset_error_ms_max);
  seconds_of_music += other.seconds_of_music;
  duration_error_ms.insert(duration_error_ms.end(), other.duration_error_ms.begin(),
                           other.duration_error_ms.end());
}

double RoundTripStats::duration_error_ms_percentile(double percentile) const {
  if (duration_error_ms.empty()) return 0.0;
  std::vector<float> sorted = duration_error_ms;
  const auto rank =
      static_cast<std::size_t>(std::ceil(percentile / 100.0 * static_cast<double>(sorted.size()))) - 1;
  const auto index = std::min(rank, sorted.size() - 1);
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(index), sorted.end());
  return sorted[index];
}

RoundTripStats measure_round_trip(const Performance& performance) {
  RoundTripStats stats;
  stats.files = 1;
  stats.seconds_of_music = performance.seconds();
  const std::vector<Token> tokens = encode(performance);
  stats.tokens = static_cast<std::int64_t>(tokens.size());
  const Performance decoded = decode(tokens);

  // The decoder emits notes in the encoder's order: by rounded onset, then pitch.
  struct Expected {
    std::int64_t step;
    int pitch;
    const Note* note;
  };
  std::vector<Expected> expected;
  expected.reserve(performance.notes.size());
  for (const Note& note : performance.notes) {
    const int pitch = fold_pitch(note.pitch);
    stats.notes_folded += pitch != note.pitch ? 1 : 0;
    expected.push_back({time_to_steps(note.onset_us), pitch, &note});
  }
  std::stable_sort(expected.begin(), expected.end(), [](const Expected& a, const Expected& b) {
    return std::tie(a.step, a.pitch) < std::tie(b.step, b.pitch);
  });

  stats.notes = static_cast<std::int64_t>(expected.size());
  const std::size_t common = std::min(expected.size(), decoded.notes.size());
  stats.notes_lost = static_cast<std::int64_t>(expected.size() - common);
  stats.duration_error_ms.reserve(common);
  for (std::size_t i = 0; i < common; ++i) {
    const Note& original = *expected[i].note;
    const Note& got = decoded.notes[i];
    if (got.pitch != expected[i].pitch) {
      ++stats.notes_lost;
      continue;
    }
    stats.onset_error_ms_max = std::max(
        stats.onset_error_ms_max, static_cast<double>(std::llabs(got.onset_us - original.onset_us)) / 1000.0);
    stats.velocity_bin_exact += velocity_bin(got.velocity) == velocity_bin(original.velocity) ? 1 : 0;
    if (original.duration_us > kMaxDurationSteps * kStepUs) {
      ++stats.notes_over_cap;
    } else {
      stats.duration_error_ms.push_back(static_cast<float>(
          static_cast<double>(std::llabs(got.duration_us - original.duration_us)) / 1000.0));
    }
  }
  return stats;
}

}  // namespace tatumflow::tokens
