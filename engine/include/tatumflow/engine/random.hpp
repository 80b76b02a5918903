// SPDX-License-Identifier: GPL-3.0-or-later
// A small seeded random number generator (xoshiro256**, seeded through
// splitmix64) with its own uniform draws. The standard distributions are
// implementation-defined, so augmentations and window sampling use these to give
// the same result for the same seed on every compiler and library.
// One Rng per thread: an instance is not thread-safe, and it never allocates.
#pragma once

#include <cstdint>

namespace tatumflow {

// splitmix64's output function: a bijection that spreads every input bit over
// the whole word. Also used to finish weak hashes (see corpus.hpp).
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit constexpr Rng(std::uint64_t seed) {  // any thread
    for (std::uint64_t& word : state_) {
      seed += 0x9e3779b97f4a7c15ULL;
      word = mix64(seed);
    }
  }

  constexpr std::uint64_t next() {  // any thread (one Rng per thread)
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  constexpr double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Uniform in [low, high).
  constexpr double uniform(double low, double high) { return low + (high - low) * uniform(); }

  // Uniform integer in [0, bound); bound > 0. Draws below 2^64 mod bound are
  // rejected, so every value is exactly equally likely.
  constexpr std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t threshold = (0 - bound) % bound;
    std::uint64_t x = next();
    while (x < threshold) x = next();
    return x % bound;
  }

  // True with probability p.
  constexpr bool chance(double p) { return uniform() < p; }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4] = {};
};

}  // namespace tatumflow
