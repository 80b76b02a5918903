// SPDX-License-Identifier: GPL-3.0-or-later
// Training-time data augmentation on notes, before tokenization. Each
// augmentation fires with its own probability and draws its parameter from a
// seeded Rng (random.hpp), so the same seed gives the same result everywhere.
// Allocation only in the returned or edited vectors; any non-real-time thread
// may call these, each with its own Rng.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::augment {

struct AugmentOptions {
  // Transpose by a whole number of semitones, uniform in [-max, max] without 0,
  // narrowed so that every note stays on the piano (21..108); no shift when no
  // such transposition exists.
  double pitch_shift_probability = 0.3;
  int max_pitch_shift = 6;
  // Scale every time (onsets, durations, pedal changes, length) by a factor
  // uniform in [min, max).
  double time_stretch_probability = 0.2;
  double min_time_stretch = 0.9;
  double max_time_stretch = 1.1;
  // Scale velocities by a factor uniform in [min, max), rounded, clamped to 1..127.
  double velocity_scale_probability = 0.2;
  double min_velocity_scale = 0.8;
  double max_velocity_scale = 1.2;
  // Drop each note independently with a rate uniform in [min, max).
  double note_dropout_probability = 0.1;
  double min_note_dropout = 0.05;
  double max_note_dropout = 0.10;
};

// What augment() did, for logs and tests; the neutral value where an
// augmentation did not fire.
struct Applied {
  int pitch_shift = 0;
  double time_stretch = 1.0;
  double velocity_scale = 1.0;
  double note_dropout = 0.0;  // the rate drawn (0 when it did not fire)
  std::size_t notes_dropped = 0;
};

// Throws std::invalid_argument for a probability outside [0, 1] or a range
// with min > max (or a stretch or scale <= 0, a dropout outside [0, 1]).
void validate(const AugmentOptions& options);

// Edits `performance` in place (pitch shift, time stretch, velocity scale, note
// dropout, in that order) and leaves it sorted. Every augmentation takes its
// own sub-seed from `rng` whether or not it fires, so changing one option never
// changes what the others draw.
Applied augment(Performance& performance, Rng& rng, const AugmentOptions& options = {});

// decode -> augment -> encode, for sequences taken from the token cache. The
// time stretch is anchored at the start of the sequence's first 5 s chunk, so
// a window that starts with <T> still does. SOS/EOS are kept where the input
// has them. The result's length differs from the input's (dropped notes,
// stretched time, a note cut off at the window's end gains its DURATION):
// callers crop or pad.
[[nodiscard]] std::vector<tokens::Token> augment_tokens(std::span<const tokens::Token> sequence, Rng& rng,
                                                        const AugmentOptions& options = {});

}  // namespace tatumflow::augment
