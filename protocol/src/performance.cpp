// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/performance.hpp"

#include <algorithm>
#include <tuple>

namespace tatumflow {

void Performance::sort() {
  std::stable_sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    return std::tie(a.onset_us, a.pitch) < std::tie(b.onset_us, b.pitch);
  });
  std::stable_sort(pedals.begin(), pedals.end(),
                   [](const PedalChange& a, const PedalChange& b) { return a.time_us < b.time_us; });
  for (const Note& n : notes) length_us = std::max(length_us, n.offset_us());
  for (const PedalChange& p : pedals) length_us = std::max(length_us, p.time_us);
}

double Performance::seconds() const {
  std::int64_t end_us = length_us;
  for (const Note& n : notes) end_us = std::max(end_us, n.offset_us());
  return static_cast<double>(end_us) * 1e-6;
}

}  // namespace tatumflow
