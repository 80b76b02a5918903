// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/markov.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace tatumflow {

namespace {

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Zero marks an empty slot, so no real key may be zero.
std::uint64_t nonzero(std::uint64_t key) { return key == 0 ? 1 : key; }

std::uint64_t pair_key(std::uint64_t context_key, tokens::Token token) {
  return nonzero(mix(context_key ^ (static_cast<std::uint64_t>(token) + 1) * 0xd6e8feb86659fd93ULL));
}

}  // namespace

template <typename Entry>
Entry* MarkovModel::Table<Entry>::find(std::uint64_t key) {
  return const_cast<Entry*>(std::as_const(*this).find(key));
}

template <typename Entry>
const Entry* MarkovModel::Table<Entry>::find(std::uint64_t key) const {
  if (slots_.empty()) return nullptr;
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = key & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == key) return &slots_[i];
    if (slots_[i].key == 0) return nullptr;
  }
}

template <typename Entry>
Entry& MarkovModel::Table<Entry>::insert(std::uint64_t key, bool& inserted) {
  if ((size_ + 1) * 10 > slots_.size() * 7) grow();
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = key & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == key) {
      inserted = false;
      return slots_[i];
    }
    if (slots_[i].key == 0) {
      slots_[i].key = key;
      ++size_;
      inserted = true;
      return slots_[i];
    }
  }
}

template <typename Entry>
void MarkovModel::Table<Entry>::grow() {
  std::vector<Entry> old = std::move(slots_);
  slots_.assign(std::max<std::size_t>(1024, old.size() * 2), Entry{});
  const std::size_t mask = slots_.size() - 1;
  for (const Entry& entry : old) {
    if (entry.key == 0) continue;
    std::size_t i = entry.key & mask;
    while (slots_[i].key != 0) i = (i + 1) & mask;
    slots_[i] = entry;
  }
}

MarkovModel::MarkovModel(int max_order) : max_order_(max_order) {
  if (max_order < 0 || max_order > 32) throw std::invalid_argument("Markov order must be 0-32");
}

void MarkovModel::context_keys(std::span<const tokens::Token> history,
                               std::vector<std::uint64_t>& keys) const {
  keys.clear();
  std::uint64_t key = nonzero(mix(0x51ed270b27b1e1a3ULL));
  keys.push_back(key);
  const auto available = std::min<std::size_t>(history.size(), static_cast<std::size_t>(max_order_));
  for (std::size_t k = 1; k <= available; ++k) {
    key = nonzero(mix(key ^ (static_cast<std::uint64_t>(history[history.size() - k]) << 17) ^ k));
    keys.push_back(key);
  }
}

void MarkovModel::train(std::span<const tokens::Token> sequence) {
  std::vector<std::uint64_t> keys;
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    context_keys(sequence.first(i), keys);
    const tokens::Token next = sequence[i];
    for (std::uint64_t context_key : keys) {
      bool new_pair = false;
      PairEntry& pair = pairs_.insert(pair_key(context_key, next), new_pair);
      ++pair.count;
      bool new_context = false;
      ContextEntry& context = contexts_.insert(context_key, new_context);
      ++context.total;
      context.distinct += new_pair ? 1 : 0;
      if (pair.count > context.best_count) {
        context.best_count = pair.count;
        context.best = next;
      }
    }
  }
}

double MarkovModel::log_prob(std::span<const tokens::Token> history, tokens::Token next) const {
  thread_local std::vector<std::uint64_t> keys;
  context_keys(history, keys);
  double probability = 1.0 / tokens::kVocabSize;
  for (std::uint64_t context_key : keys) {
    const ContextEntry* context = contexts_.find(context_key);
    if (context == nullptr) break;
    const PairEntry* pair = pairs_.find(pair_key(context_key, next));
    const double count = pair != nullptr ? pair->count : 0.0;
    probability = (count + context->distinct * probability) / (context->total + context->distinct);
  }
  return std::log(probability);
}

tokens::Token MarkovModel::predict(std::span<const tokens::Token> history) const {
  thread_local std::vector<std::uint64_t> keys;
  context_keys(history, keys);
  tokens::Token best = tokens::kEos;
  for (std::uint64_t context_key : keys) {
    const ContextEntry* context = contexts_.find(context_key);
    if (context == nullptr) break;
    best = context->best;
  }
  return best;
}

tokens::Token MarkovModel::sample(std::span<const tokens::Token> history, std::mt19937_64& rng,
                                  double temperature) const {
  std::vector<double> weights(tokens::kVocabSize);
  for (int token = 0; token < tokens::kVocabSize; ++token) {
    weights[static_cast<std::size_t>(token)] =
        std::exp(log_prob(history, static_cast<tokens::Token>(token)) / std::max(temperature, 1e-3));
  }
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  return static_cast<tokens::Token>(pick(rng));
}

}  // namespace tatumflow
