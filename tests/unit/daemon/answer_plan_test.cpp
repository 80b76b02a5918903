// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/answer_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace tatumflow::daemon {
namespace {

constexpr std::int64_t kOrigin = 5'000'000'000;

Note note(std::int64_t onset_us, std::int64_t duration_us, std::uint8_t pitch, std::uint8_t velocity = 80) {
  Note n;
  n.onset_us = onset_us;
  n.duration_us = duration_us;
  n.pitch = pitch;
  n.velocity = velocity;
  return n;
}

int count_kind(const std::vector<MidiEvent>& events, int kind) {
  return static_cast<int>(std::count_if(events.begin(), events.end(),
                                        [kind](const MidiEvent& e) { return (e.status() & 0xF0) == kind; }));
}

// Trading fours from bar 0 (a musician's bar 1): the answer is bar 4 (bar 5).
void expect_trading_fours_on_bar_five(double tempo_bpm, std::int64_t bar_us) {
  const BarClock clock(tempo_bpm, 4, kOrigin);
  const std::int64_t call_end_us = clock.downbeat_us(4);
  ASSERT_EQ(call_end_us, kOrigin + 4 * bar_us);
  const std::int64_t now_us = call_end_us - bar_us / 4;  // one beat of look-ahead
  const AnswerPlan plan = plan_answer(clock, 4, call_end_us, now_us + 50'000, AnswerShape{});
  EXPECT_EQ(plan.start_bar, 4);
  EXPECT_EQ(clock.downbeat_us(plan.start_bar), kOrigin + 4 * bar_us);
  EXPECT_EQ(clock.downbeat_us(plan.end_bar()), kOrigin + 8 * bar_us);
  EXPECT_EQ(plan.chunk_count(), 4);
  const ChunkWindow first = chunk_window(plan, 0, clock);
  EXPECT_EQ(first.start_us, kOrigin + 4 * bar_us);
  EXPECT_EQ(first.end_us, kOrigin + 5 * bar_us);
  EXPECT_EQ(first.generator_length_us, bar_us);
}

TEST(AnswerPlan, TradingFoursAt120StartsExactlyOnBarFive) {
  expect_trading_fours_on_bar_five(120.0, 2'000'000);
}

TEST(AnswerPlan, TradingFoursAt240StartsExactlyOnBarFive) {
  expect_trading_fours_on_bar_five(240.0, 1'000'000);
}

TEST(AnswerPlan, SilenceEndStartsOnTheNextDownbeat) {
  const BarClock clock(120.0, 4, kOrigin);
  const std::int64_t call_end_us = kOrigin + 5'300'000;  // in bar 2
  const AnswerPlan plan = plan_answer(clock, std::nullopt, call_end_us, call_end_us + 10'000, AnswerShape{});
  EXPECT_EQ(plan.start_bar, 3);
  EXPECT_EQ(clock.downbeat_us(3), kOrigin + 6'000'000);
}

TEST(AnswerPlan, AStartThatCannotBeMetMovesToTheNextDownbeat) {
  const BarClock clock(120.0, 4, kOrigin);
  AnswerShape shape;
  shape.ready_margin_us = 5'000;
  const std::int64_t bar4 = kOrigin + 8'000'000;
  // The first chunk is expected 2 ms before bar 4: the margin is not met.
  const AnswerPlan plan = plan_answer(clock, 4, bar4, bar4 - 2'000, shape);
  EXPECT_EQ(plan.start_bar, 5);
  // Exactly the margin is enough.
  EXPECT_EQ(plan_answer(clock, 4, bar4, bar4 - 5'000, shape).start_bar, 4);
  // A first chunk that arrives after the planned start moves it on.
  AnswerPlan late = plan_answer(clock, 4, bar4, bar4 - 100'000, shape);
  EXPECT_EQ(postpone_if_needed(late, clock, bar4 + 2'100'000, shape.ready_margin_us), 2);
  EXPECT_EQ(late.start_bar, 6);
  EXPECT_EQ(postpone_if_needed(late, clock, bar4 + 2'100'000, shape.ready_margin_us), 0);
}

TEST(AnswerPlan, LookaheadStartsGenerationOneBeatBeforeTheCallEnds) {
  // The detector reports a 4-bar call a beat early; the chunk deadline is the
  // answer's first downbeat less the margin.
  const BarClock clock(120.0, 4, kOrigin);
  const AnswerPlan plan = plan_answer(clock, 4, clock.downbeat_us(4), kOrigin + 7'500'000, AnswerShape{});
  const ChunkWindow first = chunk_window(plan, 0, clock);
  EXPECT_EQ(first.start_us - (kOrigin + 7'500'000), 500'000);  // one beat of look-ahead at 120 bpm
}

TEST(AnswerPlan, ChunksCoverTheAnswerAndTheLastIsShorter) {
  AnswerShape shape;
  shape.bars = 5;
  shape.chunk_bars = 2;
  const BarClock clock(120.0, 4, kOrigin);
  const AnswerPlan plan = plan_answer(clock, 10, clock.downbeat_us(10), kOrigin, shape);
  ASSERT_EQ(plan.chunk_count(), 3);
  EXPECT_EQ(plan.chunk_bar_count(2), 1);
  EXPECT_EQ(chunk_window(plan, 2, clock).start_us, clock.downbeat_us(14));
  EXPECT_EQ(chunk_window(plan, 2, clock).end_us, clock.downbeat_us(15));
}

TEST(AnswerPlan, PlacementSnapsToTheGridAndEndsEverythingAtTheLastBar) {
  const BarClock clock(120.0, 4, kOrigin);
  AnswerShape shape;
  shape.bars = 1;
  shape.grid_division = 4;  // sixteenths
  const AnswerPlan plan = plan_answer(clock, 4, clock.downbeat_us(4), kOrigin, shape);
  Performance chunk;
  chunk.notes.push_back(note(10'000, 100'000, 60));       // snaps to beat 0
  chunk.notes.push_back(note(640'000, 100'000, 64));      // 1.28 beats -> 1.25
  chunk.notes.push_back(note(1'500'000, 2'000'000, 67));  // rings past the bar: cut
  chunk.notes.push_back(note(2'100'000, 100'000, 72));    // past the chunk: not ours
  chunk.pedals.push_back({200'000, true, 0});
  std::vector<MidiEvent> events;
  const Placement placement = place_chunk(plan, 0, chunk, clock, kOrigin, shape, 2, 1, events);
  EXPECT_EQ(placement.notes, 3);
  EXPECT_EQ(placement.late_notes, 0);
  const std::int64_t bar4 = kOrigin + 8'000'000;
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].time_us, bar4);
  EXPECT_EQ(events[0].status(), 0x92);
  EXPECT_EQ(events[0].port, 1);
  const auto find = [&](std::uint8_t status, std::uint8_t data1) {
    return *std::find_if(events.begin(), events.end(),
                         [&](const MidiEvent& e) { return e.status() == status && e.bytes[1] == data1; });
  };
  EXPECT_EQ(find(0x92, 64).time_us, bar4 + 625'000);
  EXPECT_EQ(find(0x82, 67).time_us, bar4 + 2'000'000);  // end of the answer's bar
  EXPECT_EQ(find(0xB2, 64).time_us, bar4 + 200'000);
  EXPECT_TRUE(std::is_sorted(events.begin(), events.end(),
                             [](const MidiEvent& a, const MidiEvent& b) { return a.time_us < b.time_us; }));
  const MidiEvent end = answer_end_event(plan, clock, 2, 1);
  EXPECT_EQ(end.time_us, bar4 + 2'000'000);
  EXPECT_EQ(end.status(), 0xB2);
  EXPECT_EQ(end.bytes[1], 64);
  EXPECT_EQ(end.bytes[2], 0);
}

TEST(AnswerPlan, LateChunkIsShortenedNeverPlayedLate) {
  const BarClock clock(120.0, 4, kOrigin);
  AnswerShape shape;
  shape.bars = 2;
  shape.ready_margin_us = 5'000;
  const AnswerPlan plan = plan_answer(clock, 4, clock.downbeat_us(4), kOrigin, shape);
  Performance chunk;
  for (int beat = 0; beat < 4; ++beat) chunk.notes.push_back(note(beat * 500'000, 400'000, 60));
  // Chunk 1 (bar 5) arrives 1.75 beats into its bar: beats 0 and 1 cannot be played.
  const std::int64_t bar5 = clock.downbeat_us(5);
  std::vector<MidiEvent> events;
  const Placement placement = place_chunk(plan, 1, chunk, clock, bar5 + 875'000, shape, 0, 0, events);
  EXPECT_EQ(placement.late_notes, 2);
  EXPECT_EQ(placement.notes, 2);
  EXPECT_FALSE(placement.skipped);
  for (const MidiEvent& e : events) EXPECT_GE(e.time_us, bar5 + 875'000 + 5'000);
  EXPECT_EQ(count_kind(events, 0x90), 2);
  EXPECT_EQ(count_kind(events, 0x80), 2);
  // Beat 2 less than the 5 ms margin away is late too; exactly 5 ms is in time.
  events.clear();
  const Placement tight = place_chunk(plan, 1, chunk, clock, bar5 + 1'000'000 - 4'999, shape, 0, 0, events);
  EXPECT_EQ(tight.late_notes, 3);
  EXPECT_EQ(tight.notes, 1);
  events.clear();
  const Placement edge = place_chunk(plan, 1, chunk, clock, bar5 + 1'000'000 - 5'000, shape, 0, 0, events);
  EXPECT_EQ(edge.late_notes, 2);
  EXPECT_EQ(edge.notes, 2);
}

TEST(AnswerPlan, ChunkWithEveryNoteLateIsSkipped) {
  const BarClock clock(120.0, 4, kOrigin);
  const AnswerPlan plan = plan_answer(clock, 4, clock.downbeat_us(4), kOrigin, AnswerShape{});
  Performance chunk;
  chunk.notes.push_back(note(0, 100'000, 60));
  chunk.notes.push_back(note(500'000, 100'000, 62));
  std::vector<MidiEvent> events;
  const Placement placement =
      place_chunk(plan, 0, chunk, clock, clock.downbeat_us(5), AnswerShape{}, 0, 0, events);
  EXPECT_TRUE(placement.skipped);
  EXPECT_EQ(placement.late_notes, 2);
  EXPECT_TRUE(events.empty());
}

TEST(AnswerPlan, RepeatedPitchEndsBeforeItIsStruckAgain) {
  const BarClock clock(120.0, 4, kOrigin);
  AnswerShape shape;
  shape.grid_division = 0;
  const AnswerPlan plan = plan_answer(clock, 4, clock.downbeat_us(4), kOrigin, shape);
  Performance chunk;
  chunk.notes.push_back(note(0, 900'000, 60));
  chunk.notes.push_back(note(500'000, 200'000, 60));
  std::vector<MidiEvent> events;
  (void)place_chunk(plan, 0, chunk, clock, kOrigin, shape, 0, 0, events);
  ASSERT_EQ(events.size(), 4u);
  const std::int64_t bar4 = clock.downbeat_us(4);
  EXPECT_EQ(events[0].status(), 0x90);
  EXPECT_EQ(events[1].status(), 0x80);  // the first 60 ends...
  EXPECT_EQ(events[1].time_us, bar4 + 500'000);
  EXPECT_EQ(events[2].status(), 0x90);  // ...before the second starts at the same time
  EXPECT_EQ(events[2].time_us, bar4 + 500'000);
}

TEST(AnswerPlan, PlacementFollowsATempoChangeAfterPlanning) {
  BarClock clock(120.0, 4, kOrigin);
  AnswerShape shape;
  shape.grid_division = 0;
  const AnswerPlan plan = plan_answer(clock, 4, clock.downbeat_us(4), kOrigin, shape);
  clock.set_tempo(60.0, kOrigin + 4'000'000);  // beat 8 = bar 2
  Performance chunk;
  chunk.notes.push_back(note(500'000, 250'000, 60));  // beat 1 at the planning tempo
  std::vector<MidiEvent> events;
  (void)place_chunk(plan, 0, chunk, clock, kOrigin + 4'000'000, shape, 0, 0, events);
  ASSERT_EQ(events.size(), 2u);
  // Bar 4 is beat 16: 4 s + 8 beats at 1 s; beat 17 one second later.
  EXPECT_EQ(events[0].time_us, kOrigin + 4'000'000 + 9'000'000);
  EXPECT_EQ(events[1].time_us, kOrigin + 4'000'000 + 9'500'000);
}

}  // namespace
}  // namespace tatumflow::daemon
