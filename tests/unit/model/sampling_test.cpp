// SPDX-License-Identifier: GPL-3.0-or-later
// The sampling grammar (it must accept everything the encoder writes and force
// the note syntax) and the temperature / top-k / top-p sampler.
#include "model/sampling.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {
namespace {

using tokens::Token;

std::vector<float> open_logits() { return std::vector<float>(tokens::kVocabSize, 0.0f); }

bool allowed(const TokenGrammar& grammar, Token token) {
  auto logits = open_logits();
  grammar.mask(logits);
  return std::isfinite(logits[token]);
}

Token shift(int steps) { return static_cast<Token>(tokens::kTimeShiftBase + steps - 1); }
Token note_on(int pitch) { return static_cast<Token>(tokens::kNoteOnBase + pitch - tokens::kMinPitch); }
Token velocity(int bin) { return static_cast<Token>(tokens::kVelocityBase + bin); }
Token duration(int steps) { return static_cast<Token>(tokens::kDurationBase + steps - 1); }

TEST(TokenGrammar, AcceptsEverythingTheEncoderWrites) {
  for (int variant = 0; variant < 6; ++variant) {
    Performance performance = testing::synthetic_performance(variant, 30.0);
    performance.pedals = {
        {1'000'000, true, 0}, {2'500'000, false, 0}, {7'010'000, true, 0}, {9'000'000, false, 0}};
    const auto sequence = tokens::encode(performance, {.add_sos = true, .add_eos = false});
    TokenGrammar grammar;
    for (std::size_t i = 0; i < sequence.size(); ++i) {
      if (i > 0) {
        ASSERT_TRUE(allowed(grammar, sequence[i])) << "token " << i << " " << tokens::to_string(sequence[i]);
      }
      grammar.push(sequence[i]);
    }
    EXPECT_EQ(grammar.now_us(), tokens::end_time_us(sequence));
  }
}

TEST(TokenGrammar, ForcesNoteSyntax) {
  TokenGrammar grammar;
  EXPECT_FALSE(allowed(grammar, note_on(60)));  // no velocity stated yet
  EXPECT_TRUE(allowed(grammar, velocity(20)));
  for (Token special : {tokens::kPad, tokens::kSos, tokens::kEos, tokens::kMask})
    EXPECT_FALSE(allowed(grammar, special));
  EXPECT_FALSE(allowed(grammar, static_cast<Token>(tokens::kNoteOffBase + 10)));
  EXPECT_FALSE(allowed(grammar, duration(10)));

  grammar.push(velocity(20));
  EXPECT_TRUE(allowed(grammar, note_on(60)));
  EXPECT_FALSE(allowed(grammar, shift(5)));
  EXPECT_FALSE(allowed(grammar, velocity(3)));

  grammar.push(note_on(60));
  EXPECT_TRUE(allowed(grammar, duration(25)));
  EXPECT_FALSE(allowed(grammar, note_on(62)));
  EXPECT_FALSE(allowed(grammar, shift(5)));

  grammar.push(duration(25));
  EXPECT_TRUE(allowed(grammar, note_on(64)));    // velocity still stated
  EXPECT_FALSE(allowed(grammar, velocity(20)));  // restating the same bin never happens
  EXPECT_FALSE(allowed(grammar, duration(25)));
}

TEST(TokenGrammar, TimeShiftsStayInsideTheChunk) {
  TokenGrammar grammar;
  grammar.push(shift(100));
  EXPECT_EQ(grammar.now_us(), 1'000'000);
  EXPECT_FALSE(allowed(grammar, shift(1)));  // one shift per move
  EXPECT_FALSE(allowed(grammar, tokens::kChunk));
  grammar.push(velocity(10));
  grammar.push(note_on(60));
  grammar.push(duration(10));
  EXPECT_TRUE(allowed(grammar, shift(399)));
  EXPECT_FALSE(allowed(grammar, shift(400)));  // would reach the next chunk: <T> first
  EXPECT_TRUE(allowed(grammar, tokens::kChunk));
  grammar.push(tokens::kChunk);
  EXPECT_EQ(grammar.now_us(), 5'000'000);
  EXPECT_FALSE(allowed(grammar, note_on(60)));  // each chunk restates the velocity
}

TEST(TokenGrammar, PedalAndChordLimits) {
  TokenGrammar grammar;
  EXPECT_FALSE(allowed(grammar, tokens::kSustainOff));
  grammar.push(tokens::kSustainOn);
  EXPECT_FALSE(allowed(grammar, tokens::kSustainOn));
  EXPECT_TRUE(allowed(grammar, tokens::kSustainOff));
  grammar.push(velocity(9));
  for (int i = 0; i < TokenGrammar::kMaxNotesPerStep; ++i) {
    grammar.push(note_on(40 + i));
    grammar.push(duration(5));
  }
  EXPECT_FALSE(allowed(grammar, note_on(80)));
  EXPECT_FALSE(allowed(grammar, velocity(2)));
  EXPECT_TRUE(allowed(grammar, shift(3)));  // the clock must move on
}

TEST(TokenGrammar, NoPitchTwiceInOneStep) {
  TokenGrammar grammar;
  grammar.push(velocity(12));
  grammar.push(note_on(60));
  grammar.push(duration(8));
  EXPECT_FALSE(allowed(grammar, note_on(60)));
  EXPECT_TRUE(allowed(grammar, note_on(61)));
  grammar.push(velocity(20));
  EXPECT_FALSE(allowed(grammar, note_on(60)));  // a new velocity does not make it a new note
  grammar.push(note_on(62));
  grammar.push(duration(8));
  grammar.push(shift(1));
  EXPECT_TRUE(allowed(grammar, note_on(60)));
  grammar.push(note_on(60));
  grammar.push(duration(8));
  grammar.push(tokens::kChunk);
  grammar.push(velocity(20));
  EXPECT_TRUE(allowed(grammar, note_on(60)));  // a chunk boundary moves the clock too
}

TEST(TokenSampler, GreedyAndTopKOneTakeTheBest) {
  TokenSampler sampler;
  Rng rng(1);
  auto logits = open_logits();
  logits[note_on(60)] = 5.0f;
  logits[note_on(61)] = 4.9f;
  EXPECT_EQ(sampler.sample(logits, {0.0f, 0, 1.0f}, rng), note_on(60));
  // Top-k cuts within the kind drawn: with only notes open, the best note.
  std::fill_n(logits.begin(), tokens::kNoteOnBase, -std::numeric_limits<float>::infinity());
  std::fill(logits.begin() + tokens::kNoteOnBase + tokens::kPitchCount, logits.end(),
            -std::numeric_limits<float>::infinity());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sampler.sample(logits, {2.0f, 1, 1.0f}, rng), note_on(60));
}

