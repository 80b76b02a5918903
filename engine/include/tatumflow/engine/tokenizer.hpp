// SPDX-License-Identifier: GPL-3.0-or-later
// The TatumFlow vocabulary (the seed document's, 1715 tokens) and the lossless
// note <-> token coding. Stateless and allocation only in the returned vectors:
// any non-real-time thread may call it.
//
// Layout:  PAD SOS EOS MASK <T> | TIME_SHIFT 10..5000 ms (500) | NOTE_ON 21..108 (88)
//          | NOTE_OFF 21..108 (88) | VELOCITY bins 0..31 (32) | DURATION 10..10000 ms (1000)
//          | SUSTAIN_ON SUSTAIN_OFF
//
// Time is an absolute 10 ms grid split into 5 s chunks. `<T>` moves the clock to
// the start of the next chunk; TIME_SHIFT(k) moves it forward k steps. Onsets are
// rounded on the absolute grid, so errors never accumulate across chunks.
// A note is [VELOCITY] NOTE_ON DURATION: VELOCITY only when the velocity bin
// differs from the previous note's, and no TIME_SHIFT for notes of a chord.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::tokens {

using Token = std::uint16_t;

inline constexpr std::uint32_t kTokenizerVersion = 1;

inline constexpr std::int64_t kStepUs = 10'000;
inline constexpr std::int64_t kStepsPerChunk = 500;  // 5 s
inline constexpr std::int64_t kChunkUs = kStepUs * kStepsPerChunk;
inline constexpr int kMinPitch = 21;
inline constexpr int kMaxPitch = 108;
inline constexpr int kPitchCount = kMaxPitch - kMinPitch + 1;
inline constexpr int kVelocityBins = 32;
inline constexpr int kMaxDurationSteps = 1000;  // 10 s
inline constexpr int kMaxShiftSteps = 500;

inline constexpr Token kPad = 0;
inline constexpr Token kSos = 1;
inline constexpr Token kEos = 2;
inline constexpr Token kMask = 3;
inline constexpr Token kChunk = 4;                                     // <T>
inline constexpr Token kTimeShiftBase = 5;                             // + steps - 1
inline constexpr Token kNoteOnBase = kTimeShiftBase + kMaxShiftSteps;  // + pitch - 21
inline constexpr Token kNoteOffBase = kNoteOnBase + kPitchCount;       // + pitch - 21
inline constexpr Token kVelocityBase = kNoteOffBase + kPitchCount;     // + bin
inline constexpr Token kDurationBase = kVelocityBase + kVelocityBins;  // + steps - 1
inline constexpr Token kSustainOn = kDurationBase + kMaxDurationSteps;
inline constexpr Token kSustainOff = kSustainOn + 1;
inline constexpr int kVocabSize = kSustainOff + 1;

enum class Kind {
  Pad,
  Sos,
  Eos,
  Mask,
  Chunk,
  TimeShift,
  NoteOn,
  NoteOff,
  Velocity,
  Duration,
  SustainOn,
  SustainOff,
  Invalid
};

[[nodiscard]] Kind kind_of(Token token);
// The token's argument: steps for TIME_SHIFT/DURATION, MIDI pitch for NOTE_ON/OFF, bin for VELOCITY.
[[nodiscard]] int value_of(Token token);
[[nodiscard]] std::string to_string(Token token);  // "NOTE_ON_60", "TIME_SHIFT_120ms", ...

[[nodiscard]] inline int velocity_bin(int velocity) {
  return velocity < 0 ? 0 : (velocity > 127 ? 31 : velocity >> 2);
}
[[nodiscard]] inline std::uint8_t bin_velocity(int bin) { return static_cast<std::uint8_t>(bin * 4 + 2); }

// Documented rules for what the vocabulary cannot hold:
//  * pitches below 21 / above 108 are moved by whole octaves into range;
//  * durations are rounded to 10 ms, at least 10 ms, at most 10 s (longer notes are cut at 10 s);
//  * channels are merged (the model is single-piano);
//  * pedal changes that fall on the same 10 ms step as the opposite change cancel out.
// The rules above as the encoder applies them, for callers that compare notes with their tokens.
[[nodiscard]] int fold_pitch(int pitch);                         // into 21-108 by octaves
[[nodiscard]] std::int64_t time_to_steps(std::int64_t time_us);  // nearest 10 ms step, >= 0

struct EncodeOptions {
  bool add_sos = true;
  bool add_eos = true;
};

[[nodiscard]] std::vector<Token> encode(const Performance& performance, const EncodeOptions& options = {});

// Decodes any token sequence, even a nonsensical one, into a valid performance:
// a DURATION applies to the latest NOTE_ON still without one, a NOTE_OFF closes the
// oldest open note of its pitch, notes never closed get kDefaultDurationUs, stray
// tokens are ignored, a pedal still down at the end is released. Notes are
// channel `channel`, sorted, and safe to write with encode_smf.
inline constexpr std::int64_t kDefaultDurationUs = 250'000;
[[nodiscard]] Performance decode(std::span<const Token> tokens, std::uint8_t channel = 0);

// Time (us) of the tokenizer clock after the tokens: lets a caller continue a sequence.
[[nodiscard]] std::int64_t end_time_us(std::span<const Token> tokens);

}  // namespace tatumflow::tokens
