// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/augment.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace tatumflow::augment {

namespace {

void check_probability(double p, const char* name) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument(std::string("augment: ") + name + " " + std::to_string(p) +
                                " is outside [0, 1]");
  }
}

// [low, high] must be ordered, finite and above zero (or at zero when zero_ok).
void check_range(double low, double high, bool zero_ok, const char* name) {
  const bool low_ok = zero_ok ? low >= 0.0 : low > 0.0;
  if (!(low_ok && low <= high && std::isfinite(high))) {
    throw std::invalid_argument(std::string("augment: ") + name + " range [" + std::to_string(low) + ", " +
                                std::to_string(high) + "] is empty, not finite or below zero");
  }
}

std::int64_t scale_us(std::int64_t time_us, double factor) {
  return std::llround(static_cast<double>(time_us) * factor);
}

int pitch_shift(const Performance& performance, Rng& rng, const AugmentOptions& options) {
  if (!rng.chance(options.pitch_shift_probability) || performance.notes.empty()) return 0;
  const auto [lowest, highest] =
      std::minmax_element(performance.notes.begin(), performance.notes.end(),
                          [](const Note& a, const Note& b) { return a.pitch < b.pitch; });
  // Bounds always include 0, so notes already off the piano are never pushed further off.
  const int low = std::max(-options.max_pitch_shift, std::min(0, tokens::kMinPitch - lowest->pitch));
  const int high = std::min(options.max_pitch_shift, std::max(0, tokens::kMaxPitch - highest->pitch));
  const int choices = high - low;  // [low, high] without 0
  if (choices <= 0) return 0;
  const int shift = low + static_cast<int>(rng.below(static_cast<std::uint64_t>(choices)));
  return shift >= 0 ? shift + 1 : shift;
}

}  // namespace

void validate(const AugmentOptions& options) {
  check_probability(options.pitch_shift_probability, "pitch_shift_probability");
  check_probability(options.time_stretch_probability, "time_stretch_probability");
  check_probability(options.velocity_scale_probability, "velocity_scale_probability");
  check_probability(options.note_dropout_probability, "note_dropout_probability");
  if (options.max_pitch_shift < 0 || options.max_pitch_shift > 48) {
    throw std::invalid_argument("augment: max_pitch_shift " + std::to_string(options.max_pitch_shift) +
                                " is outside 0..48");
  }
  check_range(options.min_time_stretch, options.max_time_stretch, false, "time stretch");
  check_range(options.min_velocity_scale, options.max_velocity_scale, false, "velocity scale");
  check_range(options.min_note_dropout, options.max_note_dropout, true, "note dropout");
  check_probability(options.max_note_dropout, "max_note_dropout");
}

Applied augment(Performance& performance, Rng& rng, const AugmentOptions& options) {
  validate(options);
  Rng pitch_rng(rng.next());
  Rng stretch_rng(rng.next());
  Rng velocity_rng(rng.next());
  Rng dropout_rng(rng.next());
  Applied applied;

  applied.pitch_shift = pitch_shift(performance, pitch_rng, options);
  if (applied.pitch_shift != 0) {
    for (Note& note : performance.notes)
      note.pitch = static_cast<std::uint8_t>(note.pitch + applied.pitch_shift);
  }

  if (stretch_rng.chance(options.time_stretch_probability)) {
    const double factor = stretch_rng.uniform(options.min_time_stretch, options.max_time_stretch);
    applied.time_stretch = factor;
    for (Note& note : performance.notes) {
      note.onset_us = scale_us(note.onset_us, factor);
      // A note never vanishes by rounding.
      note.duration_us =
          note.duration_us > 0 ? std::max<std::int64_t>(1, scale_us(note.duration_us, factor)) : 0;
    }
    for (PedalChange& pedal : performance.pedals) pedal.time_us = scale_us(pedal.time_us, factor);
    performance.length_us = scale_us(performance.length_us, factor);
  }

  if (velocity_rng.chance(options.velocity_scale_probability)) {
    const double factor = velocity_rng.uniform(options.min_velocity_scale, options.max_velocity_scale);
    applied.velocity_scale = factor;
    for (Note& note : performance.notes) {
      note.velocity =
          static_cast<std::uint8_t>(std::clamp<long>(std::lround(note.velocity * factor), 1, 127));
    }
  }

  if (dropout_rng.chance(options.note_dropout_probability)) {
    const double rate = dropout_rng.uniform(options.min_note_dropout, options.max_note_dropout);
    applied.note_dropout = rate;
    std::size_t kept = 0;
    for (const Note& note : performance.notes) {
      if (!dropout_rng.chance(rate)) performance.notes[kept++] = note;
    }
    applied.notes_dropped = performance.notes.size() - kept;
    performance.notes.resize(kept);
  }

  performance.sort();
  return applied;
}

std::vector<tokens::Token> augment_tokens(std::span<const tokens::Token> sequence, Rng& rng,
                                          const AugmentOptions& options) {
  Performance performance = tokens::decode(sequence);
  std::int64_t first_us = performance.length_us;
  if (!performance.notes.empty()) first_us = std::min(first_us, performance.notes.front().onset_us);
  if (!performance.pedals.empty()) first_us = std::min(first_us, performance.pedals.front().time_us);
  const std::int64_t origin_us = first_us / tokens::kChunkUs * tokens::kChunkUs;

  const auto translate = [&performance](std::int64_t delta_us) {
    for (Note& note : performance.notes) note.onset_us += delta_us;
    for (PedalChange& pedal : performance.pedals) pedal.time_us += delta_us;
    performance.length_us += delta_us;
  };
  translate(-origin_us);
  augment(performance, rng, options);
  translate(origin_us);

  tokens::EncodeOptions encode_options;
  encode_options.add_sos = !sequence.empty() && sequence.front() == tokens::kSos;
  encode_options.add_eos = !sequence.empty() && sequence.back() == tokens::kEos;
  return tokens::encode(performance, encode_options);
}

}  // namespace tatumflow::augment
