// SPDX-License-Identifier: GPL-3.0-or-later
// Decides when the player's call has ended. Pure logic, fed with timestamped
// input (after NoteTracker has seen it) and with `now` ticks; it never reads a
// clock itself.
//
// A call starts at the first note-on while idle. It ends by whichever comes
// first of the enabled rules:
//  * silence: nothing held (no key; no pedal either when the pedal holds the
//    phrase) for silence_us. A call shorter than min_call_us (first note to
//    going quiet) is then discarded, not answered: a stray touch.
//  * bars (trading 2, 4 or 8): the call is `bars` bars from its first downbeat
//    (the bar holding the first note, or the next one when the note is a pickup
//    in the bar's last beat). The end is reported `lookahead_beats` before that
//    downbeat so generation can start early; the answer belongs on it.
//  * gesture: a press (rising through 64) of controller gesture_cc.
//  * trigger: an OSC command.
// Gesture and trigger before min_call_us are ignored (and counted).
//
// One thread: the event loop.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

#include "tatumflow/daemon/bar_clock.hpp"
#include "tatumflow/daemon/call_recorder.hpp"

namespace tatumflow::daemon {

struct PhraseRules {
  std::int64_t silence_us = 1'200'000;  // 0: off
  int bars = 0;                         // 0: off
  int gesture_cc = -1;                  // -1: off
  std::int64_t min_call_us = 300'000;
  bool pedal_holds_phrase = true;
  double lookahead_beats = 1.0;
};

enum class PhraseEndReason { silence, bars, gesture, trigger };
[[nodiscard]] const char* to_string(PhraseEndReason reason);  // any thread

struct PhraseEnd {
  PhraseEndReason reason = PhraseEndReason::silence;
  std::int64_t call_start_us = 0;  // first note-on
  // silence: when it went quiet; gesture/trigger: their time; bars: the
  // downbeat that ends the call (in the future by up to the look-ahead).
  std::int64_t call_end_us = 0;
  std::optional<std::int64_t> answer_bar;  // bars: the bar the answer must start on
  std::int64_t first_bar = 0;              // the call's first downbeat's bar
};

struct PhraseStats {
  std::uint64_t calls = 0;           // phrase ends reported
  std::uint64_t short_calls = 0;     // discarded as shorter than min_call_us
  std::uint64_t early_triggers = 0;  // gesture/trigger before min_call_us, or with no call
};

class PhraseDetector {
 public:
  explicit PhraseDetector(PhraseRules rules);  // event-loop thread

  // The rules apply from the next call. // event-loop thread (all below)
  void set_rules(const PhraseRules& rules) { rules_ = rules; }
  [[nodiscard]] const PhraseRules& rules() const { return rules_; }

  // A note-on: starts a call when idle (and not held). True when it started one.
  bool on_note_on(std::int64_t time_us, const BarClock& clock);
  // Any controller change (the sustain pedal included).
  [[nodiscard]] std::optional<PhraseEnd> on_control(std::int64_t time_us, std::uint8_t controller,
                                                    std::uint8_t value);
  [[nodiscard]] std::optional<PhraseEnd> on_trigger(std::int64_t time_us);
  // Silence and bar rules. `tracker` is the session's NoteTracker.
  [[nodiscard]] std::optional<PhraseEnd> tick(std::int64_t now_us, const NoteTracker& tracker,
                                              const BarClock& clock);
  // Forgets the call in progress (clock jump, session reset).
  void reset();
  // Note-ons before `beat` start no call: while an answer is trading its bars,
  // the player's next call may only begin with a pickup into the bar after it.
  // -infinity lifts the hold.
  void hold_until_beat(double beat) { hold_until_beat_ = beat; }

  [[nodiscard]] bool in_call() const { return in_call_; }
  [[nodiscard]] std::int64_t call_start_us() const { return call_start_us_; }
  // Set by tick when a too-short call was dropped, cleared by the next call.
  [[nodiscard]] bool discarded() const { return discarded_; }
  [[nodiscard]] const PhraseStats& stats() const { return stats_; }

 private:
  std::optional<PhraseEnd> end(PhraseEndReason reason, std::int64_t end_us);
  std::optional<PhraseEnd> end_by_press(std::int64_t time_us);

  PhraseRules rules_;
  PhraseStats stats_;
  bool in_call_ = false;
  bool discarded_ = false;
  std::int64_t call_start_us_ = 0;
  std::int64_t first_bar_ = 0;
  std::uint8_t gesture_value_ = 0;
  double hold_until_beat_ = -std::numeric_limits<double>::infinity();
};

}  // namespace tatumflow::daemon
