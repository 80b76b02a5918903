// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/call_recorder.hpp"

#include <algorithm>

namespace tatumflow::daemon {

void NoteTracker::note_on(std::int64_t time_us, std::uint8_t pitch, std::uint8_t velocity) {
  if (velocity == 0) {
    note_off(time_us, pitch);
    return;
  }
  std::uint8_t& held = held_[pitch & 0x7F];
  if (held < 255) {
    ++held;
    ++keys_down_;
  }
}

void NoteTracker::note_off(std::int64_t time_us, std::uint8_t pitch) {
  std::uint8_t& held = held_[pitch & 0x7F];
  if (held == 0) return;  // a release we never saw pressed (we started mid-note)
  --held;
  --keys_down_;
  if (keys_down_ == 0) last_key_up_us_ = time_us;
}

void NoteTracker::pedal(std::int64_t time_us, bool down) {
  if (pedal_down_ && !down) last_pedal_up_us_ = time_us;
  pedal_down_ = down;
}

void NoteTracker::all_notes_off(std::int64_t time_us) {
  if (keys_down_ == 0) return;
  held_.fill(0);
  keys_down_ = 0;
  last_key_up_us_ = time_us;
}

std::int64_t NoteTracker::quiet_since_us(bool pedal_holds) const {
  return pedal_holds ? std::max(last_key_up_us_, last_pedal_up_us_) : last_key_up_us_;
}

void CallRecorder::begin(std::int64_t start_us, bool pedal_down) {
  discard();
  start_us_ = start_us;
  active_ = true;
  if (pedal_down) pedal(start_us, true);
}

void CallRecorder::note_on(std::int64_t time_us, std::uint8_t pitch, std::uint8_t velocity) {
  if (!active_) return;
  if (velocity == 0) {
    note_off(time_us, pitch);
    return;
  }
  if (performance_.notes.size() == kMaxNotes) {
    const std::size_t drop = kMaxNotes / 4;
    performance_.notes.erase(performance_.notes.begin(),
                             performance_.notes.begin() + static_cast<std::ptrdiff_t>(drop));
    std::erase_if(open_, [drop](std::size_t index) { return index < drop; });
    for (std::size_t& index : open_) index -= drop;
    notes_dropped_ += drop;
  }
  Note note;
  note.onset_us = time_us - start_us_;
  note.duration_us = -1;  // open
  note.pitch = static_cast<std::uint8_t>(pitch & 0x7F);
  note.velocity = velocity;
  open_.push_back(performance_.notes.size());
  performance_.notes.push_back(note);
}

void CallRecorder::note_off(std::int64_t time_us, std::uint8_t pitch) {
  if (!active_) return;
  // The oldest open note of the pitch, as SMF readers pair them.
  const auto it = std::find_if(open_.begin(), open_.end(), [&](std::size_t index) {
    return performance_.notes[index].pitch == (pitch & 0x7F);
  });
  if (it == open_.end()) return;
  end_note(*it, time_us);
  open_.erase(it);
}

void CallRecorder::all_notes_off(std::int64_t time_us) {
  for (const std::size_t index : open_) end_note(index, time_us);
  open_.clear();
}

void CallRecorder::end_note(std::size_t index, std::int64_t time_us) {
  Note& note = performance_.notes[index];
  note.duration_us = std::max<std::int64_t>(0, time_us - start_us_ - note.onset_us);
}

void CallRecorder::pedal(std::int64_t time_us, bool down) {
  if (!active_ || down == pedal_down_) return;
  pedal_down_ = down;
  performance_.pedals.push_back({time_us - start_us_, down, 0});
}

Performance CallRecorder::finish(std::int64_t end_us) {
  const std::int64_t length_us = std::max<std::int64_t>(0, end_us - start_us_);
  all_notes_off(end_us);
  if (pedal_down_) performance_.pedals.push_back({length_us, false, 0});
  performance_.length_us = length_us;
  performance_.sort();
  Performance call = std::move(performance_);
  discard();
  return call;
}

void CallRecorder::discard() {
  performance_ = Performance{};
  open_.clear();
  active_ = false;
  pedal_down_ = false;
}

}  // namespace tatumflow::daemon
