// SPDX-License-Identifier: GPL-3.0-or-later
// Timing and order statistics for benchmark repeats and corpus bands. The
// order statistics allocate a sorted copy: any thread except a real-time one.
#pragma once

#include <chrono>
#include <vector>

namespace tatumflow {

// Milliseconds of the steady clock since `start`.  // any thread
[[nodiscard]] inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The `percent` percentile (0..100) by linear interpolation between the closest
// ranks (numpy's default), so the 50th of an odd count is its middle value.
// Throws std::invalid_argument for an empty set or a percent outside [0, 100].
[[nodiscard]] double percentile(std::vector<double> values, double percent);  // any thread

struct OrderStats {
  double median = 0.0;
  double min = 0.0;
  double p90 = 0.0;
};
// Throws std::invalid_argument for an empty set. // any thread
[[nodiscard]] OrderStats order_stats(const std::vector<double>& values);

}  // namespace tatumflow
