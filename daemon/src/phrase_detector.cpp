// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/phrase_detector.hpp"

#include <algorithm>

namespace tatumflow::daemon {

const char* to_string(PhraseEndReason reason) {
  switch (reason) {
    case PhraseEndReason::silence:
      return "silence";
    case PhraseEndReason::bars:
      return "bars";
    case PhraseEndReason::gesture:
      return "gesture";
    case PhraseEndReason::trigger:
      return "trigger";
  }
  return "unknown";
}

PhraseDetector::PhraseDetector(PhraseRules rules) : rules_(rules) {}

bool PhraseDetector::on_note_on(std::int64_t time_us, const BarClock& clock) {
  if (in_call_ || clock.beat_at(time_us) < hold_until_beat_) return false;
  in_call_ = true;
  discarded_ = false;
  call_start_us_ = time_us;
  const BarPosition position = clock.position_at(time_us);
  const int beats_per_bar = clock.beats_per_bar();
  // A note in the last beat of a bar is a pickup into the next one.
  first_bar_ = position.beat >= beats_per_bar - 1 ? position.bar + 1 : position.bar;
  return true;
}

std::optional<PhraseEnd> PhraseDetector::end(PhraseEndReason reason, std::int64_t end_us) {
  PhraseEnd result;
  result.reason = reason;
  result.call_start_us = call_start_us_;
  result.call_end_us = end_us;
  result.first_bar = first_bar_;
  in_call_ = false;
  ++stats_.calls;
  return result;
}

std::optional<PhraseEnd> PhraseDetector::end_by_press(std::int64_t time_us) {
  if (!in_call_ || time_us - call_start_us_ < rules_.min_call_us) {
    ++stats_.early_triggers;
    return std::nullopt;
  }
  return end(PhraseEndReason::trigger, time_us);
}

std::optional<PhraseEnd> PhraseDetector::on_control(std::int64_t time_us, std::uint8_t controller,
                                                    std::uint8_t value) {
  if (rules_.gesture_cc < 0 || controller != rules_.gesture_cc) return std::nullopt;
  const bool pressed = gesture_value_ < 64 && value >= 64;
  gesture_value_ = value;
  if (!pressed) return std::nullopt;
  std::optional<PhraseEnd> result = end_by_press(time_us);
  if (result) result->reason = PhraseEndReason::gesture;
  return result;
}

std::optional<PhraseEnd> PhraseDetector::on_trigger(std::int64_t time_us) { return end_by_press(time_us); }

std::optional<PhraseEnd> PhraseDetector::tick(std::int64_t now_us, const NoteTracker& tracker,
                                              const BarClock& clock) {
  if (!in_call_) return std::nullopt;
  if (rules_.bars > 0) {
    const std::int64_t answer_bar = first_bar_ + rules_.bars;
    if (clock.beat_at(now_us) >= clock.downbeat_beat(answer_bar) - rules_.lookahead_beats) {
      std::optional<PhraseEnd> result = end(PhraseEndReason::bars, clock.downbeat_us(answer_bar));
      result->answer_bar = answer_bar;
      return result;
    }
  }
  if (rules_.silence_us > 0 && tracker.quiet(rules_.pedal_holds_phrase)) {
    // Quiet since before the call began means the call's notes are all gone.
    const std::int64_t quiet_us = std::max(tracker.quiet_since_us(rules_.pedal_holds_phrase), call_start_us_);
    if (now_us - quiet_us >= rules_.silence_us) {
      if (quiet_us - call_start_us_ < rules_.min_call_us) {
        in_call_ = false;
        discarded_ = true;
        ++stats_.short_calls;
        return std::nullopt;
      }
      return end(PhraseEndReason::silence, quiet_us);
    }
  }
  return std::nullopt;
}

void PhraseDetector::reset() { in_call_ = false; }

}  // namespace tatumflow::daemon
