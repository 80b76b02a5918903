// SPDX-License-Identifier: GPL-3.0-or-later
// A performance as a list of notes and pedal changes in absolute time: the
// representation every part of TatumFlow speaks (SMF files, tokenizer, theory
// features, the daemon's calls and answers). Plain data, safe to copy between
// threads by value; no function here allocates except where a vector grows.
#pragma once

#include <cstdint>
#include <vector>

namespace tatumflow {

struct Note {
  std::int64_t onset_us = 0;
  std::int64_t duration_us = 0;
  std::uint8_t pitch = 60;     // MIDI key 0-127
  std::uint8_t velocity = 64;  // 1-127
  std::uint8_t channel = 0;    // 0-15

  [[nodiscard]] std::int64_t offset_us() const { return onset_us + duration_us; }
  friend bool operator==(const Note&, const Note&) = default;
};

// Sustain pedal (CC64) state change; `down` is value >= 64.
struct PedalChange {
  std::int64_t time_us = 0;
  bool down = false;
  std::uint8_t channel = 0;
  friend bool operator==(const PedalChange&, const PedalChange&) = default;
};

struct Performance {
  std::vector<Note> notes;          // sorted by (onset_us, pitch)
  std::vector<PedalChange> pedals;  // sorted by time_us, only real transitions
  std::int64_t length_us = 0;       // end of the last event (or of the file)

  // Restores the invariants above after notes or pedals were edited.
  void sort();
  // Seconds of music: the length, or the end of the last note if longer.
  [[nodiscard]] double seconds() const;
};

}  // namespace tatumflow