TEST(TokenSampler, TruncationKeepsEachKindsShare) {
  // Half the mass on one note, half spread over 100 time shifts: cut across
  // kinds, top-k 50 would give the note 0.5 / (0.5 + 49 * 0.005) = 67 %.
  TokenSampler sampler;
  Rng rng(4);
  auto logits = std::vector<float>(tokens::kVocabSize, -std::numeric_limits<float>::infinity());
  logits[note_on(60)] = std::log(0.5f);
  for (int steps = 1; steps <= 100; ++steps) logits[shift(steps)] = std::log(0.005f);
  int notes = 0;
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    const Token token = sampler.sample(logits, {1.0f, 50, 0.9f}, rng);
    if (token == note_on(60)) {
      ++notes;
    } else {
      ASSERT_EQ(tokens::kind_of(token), tokens::Kind::TimeShift);
    }
  }
  EXPECT_NEAR(notes / double(draws), 0.5, 0.02);
}

TEST(TokenSampler, TimingIsNeverTruncated) {
  // Long rests and long notes live in the tail: top-k 1 still draws them.
  TokenSampler sampler;
  Rng rng(5);
  for (auto timing : {shift, duration}) {
    auto logits = std::vector<float>(tokens::kVocabSize, -std::numeric_limits<float>::infinity());
    for (int steps = 1; steps <= 100; ++steps) logits[timing(steps)] = steps == 1 ? 0.0f : -3.0f;
    std::set<Token> drawn;
    for (int i = 0; i < 2000; ++i) drawn.insert(sampler.sample(logits, {1.0f, 1, 0.5f}, rng));
    EXPECT_GT(drawn.size(), 50U);
  }
}

TEST(TokenSampler, FollowsTheSoftmaxAndNeverDrawsMaskedTokens) {
  TokenSampler sampler;
  Rng rng(2);
  auto logits = std::vector<float>(tokens::kVocabSize, -std::numeric_limits<float>::infinity());
  logits[note_on(60)] = std::log(0.6f);
  logits[note_on(61)] = std::log(0.3f);
  logits[note_on(62)] = std::log(0.1f);
  int counts[3] = {0, 0, 0};
  const int draws = 20000;
  for (int i = 0; i < draws; ++i) {
    const Token token = sampler.sample(logits, {1.0f, 0, 1.0f}, rng);
    ASSERT_GE(token, note_on(60));
    ASSERT_LE(token, note_on(62));
    ++counts[token - note_on(60)];
  }
  EXPECT_NEAR(counts[0] / double(draws), 0.6, 0.02);
  EXPECT_NEAR(counts[1] / double(draws), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(draws), 0.1, 0.02);
  // Nucleus 0.5: the 0.6 token alone reaches it.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.sample(logits, {1.0f, 0, 0.5f}, rng), note_on(60));
  // Nucleus 0.8: the first two.
  for (int i = 0; i < 200; ++i) EXPECT_LE(sampler.sample(logits, {1.0f, 0, 0.8f}, rng), note_on(61));
}

TEST(TokenSampler, AllMaskedIsAnError) {
  TokenSampler sampler;
  Rng rng(3);
  const auto logits = std::vector<float>(tokens::kVocabSize, -std::numeric_limits<float>::infinity());
  EXPECT_THROW((void)sampler.sample(logits, {1.0f, 0, 1.0f}, rng), ModelError);
}

}  // namespace
}  // namespace tatumflow::model
