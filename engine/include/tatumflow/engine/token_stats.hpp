// SPDX-License-Identifier: GPL-3.0-or-later
// How faithfully the tokenizer keeps a performance: encode, decode, compare
// note by note. Any non-real-time thread; stats from several threads combine
// with merge().
#pragma once

#include <cstdint>
#include <vector>

#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::tokens {

struct RoundTripStats {
  std::int64_t files = 0;
  std::int64_t notes = 0;
  std::int64_t notes_lost = 0;      // notes missing, or decoded with another pitch
  std::int64_t notes_folded = 0;    // pitch moved by octaves into 21-108
  std::int64_t notes_over_cap = 0;  // longer than the 10 s duration cap
  std::int64_t tokens = 0;
  std::int64_t velocity_bin_exact = 0;
  double onset_error_ms_max = 0.0;
  double seconds_of_music = 0.0;
  // Per-note duration errors of notes under the cap, for percentiles.
  std::vector<float> duration_error_ms;

  void merge(const RoundTripStats& other);
  [[nodiscard]] double duration_error_ms_percentile(double percentile) const;
};

[[nodiscard]] RoundTripStats measure_round_trip(const Performance& performance);

}  // namespace tatumflow::tokens
