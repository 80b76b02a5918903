// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/bench_stats.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace tatumflow {

double percentile(std::vector<double> values, double percent) {
  if (values.empty()) throw std::invalid_argument("percentile of an empty set");
  if (!(percent >= 0.0 && percent <= 100.0)) {
    throw std::invalid_argument("percentile " + std::to_string(percent) + " outside [0, 100]");
  }
  std::sort(values.begin(), values.end());
  const double rank = percent / 100.0 * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(rank));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (rank - static_cast<double>(below)) * (values[above] - values[below]);
}

OrderStats order_stats(const std::vector<double>& values) {
  return {percentile(values, 50.0), percentile(values, 0.0), percentile(values, 90.0)};
}

}  // namespace tatumflow
