// SPDX-License-Identifier: GPL-3.0-or-later
// The session's bar grid over the protocol's beat clocks: the internal clock
// (tempo + meter, live tempo changes) or the MIDI clock follower, switchable
// at any time. Answers the questions the daemon plans with: which bar and beat
// it is at a steady-clock time, and when a bar's downbeat falls. Bar N starts
// at beat N * beats_per_bar (the protocol's convention), bars are 0-based (a
// musician's "bar 5" of a trade starting at bar 0 is bar 4 here).
//
// Plans are kept in bars and beats and turned into times as late as possible,
// so a tempo change after planning moves them with the music. While the
// follower is unlocked (stopped, no clock) the internal clock carries on from
// where the follower was, at its last tempo. Whenever bar numbers change
// meaning (the follower locks onto a different position, MIDI Start or Song
// Position, a new meter) epoch() counts up, and plans made in bars are dropped.
//
// One thread: the event loop.
#pragma once

#include <cstdint>

#include "tatumflow/protocol/midi_clock.hpp"

namespace tatumflow::daemon {

struct BarPosition {
  std::int64_t bar = 0;
  double beat = 0.0;  // beats into the bar, [0, beats_per_bar)
};

class BarClock {
 public:
  // Beat 0 (bar 0) at `origin_us`. Throws std::invalid_argument for a tempo
  // or meter out of the protocol's range. // event-loop thread
  BarClock(double tempo_bpm, int beats_per_bar, std::int64_t origin_us);
  BarClock(const BarClock&) = delete;
  BarClock& operator=(const BarClock&) = delete;

  // Live tempo change of the internal clock from `at_us` on (while following,
  // it applies when the follower lets go). Throws std::invalid_argument.
  // // event-loop thread
  void set_tempo(double tempo_bpm, std::int64_t at_us);
  // New meter; bars are renumbered from beat 0, so the epoch moves. Throws
  // std::invalid_argument. // event-loop thread
  void set_beats_per_bar(int beats_per_bar);

  // Follows `follower` (nullptr: the internal clock only); it must outlive
  // this clock or the next follow(). // event-loop thread
  void follow(MidiClockFollower* follower);
  // Reads the follower's lock state; call on every tick. // event-loop thread
  void update(std::int64_t now_us);

  // The clock answering right now: the follower while it is locked.
  [[nodiscard]] const BeatClock& active() const;  // event-loop thread
  // The internal clock, e.g. for a MidiClockMaster (which must then be the
  // one changing its tempo). // event-loop thread
  [[nodiscard]] InternalClock& internal() { return internal_; }

  // // event-loop thread (all queries)
  [[nodiscard]] double beat_at(std::int64_t time_us) const { return active().beat_at(time_us); }
  [[nodiscard]] std::int64_t time_of_beat(double beat) const { return active().time_of_beat_us(beat); }
  [[nodiscard]] int beats_per_bar() const { return active().beats_per_bar(); }
  [[nodiscard]] double tempo_bpm() const { return active().tempo_bpm(); }
  [[nodiscard]] double beat_period_us() const { return 60'000'000.0 / tempo_bpm(); }
  [[nodiscard]] double downbeat_beat(std::int64_t bar) const {
    return static_cast<double>(bar) * beats_per_bar();
  }
  [[nodiscard]] std::int64_t downbeat_us(std::int64_t bar) const { return downbeat_time_us(active(), bar); }
  [[nodiscard]] BarPosition position_at(std::int64_t time_us) const;
  // First bar whose downbeat is at or after `time_us`.
  [[nodiscard]] std::int64_t first_bar_at_or_after(std::int64_t time_us) const;

  [[nodiscard]] bool following() const { return follower_ != nullptr; }
  [[nodiscard]] bool locked() const { return locked_; }  // following and the follower is locked
  [[nodiscard]] std::uint64_t epoch() const { return epoch_; }

 private:
  InternalClock internal_;
  MidiClockFollower* follower_ = nullptr;
  bool locked_ = false;
  std::uint64_t epoch_ = 0;
};

}  // namespace tatumflow::daemon
