// SPDX-License-Identifier: GPL-3.0-or-later
#include "sampling.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {

using tokens::Kind;
using tokens::Token;

namespace {
constexpr float kBlocked = -std::numeric_limits<float>::infinity();

void block(std::span<float> logits, int begin, int count) {
  std::fill_n(logits.begin() + begin, count, kBlocked);
}
}  // namespace

TokenGrammar::TokenGrammar(std::span<const Token> context) {
  for (Token token : context) push(token);
}

void TokenGrammar::push(Token token) {
  const Kind kind = tokens::kind_of(token);
  after_shift_ = false;
  expect_ = Expect::kAny;
  switch (kind) {
    case Kind::Chunk:
      now_steps_ = (now_steps_ / tokens::kStepsPerChunk + 1) * tokens::kStepsPerChunk;
      velocity_bin_ = -1;
      notes_this_step_ = 0;
      pitches_this_step_.reset();
      break;
    case Kind::TimeShift:
      now_steps_ += tokens::value_of(token);
      after_shift_ = true;
      notes_this_step_ = 0;
      pitches_this_step_.reset();
      break;
    case Kind::Velocity:
      velocity_bin_ = tokens::value_of(token);
      expect_ = Expect::kNoteOn;
      break;
    case Kind::NoteOn:
      ++notes_this_step_;
      pitches_this_step_.set(static_cast<std::size_t>(token - tokens::kNoteOnBase));
      expect_ = Expect::kDuration;
      break;
    case Kind::SustainOn:
      pedal_down_ = true;
      break;
    case Kind::SustainOff:
      pedal_down_ = false;
      break;
    case Kind::Sos:  // a new sequence
      *this = TokenGrammar();
      break;
    default:
      break;
  }
}

void TokenGrammar::mask(std::span<float> logits) const {
  if (expect_ == Expect::kDuration || expect_ == Expect::kNoteOn) {
    const int keep_begin = expect_ == Expect::kDuration ? tokens::kDurationBase : tokens::kNoteOnBase;
    const int keep_count = expect_ == Expect::kDuration ? tokens::kMaxDurationSteps : tokens::kPitchCount;
    block(logits, 0, keep_begin);
    block(logits, keep_begin + keep_count, tokens::kVocabSize - keep_begin - keep_count);
    if (expect_ == Expect::kNoteOn) block_pitches_started_this_step(logits);
    return;
  }
  block(logits, tokens::kPad, tokens::kChunk);  // PAD SOS EOS MASK
  block(logits, tokens::kNoteOffBase, tokens::kPitchCount);
  block(logits, tokens::kDurationBase, tokens::kMaxDurationSteps);
  if (after_shift_) {
    block(logits, tokens::kChunk, 1);
    block(logits, tokens::kTimeShiftBase, tokens::kMaxShiftSteps);
  } else {
    // A shift ends strictly inside the current chunk.
    const auto room = static_cast<int>(tokens::kStepsPerChunk - 1 - now_steps_ % tokens::kStepsPerChunk);
    block(logits, tokens::kTimeShiftBase + room, tokens::kMaxShiftSteps - room);
  }
  if (velocity_bin_ < 0) block(logits, tokens::kNoteOnBase, tokens::kPitchCount);
  block_pitches_started_this_step(logits);
  if (velocity_bin_ >= 0) block(logits, tokens::kVelocityBase + velocity_bin_, 1);
  block(logits, pedal_down_ ? tokens::kSustainOn : tokens::kSustainOff, 1);
  if (notes_this_step_ >= kMaxNotesPerStep) {
    block(logits, tokens::kNoteOnBase, tokens::kPitchCount);
    block(logits, tokens::kVelocityBase, tokens::kVelocityBins);
    block(logits, tokens::kSustainOn, 2);
  }
}

void TokenGrammar::block_pitches_started_this_step(std::span<float> logits) const {
  for (int pitch = 0; pitch < tokens::kPitchCount; ++pitch) {
    if (pitches_this_step_.test(static_cast<std::size_t>(pitch)))
      block(logits, tokens::kNoteOnBase + pitch, 1);
  }
}

