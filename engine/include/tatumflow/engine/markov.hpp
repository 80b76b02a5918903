// SPDX-License-Identifier: GPL-3.0-or-later
// Variable-order Markov model over tokens: the Continuator's method and the
// baseline the neural model must beat. Counts every context up to max_order
// tokens; probabilities interpolate orders with Witten-Bell weights down to a
// uniform distribution, so every token has non-zero probability. Prediction
// (for accuracy and sampling) follows the Continuator: the longest context seen
// in training picks the continuation.
// Training and evaluation allocate; call from any non-real-time thread. A const
// model may be queried from several threads at once.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow {

class MarkovModel {
 public:
  explicit MarkovModel(int max_order = 4);

  // Counts one sequence; contexts never span two sequences.
  void train(std::span<const tokens::Token> sequence);

  // Natural-log probability of `next` after `history` (only its last max_order tokens matter).
  [[nodiscard]] double log_prob(std::span<const tokens::Token> history, tokens::Token next) const;
  // The Continuator's guess: the most frequent continuation of the longest known context.
  [[nodiscard]] tokens::Token predict(std::span<const tokens::Token> history) const;
  // Draws from the interpolated distribution sharpened or flattened by temperature.
  [[nodiscard]] tokens::Token sample(std::span<const tokens::Token> history, std::mt19937_64& rng,
                                     double temperature = 1.0) const;

  [[nodiscard]] int max_order() const { return max_order_; }
  [[nodiscard]] std::size_t contexts() const { return contexts_.size(); }

 private:
  struct ContextEntry {
    std::uint64_t key = 0;
    std::uint32_t total = 0;
    std::uint32_t distinct = 0;
    std::uint32_t best_count = 0;
    tokens::Token best = 0;
  };
  struct PairEntry {
    std::uint64_t key = 0;
    std::uint32_t count = 0;
  };
  template <typename Entry>
  class Table {
   public:
    Entry* find(std::uint64_t key);
    const Entry* find(std::uint64_t key) const;
    Entry& insert(std::uint64_t key, bool& inserted);
    [[nodiscard]] std::size_t size() const { return size_; }

   private:
    void grow();
    std::vector<Entry> slots_;
    std::size_t size_ = 0;
  };

  // Hashes of the contexts of order 0..max_order ending just before `history.end()`.
  void context_keys(std::span<const tokens::Token> history, std::vector<std::uint64_t>& keys) const;

  int max_order_;
  Table<ContextEntry> contexts_;
  Table<PairEntry> pairs_;
};

}  // namespace tatumflow
