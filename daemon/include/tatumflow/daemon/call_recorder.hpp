// SPDX-License-Identifier: GPL-3.0-or-later
// What the player is doing on one session's input (after its channel filter):
// which keys are down, where the sustain pedal is, when the music last went
// quiet (NoteTracker), and the current call captured as a Performance with
// times relative to the call's first note (CallRecorder).
//
// Channels are merged, as in the tokenizer: the model is one piano.
// One thread: the event loop.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::daemon {

class NoteTracker {
 public:
  // Velocity 0 is a note-off, as MIDI defines. // event-loop thread (all)
  void note_on(std::int64_t time_us, std::uint8_t pitch, std::uint8_t velocity);
  void note_off(std::int64_t time_us, std::uint8_t pitch);
  void pedal(std::int64_t time_us, bool down);
  // All Notes Off / All Sound Off from the player: every key is up, so a
  // note-off lost on the way cannot hold a call open for ever. The pedal stays
  // where it is, as MIDI defines.
  void all_notes_off(std::int64_t time_us);

  [[nodiscard]] int keys_down() const { return keys_down_; }
  [[nodiscard]] bool key_down(std::uint8_t pitch) const { return held_[pitch & 0x7F] > 0; }
  [[nodiscard]] bool pedal_down() const { return pedal_down_; }
  // Nothing held: no key, and no pedal when `pedal_holds` is set.
  [[nodiscard]] bool quiet(bool pedal_holds) const {
    return keys_down_ == 0 && !(pedal_holds && pedal_down_);
  }
  // When the music last went quiet in that sense (the later of the last key
  // release and, with `pedal_holds`, the last pedal release).
  [[nodiscard]] std::int64_t quiet_since_us(bool pedal_holds) const;

 private:
  std::array<std::uint8_t, 128> held_{};  // note-ons not yet released, per pitch
  int keys_down_ = 0;
  bool pedal_down_ = false;
  std::int64_t last_key_up_us_ = 0;
  std::int64_t last_pedal_up_us_ = 0;
};

class CallRecorder {
 public:
  // At most this many notes are kept; past it the oldest quarter is dropped,
  // because the end of a call matters most to the answer.
  static constexpr std::size_t kMaxNotes = 4096;

  // Starts a call at `start_us` (the first note's time); a pedal already down
  // is recorded as pressed at the start. // event-loop thread (all)
  void begin(std::int64_t start_us, bool pedal_down);
  [[nodiscard]] bool active() const { return active_; }
  [[nodiscard]] std::int64_t start_us() const { return start_us_; }

  // Ignored while no call is active.
  void note_on(std::int64_t time_us, std::uint8_t pitch, std::uint8_t velocity);
  void note_off(std::int64_t time_us, std::uint8_t pitch);
  void all_notes_off(std::int64_t time_us);  // ends every open note
  void pedal(std::int64_t time_us, bool down);

  // Ends the call at `end_us`: notes still held end there, a pedal still down
  // is released there, the result is sorted and its length is end - start.
  // The recorder is then idle.
  [[nodiscard]] Performance finish(std::int64_t end_us);
  // Drops the call (too short to answer).
  void discard();
  [[nodiscard]] std::size_t notes() const { return performance_.notes.size(); }
  [[nodiscard]] std::uint64_t notes_dropped() const { return notes_dropped_; }

 private:
  void end_note(std::size_t index, std::int64_t time_us);  // a release at `time_us`

  Performance performance_;
  std::vector<std::size_t> open_;  // indexes of notes without a release, oldest first
  std::int64_t start_us_ = 0;
  bool active_ = false;
  bool pedal_down_ = false;
  std::uint64_t notes_dropped_ = 0;
};

}  // namespace tatumflow::daemon