TokenSampler::TokenSampler() : order_(tokens::kVocabSize), weights_(tokens::kVocabSize) {}

Kind TokenSampler::keep_one_kind(std::span<const float> logits, int& count, float temperature, Rng& rng) {
  std::array<double, static_cast<std::size_t>(Kind::Invalid) + 1> mass{};
  float top = kBlocked;
  for (int i = 0; i < count; ++i)
    top = std::max(top, logits[static_cast<std::size_t>(order_[static_cast<std::size_t>(i)])]);
  double total = 0.0;
  for (int i = 0; i < count; ++i) {
    const Token token = static_cast<Token>(order_[static_cast<std::size_t>(i)]);
    const double weight = std::exp((logits[static_cast<std::size_t>(token)] - top) / temperature);
    mass[static_cast<std::size_t>(tokens::kind_of(token))] += weight;
    total += weight;
  }
  double draw = rng.uniform() * total;
  std::size_t kind = 0;  // rounding past the end leaves the last kind with mass
  for (std::size_t k = 0; k < mass.size(); ++k) {
    if (mass[k] == 0.0) continue;
    kind = k;
    if (draw < mass[k]) break;
    draw -= mass[k];
  }
  int kept = 0;
  for (int i = 0; i < count; ++i) {
    const int token = order_[static_cast<std::size_t>(i)];
    if (static_cast<std::size_t>(tokens::kind_of(static_cast<Token>(token))) == kind)
      order_[static_cast<std::size_t>(kept++)] = token;
  }
  count = kept;
  return static_cast<Kind>(kind);
}

Token TokenSampler::sample(std::span<const float> logits, const SamplingOptions& options, Rng& rng) {
  int count = 0;
  for (int i = 0; i < static_cast<int>(logits.size()); ++i) {
    if (logits[static_cast<std::size_t>(i)] != kBlocked) order_[static_cast<std::size_t>(count++)] = i;
  }
  if (count == 0) throw ModelError("token sampler: every token is masked out");
  const auto logit = [&](int i) { return logits[static_cast<std::size_t>(i)]; };
  const auto by_logit = [&](int a, int b) { return logit(a) > logit(b) || (logit(a) == logit(b) && a < b); };
  const auto begin = order_.begin();
  if (options.temperature <= 0.0f)
    return static_cast<Token>(*std::min_element(begin, begin + count, by_logit));
  bool truncate = false;
  if (options.top_k > 0 || options.top_p < 1.0f) {
    const Kind kind = keep_one_kind(logits, count, options.temperature, rng);
    truncate = kind != Kind::TimeShift && kind != Kind::Duration;
  }
  if (truncate && options.top_k > 0 && options.top_k < count) {
    std::nth_element(begin, begin + options.top_k - 1, begin + count, by_logit);
    count = options.top_k;
  }
  std::sort(begin, begin + count, by_logit);
  const double top = logit(order_[0]);
  double total = 0.0;
  for (int i = 0; i < count; ++i) {
    const auto index = static_cast<std::size_t>(i);
    weights_[index] = std::exp((logit(order_[index]) - top) / options.temperature);
    total += weights_[index];
  }
  if (truncate && options.top_p < 1.0f) {
    // Keep the smallest prefix whose probability reaches top_p.
    double kept = 0.0;
    int keep = 0;
    while (keep < count && kept < options.top_p * total) kept += weights_[static_cast<std::size_t>(keep++)];
    count = std::max(keep, 1);
    total = kept > 0.0 ? kept : weights_[0];
  }
  double draw = rng.uniform() * total;
  for (int i = 0; i < count; ++i) {
    draw -= weights_[static_cast<std::size_t>(i)];
    if (draw < 0.0) return static_cast<Token>(order_[static_cast<std::size_t>(i)]);
  }
  return static_cast<Token>(order_[static_cast<std::size_t>(count - 1)]);
}

}  // namespace tatumflow::model
