// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/tokenizer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tatumflow/engine/token_stats.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::tokens {
namespace {

Note note_at(double onset_s, double duration_s, int pitch, int velocity = 80) {
  return {static_cast<std::int64_t>(onset_s * 1e6), static_cast<std::int64_t>(duration_s * 1e6),
          static_cast<std::uint8_t>(pitch), static_cast<std::uint8_t>(velocity), 0};
}

TEST(Tokenizer, VocabularyMatchesTheSeedLayout) {
  EXPECT_EQ(kVocabSize, 5 + 500 + 88 + 88 + 32 + 1000 + 2);
  for (int token = 0; token < kVocabSize; ++token) {
    EXPECT_NE(kind_of(static_cast<Token>(token)), Kind::Invalid) << token;
  }
  EXPECT_EQ(kind_of(static_cast<Token>(kVocabSize)), Kind::Invalid);
  EXPECT_EQ(value_of(kNoteOnBase), 21);
  EXPECT_EQ(value_of(static_cast<Token>(kNoteOffBase - 1)), 108);
  EXPECT_EQ(value_of(static_cast<Token>(kDurationBase + kMaxDurationSteps - 1)), 1000);
  EXPECT_EQ(to_string(static_cast<Token>(kTimeShiftBase + 11)), "TIME_SHIFT_120ms");
}

TEST(Tokenizer, ChordNotesShareOneTimeShiftAndVelocity) {
  Performance p;
  for (int pitch : {60, 64, 67, 71}) p.notes.push_back(note_at(1.0, 0.5, pitch));
  p.sort();
  const auto tokens = encode(p, {.add_sos = false, .add_eos = false});
  // TIME_SHIFT, VELOCITY, then NOTE_ON DURATION per note.
  ASSERT_EQ(tokens.size(), 2U + 4U * 2U);
  EXPECT_EQ(kind_of(tokens[0]), Kind::TimeShift);
  EXPECT_EQ(value_of(tokens[0]), 100);
  EXPECT_EQ(kind_of(tokens[1]), Kind::Velocity);
}

TEST(Tokenizer, TimeStaysAbsoluteAcrossChunks) {
  Performance p;
  for (double onset_s : {0.004, 4.996, 5.004, 12.346, 27.0, 61.23}) p.notes.push_back(note_at(onset_s, 0.1, 60));
  p.sort();
  const Performance decoded = decode(encode(p));
  ASSERT_EQ(decoded.notes.size(), p.notes.size());
  for (std::size_t i = 0; i < p.notes.size(); ++i) {
    EXPECT_LE(std::llabs(decoded.notes[i].onset_us - p.notes[i].onset_us), 5000) << i;
  }
}

TEST(Tokenizer, VelocityIsRestatedInEveryChunk) {
  Performance p;
  p.notes = {note_at(1.0, 0.1, 60), note_at(6.0, 0.1, 62)};
  const auto tokens = encode(p, {.add_sos = false, .add_eos = false});
  const auto chunk = std::find(tokens.begin(), tokens.end(), kChunk);
  ASSERT_NE(chunk, tokens.end());
  const auto velocity = std::find_if(chunk, tokens.end(), [](Token t) { return kind_of(t) == Kind::Velocity; });
  EXPECT_NE(velocity, tokens.end());
}

TEST(Tokenizer, RoundTripKeepsNotesWithinOneStep) {
  std::mt19937 rng(7);
  Performance p;
  double onset_s = 0.0;
  for (int i = 0; i < 3000; ++i) {
    onset_s += std::uniform_real_distribution<double>(0.0, 0.3)(rng);
    p.notes.push_back(note_at(onset_s, std::uniform_real_distribution<double>(0.001, 3.0)(rng),
                              std::uniform_int_distribution<int>(21, 108)(rng),
                              std::uniform_int_distribution<int>(1, 127)(rng)));
  }
  p.sort();
  const RoundTripStats stats = measure_round_trip(p);
  EXPECT_EQ(stats.notes_lost, 0);
  EXPECT_LE(stats.onset_error_ms_max, 5.0);
  EXPECT_LE(stats.duration_error_ms_percentile(100), 9.0);  // only sub-10 ms notes round up by more than 5 ms
  EXPECT_EQ(stats.velocity_bin_exact, stats.notes);
  EXPECT_LE(static_cast<double>(stats.tokens) / static_cast<double>(stats.notes), 4.5);
}

TEST(Tokenizer, OutOfRangePitchesFoldByOctavesAndLongNotesAreCapped) {
  Performance p;
  p.notes = {note_at(0.0, 12.0, 15), note_at(0.5, 0.2, 120)};
  p.sort();
  const Performance decoded = decode(encode(p));
  ASSERT_EQ(decoded.notes.size(), 2U);
  EXPECT_EQ(decoded.notes[0].pitch, 27);
  EXPECT_EQ(decoded.notes[0].duration_us, 10'000'000);
  EXPECT_EQ(decoded.notes[1].pitch, 108);
}

TEST(Tokenizer, PedalTransitionsRoundTripAndSameStepChangesCancel) {
  Performance p;
  p.notes = {note_at(0.0, 1.0, 60)};
  p.pedals = {{100'000, true, 0}, {900'000, false, 0}, {1'500'000, true, 0}, {1'502'000, false, 0}};
  const Performance decoded = decode(encode(p));
  ASSERT_EQ(decoded.pedals.size(), 2U);
  EXPECT_EQ(decoded.pedals[0], (PedalChange{100'000, true, 0}));
  EXPECT_EQ(decoded.pedals[1], (PedalChange{900'000, false, 0}));
}

TEST(Tokenizer, AnyTokenSequenceDecodesToAValidSaveableFile) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> any_token(0, kVocabSize + 10);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<Token> tokens(std::uniform_int_distribution<std::size_t>(0, 400)(rng));
    for (Token& token : tokens) token = static_cast<Token>(any_token(rng));
    const Performance decoded = decode(tokens);
    EXPECT_TRUE(std::is_sorted(decoded.notes.begin(), decoded.notes.end(),
                               [](const Note& a, const Note& b) { return a.onset_us < b.onset_us; }));
    for (const Note& note : decoded.notes) {
      ASSERT_GT(note.duration_us, 0);
      ASSERT_GE(note.pitch, kMinPitch);
      ASSERT_LE(note.pitch, kMaxPitch);
    }
    if (!decoded.pedals.empty()) {
      EXPECT_FALSE(decoded.pedals.back().down);
    }
    const Performance reread = parse_smf(encode_smf(decoded));
    EXPECT_EQ(reread.notes.size(), decoded.notes.size()) << "trial " << trial;
    if (!reread.pedals.empty()) {
      EXPECT_FALSE(reread.pedals.back().down);
    }
  }
}

TEST(Tokenizer, NoteOffClosesTheOldestOpenNoteAndUnclosedNotesGetTheDefault) {
  const std::vector<Token> tokens = {
      static_cast<Token>(kNoteOnBase + 60 - kMinPitch), static_cast<Token>(kNoteOnBase + 64 - kMinPitch),
      static_cast<Token>(kTimeShiftBase + 49), static_cast<Token>(kNoteOffBase + 60 - kMinPitch)};
  const Performance decoded = decode(tokens);
  ASSERT_EQ(decoded.notes.size(), 2U);
  EXPECT_EQ(decoded.notes[0].duration_us, 500'000);
  EXPECT_EQ(decoded.notes[1].duration_us, kDefaultDurationUs);
  EXPECT_EQ(end_time_us(tokens), 500'000);
}

}  // namespace
}  // namespace tatumflow::tokens
