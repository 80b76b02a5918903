// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target: parse_smf must accept or reject any bytes with SmfError
// only, and whatever it accepts must survive encode_smf and read back with the
// same notes and pedal changes counted.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "tatumflow/protocol/smf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tatumflow::Performance first;
  try {
    first = tatumflow::parse_smf(std::span(data, size));
  } catch (const tatumflow::SmfError&) {
    return 0;
  }
  const tatumflow::Performance second = tatumflow::parse_smf(tatumflow::encode_smf(first));
  if (second.notes.size() != first.notes.size() || second.pedals.size() != first.pedals.size()) {
    std::fprintf(stderr, "round trip: %zu notes and %zu pedal changes became %zu and %zu\n",
                 first.notes.size(), first.pedals.size(), second.notes.size(), second.pedals.size());
    std::abort();
  }
  return 0;
}
