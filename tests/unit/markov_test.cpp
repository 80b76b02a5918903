// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/markov.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "tatumflow/engine/evaluation.hpp"

namespace tatumflow {
namespace {

using tokens::Token;

std::vector<Token> repeating(std::initializer_list<Token> pattern, int repeats) {
  std::vector<Token> out;
  for (int r = 0; r < repeats; ++r) out.insert(out.end(), pattern);
  return out;
}

double total_probability(const MarkovModel& model, std::span<const Token> history) {
  double sum = 0.0;
  for (int token = 0; token < tokens::kVocabSize; ++token) {
    sum += std::exp(model.log_prob(history, static_cast<Token>(token)));
  }
  return sum;
}

TEST(Markov, ProbabilitiesSumToOneForSeenAndUnseenHistories) {
  MarkovModel model(3);
  const auto sequence = repeating({10, 20, 30, 10, 40}, 50);
  model.train(sequence);
  const std::vector<Token> seen = {10, 20, 30};
  const std::vector<Token> unseen = {7, 8, 9};
  EXPECT_NEAR(total_probability(model, seen), 1.0, 1e-9);
  EXPECT_NEAR(total_probability(model, unseen), 1.0, 1e-9);
  EXPECT_NEAR(total_probability(model, {}), 1.0, 1e-9);
}

TEST(Markov, LongerContextsDisambiguate) {
  // After 10 comes 20 or 40; only two tokens of context tell which.
  const auto sequence = repeating({10, 20, 30, 10, 40}, 50);
  MarkovModel first_order(1);
  MarkovModel third_order(3);
  first_order.train(sequence);
  third_order.train(sequence);
  const std::vector<Token> history = {20, 30, 10};
  EXPECT_EQ(third_order.predict(history), 40);
  EXPECT_GT(third_order.log_prob(history, 40), first_order.log_prob(history, 40));
  EXPECT_GT(third_order.log_prob(history, 40), std::log(0.9));
}

TEST(Markov, EvaluationBeatsUniformOnPredictableData) {
  MarkovModel model(4);
  const auto train = repeating({5, 6, 7, 8, 9, 100, 200}, 100);
  model.train(train);
  const auto held_out = repeating({5, 6, 7, 8, 9, 100, 200}, 10);
  const ScoredWindow window{held_out, 1, {}};
  const TokenScore result = evaluate(model, std::span(&window, 1), 7.0);
  EXPECT_EQ(result.tokens, static_cast<std::int64_t>(held_out.size() - 1));
  EXPECT_LT(result.nll_per_token, 0.2);
  EXPECT_GT(result.token_accuracy, 0.95);
  EXPECT_GT(result.bits_per_second_of_music, 0.0);
}

TEST(Markov, SamplingFollowsTheData) {
  MarkovModel model(2);
  model.train(repeating({1, 2, 3}, 200));
  std::mt19937_64 rng(3);
  const std::vector<Token> history = {1, 2};
  int hits = 0;
  for (int i = 0; i < 100; ++i) hits += model.sample(history, rng, 0.5) == 3 ? 1 : 0;
  EXPECT_GT(hits, 95);
}

}  // namespace
}  // namespace tatumflow
