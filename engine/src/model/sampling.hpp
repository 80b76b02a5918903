// SPDX-License-Identifier: GPL-3.0-or-later
// Sampling-time token grammar and the temperature / top-k / top-p sampler.
// No torch: they work on plain float logits. Both allocate only in their
// constructors, so the decode loop does not. Inference thread.
#pragma once

#include <bitset>
#include <cstdint>
#include <span>
#include <vector>

#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::model {

// The sequences tokens::encode() produces, as a state machine over the tokens
// sampled so far: [VELOCITY] NOTE_ON DURATION per note, VELOCITY restated before
// the first note of each 5 s chunk, one TIME_SHIFT per move and never across a
// chunk boundary (<T> comes first), pedal changes only as transitions. Special
// tokens, NOTE_OFF (never emitted by the encoder) and EOS are never allowed.
// At most kMaxNotesPerStep notes per 10 ms step, so the clock always advances,
// and no pitch twice in one step (it would sound as one louder note).
class TokenGrammar {
 public:
  static constexpr int kMaxNotesPerStep = 16;

  TokenGrammar() = default;
  // The state after `context` (any tokens; ungrammatical ones are absorbed).
  explicit TokenGrammar(std::span<const tokens::Token> context);

  void push(tokens::Token token);
  // Sets the logits of every token not allowed next to -infinity. logits.size() == kVocabSize.
  void mask(std::span<float> logits) const;
  [[nodiscard]] std::int64_t now_us() const { return now_steps_ * tokens::kStepUs; }
  [[nodiscard]] int velocity_bin() const { return velocity_bin_; }  // -1: none stated since the last <T>

 private:
  void block_pitches_started_this_step(std::span<float> logits) const;

  enum class Expect : std::uint8_t { kAny, kNoteOn, kDuration };
  Expect expect_ = Expect::kAny;
  std::int64_t now_steps_ = 0;
  int velocity_bin_ = -1;  // -1: not stated in this chunk
  bool pedal_down_ = false;
  bool after_shift_ = false;
  int notes_this_step_ = 0;
  std::bitset<tokens::kPitchCount> pitches_this_step_;
};

// top_k and top_p cut within one kind of token (note, velocity, ...), drawn
// first from the whole distribution, and never cut time shifts or durations.
// Cut across kinds, they favour kinds whose mass sits on a few tokens (notes)
// over kinds whose mass is spread (time shifts); cut within the timing kinds,
// they drop the long rests and notes of the tail. Both made the music denser
// than the model's own (docs/training.md).
struct SamplingOptions {
  float temperature = 1.0f;  // <= 0: greedy
  int top_k = 0;             // 0: all
  float top_p = 1.0f;        // >= 1: all
};

// Draws a token from logits (entries at -infinity are never drawn).
class TokenSampler {
 public:
  TokenSampler();
  // Throws ModelError when every logit is -infinity.
  [[nodiscard]] tokens::Token sample(std::span<const float> logits, const SamplingOptions& options, Rng& rng);

 private:
  // Draws a kind from the untruncated distribution over order_[0, count) and
  // keeps only that kind's tokens there (count becomes how many); returns it.
  tokens::Kind keep_one_kind(std::span<const float> logits, int& count, float temperature, Rng& rng);

  std::vector<int> order_;
  std::vector<double> weights_;
};

}  // namespace tatumflow::model
