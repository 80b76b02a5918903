// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/phrase_detector.hpp"

#include <gtest/gtest.h>

#include "tatumflow/daemon/bar_clock.hpp"
#include "tatumflow/daemon/call_recorder.hpp"

namespace tatumflow::daemon {
namespace {

constexpr std::int64_t kOrigin = 1'000'000'000;  // steady-clock times are large
constexpr std::int64_t kBeat120 = 500'000;

// The session's wiring of tracker, recorder and detector, for the tests.
struct Input {
  explicit Input(PhraseRules rules) : detector(rules) {}
  void on(std::int64_t t, std::uint8_t pitch, std::uint8_t velocity = 80) {
    tracker.note_on(t, pitch, velocity);
    if (detector.on_note_on(t, clock)) recorder.begin(t, tracker.pedal_down());
    recorder.note_on(t, pitch, velocity);
  }
  void off(std::int64_t t, std::uint8_t pitch) {
    tracker.note_off(t, pitch);
    recorder.note_off(t, pitch);
  }
  void pedal(std::int64_t t, bool down) {
    tracker.pedal(t, down);
    recorder.pedal(t, down);
  }
  std::optional<PhraseEnd> tick(std::int64_t t) { return detector.tick(t, tracker, clock); }

  BarClock clock{120.0, 4, kOrigin};
  NoteTracker tracker;
  CallRecorder recorder;
  PhraseDetector detector;
};

PhraseRules silence_rules() {
  PhraseRules rules;
  rules.silence_us = 1'000'000;
  rules.min_call_us = 300'000;
  return rules;
}

TEST(NoteTracker, CountsKeysAndQuietTime) {
  NoteTracker tracker;
  tracker.note_on(10, 60, 90);
  tracker.note_on(20, 60, 90);  // the same key twice (two channels merged)
  tracker.note_on(30, 64, 90);
  EXPECT_EQ(tracker.keys_down(), 3);
  tracker.note_off(40, 60);
  tracker.note_on(45, 64, 0);  // velocity 0 is a release
  EXPECT_EQ(tracker.keys_down(), 1);
  tracker.note_off(50, 60);
  EXPECT_TRUE(tracker.quiet(true));
  EXPECT_EQ(tracker.quiet_since_us(true), 50);
  tracker.note_off(60, 72);  // never pressed: ignored
  EXPECT_EQ(tracker.keys_down(), 0);
  EXPECT_EQ(tracker.quiet_since_us(true), 50);
  tracker.pedal(70, true);
  EXPECT_FALSE(tracker.quiet(true));
  EXPECT_TRUE(tracker.quiet(false));
  tracker.pedal(90, false);
  EXPECT_EQ(tracker.quiet_since_us(true), 90);
  EXPECT_EQ(tracker.quiet_since_us(false), 50);
}

TEST(NoteTracker, AllNotesOffReleasesEveryKeyButNotThePedal) {
  NoteTracker tracker;
  tracker.all_notes_off(5);  // nothing down: the quiet time stays
  EXPECT_EQ(tracker.quiet_since_us(false), 0);
  tracker.note_on(10, 60, 90);
  tracker.note_on(20, 60, 90);
  tracker.note_on(30, 64, 90);
  tracker.pedal(40, true);
  tracker.all_notes_off(50);
  EXPECT_EQ(tracker.keys_down(), 0);
  EXPECT_FALSE(tracker.key_down(60));
  EXPECT_TRUE(tracker.quiet(false));
  EXPECT_FALSE(tracker.quiet(true));  // the pedal still holds the phrase
  EXPECT_EQ(tracker.quiet_since_us(false), 50);
  tracker.note_off(60, 60);  // the lost note-off turning up late changes nothing
  EXPECT_EQ(tracker.keys_down(), 0);
  EXPECT_EQ(tracker.quiet_since_us(false), 50);
}

TEST(CallRecorder, AllNotesOffEndsEveryOpenNote) {
  CallRecorder recorder;
  recorder.begin(1'000, false);
  recorder.note_on(1'000, 60, 80);
  recorder.note_on(1'200, 64, 80);
  recorder.note_off(1'500, 64);
  recorder.all_notes_off(3'000);
  recorder.note_off(3'500, 60);  // nothing open any more: ignored
  const Performance call = recorder.finish(4'000);
  ASSERT_EQ(call.notes.size(), 2u);
  EXPECT_EQ(call.notes[0].duration_us, 2'000);
  EXPECT_EQ(call.notes[1].duration_us, 300);
}

TEST(CallRecorder, CapturesRelativeTimesAndCutsHeldNotes) {
  CallRecorder recorder;
  recorder.note_on(5, 60, 80);  // before the call: ignored
  recorder.begin(1'000, true);
  recorder.note_on(1'000, 60, 80);
  recorder.note_on(1'500, 60, 90);  // a second 60 before the first ends
  recorder.note_off(2'000, 60);     // ends the oldest
  recorder.note_on(2'500, 67, 70);
  recorder.pedal(3'000, false);
  const Performance call = recorder.finish(4'000);
  EXPECT_FALSE(recorder.active());
  ASSERT_EQ(call.notes.size(), 3u);
  EXPECT_EQ(call.notes[0].onset_us, 0);
  EXPECT_EQ(call.notes[0].duration_us, 1'000);
  EXPECT_EQ(call.notes[1].onset_us, 500);
  EXPECT_EQ(call.notes[1].duration_us, 2'500);  // held to the end
  EXPECT_EQ(call.notes[2].pitch, 67);
  EXPECT_EQ(call.notes[2].duration_us, 1'500);
  ASSERT_EQ(call.pedals.size(), 2u);
  EXPECT_TRUE(call.pedals[0].down);
  EXPECT_EQ(call.pedals[0].time_us, 0);
  EXPECT_EQ(call.pedals[1].time_us, 2'000);
  EXPECT_EQ(call.length_us, 3'000);
}

TEST(CallRecorder, KeepsTheNewestNotesWhenFull) {
  CallRecorder recorder;
  recorder.begin(0, false);
  for (std::size_t i = 0; i < CallRecorder::kMaxNotes + 10; ++i) {
    recorder.note_on(static_cast<std::int64_t>(i) * 100, 60, 80);
    recorder.note_off(static_cast<std::int64_t>(i) * 100 + 50, 60);
  }
  EXPECT_EQ(recorder.notes_dropped(), CallRecorder::kMaxNotes / 4);
  const Performance call = recorder.finish(10'000'000);
  EXPECT_EQ(call.notes.size(), CallRecorder::kMaxNotes + 10 - CallRecorder::kMaxNotes / 4);
  EXPECT_EQ(call.notes.back().onset_us, static_cast<std::int64_t>(CallRecorder::kMaxNotes + 9) * 100);
  EXPECT_EQ(call.notes.back().duration_us, 50);
}

TEST(PhraseDetector, SilenceEndsTheCall) {
  Input in(silence_rules());
  const std::int64_t t0 = kOrigin + 3'000'000;
  in.on(t0, 60);
  in.off(t0 + 400'000, 60);
  in.on(t0 + 500'000, 62);
  in.off(t0 + 800'000, 62);
  EXPECT_FALSE(in.tick(t0 + 1'799'999));
  const std::optional<PhraseEnd> end = in.tick(t0 + 1'800'000);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->reason, PhraseEndReason::silence);
  EXPECT_EQ(end->call_start_us, t0);
  EXPECT_EQ(end->call_end_us, t0 + 800'000);
  EXPECT_FALSE(end->answer_bar);
  EXPECT_FALSE(in.detector.in_call());
  EXPECT_EQ(in.detector.stats().calls, 1u);
}

TEST(PhraseDetector, HeldPedalHoldsThePhraseUnlessConfiguredNot) {
  Input held(silence_rules());
  const std::int64_t t0 = kOrigin;
  held.on(t0, 60);
  held.pedal(t0 + 100'000, true);
  held.off(t0 + 400'000, 60);
  EXPECT_FALSE(held.tick(t0 + 3'000'000));  // pedal still down
  held.pedal(t0 + 3'000'000, false);
  EXPECT_FALSE(held.tick(t0 + 3'999'999));
  const auto end = held.tick(t0 + 4'000'000);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->call_end_us, t0 + 3'000'000);

  PhraseRules rules = silence_rules();
  rules.pedal_holds_phrase = false;
  Input keys(rules);
  keys.on(t0, 60);
  keys.pedal(t0 + 100'000, true);
  keys.off(t0 + 400'000, 60);
  const auto keys_end = keys.tick(t0 + 1'400'000);
  ASSERT_TRUE(keys_end);
  EXPECT_EQ(keys_end->call_end_us, t0 + 400'000);
}

TEST(PhraseDetector, ShortCallIsDiscarded) {
  Input in(silence_rules());
  in.on(kOrigin, 60);
  in.off(kOrigin + 100'000, 60);  // 100 ms < 300 ms
  EXPECT_FALSE(in.tick(kOrigin + 1'100'000));
  EXPECT_TRUE(in.detector.discarded());
  EXPECT_FALSE(in.detector.in_call());
  EXPECT_EQ(in.detector.stats().short_calls, 1u);
  // The next note starts a fresh call.
  in.on(kOrigin + 2'000'000, 64);
  EXPECT_EQ(in.detector.call_start_us(), kOrigin + 2'000'000);
}

TEST(PhraseDetector, GestureAndTriggerRespectMinimumLength) {
  PhraseRules rules = silence_rules();
  rules.gesture_cc = 67;
  Input in(rules);
  EXPECT_FALSE(in.detector.on_trigger(kOrigin));  // no call
  in.on(kOrigin, 60);
  EXPECT_FALSE(in.detector.on_control(kOrigin + 100'000, 67, 127));  // too early
  EXPECT_FALSE(in.detector.on_control(kOrigin + 200'000, 67, 0));
  EXPECT_FALSE(in.detector.on_control(kOrigin + 400'000, 66, 127));  // another controller
  EXPECT_FALSE(in.detector.on_control(kOrigin + 450'000, 67, 30));   // not a press
  const auto end = in.detector.on_control(kOrigin + 500'000, 67, 100);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->reason, PhraseEndReason::gesture);
  EXPECT_EQ(end->call_end_us, kOrigin + 500'000);
  EXPECT_EQ(in.detector.stats().early_triggers, 2u);

  in.on(kOrigin + 1'000'000, 62);
  const auto trigger = in.detector.on_trigger(kOrigin + 1'400'000);
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->reason, PhraseEndReason::trigger);
}

TEST(PhraseDetector, FourBarsFromTheFirstDownbeatWithLookahead) {
  PhraseRules rules;
  rules.silence_us = 0;
  rules.bars = 4;
  rules.lookahead_beats = 1.0;
  Input in(rules);
  const std::int64_t bar2 = kOrigin + 2 * 4 * kBeat120;
  in.on(bar2 + 20'000, 60);  // just after the downbeat of bar 2
  in.off(bar2 + 300'000, 60);
  const std::int64_t bar6 = kOrigin + 6 * 4 * kBeat120;
  EXPECT_FALSE(in.tick(bar6 - kBeat120 - 1));
  const auto end = in.tick(bar6 - kBeat120);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->reason, PhraseEndReason::bars);
  EXPECT_EQ(end->first_bar, 2);
  ASSERT_TRUE(end->answer_bar);
  EXPECT_EQ(*end->answer_bar, 6);
  EXPECT_EQ(end->call_end_us, bar6);
}

TEST(PhraseDetector, PickupCountsFromTheNextBar) {
  PhraseRules rules;
  rules.silence_us = 0;
  rules.bars = 2;
  rules.lookahead_beats = 0.0;
  Input in(rules);
  const std::int64_t bar1 = kOrigin + 4 * kBeat120;
  in.on(bar1 - 200'000, 60);  // in the last beat of bar 0
  const auto end = in.tick(kOrigin + 3 * 4 * kBeat120);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->first_bar, 1);
  EXPECT_EQ(*end->answer_bar, 3);
}

TEST(PhraseDetector, HoldKeepsNotesFromStartingACall) {
  PhraseRules rules;
  rules.bars = 4;
  Input in(rules);
  in.detector.hold_until_beat(8.0);
  in.on(kOrigin + 3 * kBeat120, 60);
  EXPECT_FALSE(in.detector.in_call());
  in.on(kOrigin + 8 * kBeat120, 62);
  EXPECT_TRUE(in.detector.in_call());
}

TEST(BarClock, BarsAndBeatsAtAnyTime) {
  BarClock clock(120.0, 4, kOrigin);
  EXPECT_EQ(clock.downbeat_us(4), kOrigin + 8'000'000);
  const BarPosition p = clock.position_at(kOrigin + 8'000'000 + 750'000);
  EXPECT_EQ(p.bar, 4);
  EXPECT_DOUBLE_EQ(p.beat, 1.5);
  EXPECT_EQ(clock.position_at(kOrigin + 8'000'000).bar, 4);
  EXPECT_EQ(clock.position_at(kOrigin + 7'999'999).bar, 3);
  EXPECT_EQ(clock.first_bar_at_or_after(kOrigin + 8'000'000), 4);
  EXPECT_EQ(clock.first_bar_at_or_after(kOrigin + 8'000'001), 5);
  EXPECT_EQ(clock.position_at(kOrigin - 1).bar, -1);
}

TEST(BarClock, LiveTempoChangeKeepsTheBeat) {
  BarClock clock(120.0, 4, kOrigin);
  const std::int64_t change = kOrigin + 3'000'000;  // beat 6
  clock.set_tempo(240.0, change);
  EXPECT_DOUBLE_EQ(clock.beat_at(change), 6.0);
  EXPECT_EQ(clock.downbeat_us(2), change + 2 * 250'000);  // beat 8
  EXPECT_DOUBLE_EQ(clock.tempo_bpm(), 240.0);
  EXPECT_EQ(clock.epoch(), 0u);
  clock.set_beats_per_bar(3);
  EXPECT_EQ(clock.epoch(), 1u);
  EXPECT_DOUBLE_EQ(clock.downbeat_beat(3), 9.0);
  EXPECT_THROW(clock.set_tempo(1000.0, change), std::invalid_argument);
}

TEST(BarClock, FollowsTheMidiClockAndFallsBack) {
  BarClock clock(120.0, 4, kOrigin);
  MidiClockFollower follower;
  clock.follow(&follower);
  // 100 bpm: a tick every 25 ms.
  constexpr std::int64_t kTickUs = 25'000;
  const std::int64_t start = kOrigin + 10'000'000 + 123'456;  // not on the internal grid
  follower.on_start();
  std::int64_t t = start;
  for (int i = 0; i < 4 * 24; ++i, t += kTickUs) {
    follower.on_tick(t);
    clock.update(t);
  }
  ASSERT_TRUE(clock.locked());
  EXPECT_EQ(clock.epoch(), 1u);  // bars now count from the follower's Start
  EXPECT_NEAR(clock.tempo_bpm(), 100.0, 0.1);
  EXPECT_NEAR(static_cast<double>(clock.downbeat_us(1)), static_cast<double>(start + 4 * 24 * kTickUs),
              500.0);
  EXPECT_EQ(clock.position_at(start + 4 * 24 * kTickUs + 1'000).bar, 1);
  // Stop: the internal clock carries on from the follower's position and tempo.
  follower.on_stop();
  const std::int64_t later = t + 50'000;
  clock.update(later);
  EXPECT_FALSE(clock.locked());
  EXPECT_NEAR(clock.tempo_bpm(), 100.0, 0.1);
  EXPECT_NEAR(clock.beat_at(later), 98.0 / 24.0, 0.01);
  EXPECT_EQ(clock.epoch(), 1u);
}

}  // namespace
}  // namespace tatumflow::daemon
