// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <thread>

namespace tatumflow::daemon {
namespace {

// Records what it is handed, with the time it was handed over, into a fixed
// array (the scheduler thread must not allocate, so neither may the sink).
class RecordingSink final : public OutputSink {
 public:
  explicit RecordingSink(std::int64_t lead_us = 0) : lead_us_(lead_us) {}
  [[nodiscard]] std::int64_t lead_us() const noexcept override { return lead_us_; }
  bool deliver(const MidiEvent& event) noexcept override {
    const std::size_t i = count_.load(std::memory_order_relaxed);
    if (i == records_.size()) return false;
    records_[i] = {event, steady_now_us()};
    count_.store(i + 1, std::memory_order_release);
    return true;
  }
  struct Record {
    MidiEvent event;
    std::int64_t handed_us;
  };
  [[nodiscard]] std::size_t count() const { return count_.load(std::memory_order_acquire); }
  [[nodiscard]] const Record& at(std::size_t i) const { return records_[i]; }
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (count() < n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }

 private:
  std::int64_t lead_us_;
  std::array<Record, 4096> records_{};
  std::atomic<std::size_t> count_{0};
};

MidiEvent note_on(std::int64_t time_us, std::uint8_t pitch, std::uint8_t port = 0, std::uint8_t channel = 0) {
  return MidiEvent{time_us, {static_cast<std::uint8_t>(0x90 | channel), pitch, 100}, 3, port};
}
MidiEvent note_off(std::int64_t time_us, std::uint8_t pitch, std::uint8_t port = 0,
                   std::uint8_t channel = 0) {
  return MidiEvent{time_us, {static_cast<std::uint8_t>(0x80 | channel), pitch, 0}, 3, port};
}

Logger quiet_log() { return Logger(LogLevel::error, false, stderr); }

TEST(Scheduler, DeliversInTimeOrderAtTheirTime) {
  RecordingSink sink;
  constexpr std::int64_t kToleranceUs = 2'000;
  Scheduler scheduler(1024, kToleranceUs);
  scheduler.set_sink(0, &sink);
  Logger log = quiet_log();
  scheduler.start(0, log);
  const std::int64_t base = steady_now_us() + 20'000;
  // Out of order, and two sharing a time (their order must be kept).
  const std::array<MidiEvent, 5> events{note_on(base + 30'000, 64), note_on(base, 60),
                                        note_on(base + 10'000, 62), note_off(base + 10'000, 60),
                                        note_off(base + 40'000, 62)};
  EXPECT_EQ(scheduler.schedule(events, 0), events.size());
  ASSERT_TRUE(sink.wait_for(5));
  const std::array<std::uint8_t, 5> expected_pitch{60, 62, 60, 64, 62};
  const std::array<std::uint8_t, 5> expected_status{0x90, 0x90, 0x80, 0x90, 0x80};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(sink.at(i).event.bytes[1], expected_pitch[i]) << i;
    EXPECT_EQ(sink.at(i).event.status(), expected_status[i]) << i;
    EXPECT_GE(sink.at(i).handed_us, sink.at(i).event.time_us) << "handed over early: " << i;
  }
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.delivered, 5u);
  // Lateness depends on the machine's load, so check the accounting against
  // what the sink saw: the sink reads the clock just after the scheduler, so
  // the scheduler's late events are among the sink's, and anything the sink saw
  // clearly late was counted.
  std::int64_t worst_us = 0;
  std::uint64_t seen_late = 0;
  std::uint64_t clearly_late = 0;
  for (std::size_t i = 0; i < 5; ++i) {
    const std::int64_t delay_us = sink.at(i).handed_us - sink.at(i).event.time_us;
    worst_us = std::max(worst_us, delay_us);
    seen_late += delay_us > kToleranceUs;
    clearly_late += delay_us > kToleranceUs + 5'000;
  }
  EXPECT_LE(stats.late, seen_late);
  EXPECT_GE(stats.late, clearly_late);
  if (stats.late > 0) {
    EXPECT_LE(stats.worst_late_us, worst_us);
  }
  std::printf("scheduler: worst delivery delay %lld us (realtime %d)\n", static_cast<long long>(worst_us),
              scheduler.realtime());
}

TEST(Scheduler, PastEventsAreCountedLate) {
  RecordingSink sink;
  Scheduler scheduler(64, 1'000);
  scheduler.set_sink(0, &sink);
  Logger log = quiet_log();
  scheduler.start(0, log);
  const std::int64_t now = steady_now_us();
  scheduler.schedule(note_on(now - 50'000, 60), 0);
  scheduler.schedule(note_off(now - 40'000, 60), 0);
  ASSERT_TRUE(sink.wait_for(2));
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.late, 2u);
  EXPECT_GE(stats.worst_late_us, 50'000);
}

TEST(Scheduler, FutureTimeSinkGetsEventsEarlyWithTheirTime) {
  RecordingSink sink(15'000);
  Scheduler scheduler(64, 1'000);
  scheduler.set_sink(3, &sink);
  Logger log = quiet_log();
  scheduler.start(0, log);
  const std::int64_t target = steady_now_us() + 40'000;
  scheduler.schedule(note_on(target, 60, 3), 0);
  ASSERT_TRUE(sink.wait_for(1));
  EXPECT_EQ(sink.at(0).event.time_us, target);
  EXPECT_LT(sink.at(0).handed_us, target - 5'000);
  EXPECT_GE(sink.at(0).handed_us, target - 15'000);
  EXPECT_EQ(scheduler.stats().late, 0u);
}

TEST(Scheduler, EventsForAPortWithoutSinkAreDropped) {
  RecordingSink sink;
  Scheduler scheduler(64, 1'000);
  scheduler.set_sink(0, &sink);
  Logger log = quiet_log();
  scheduler.start(0, log);
  scheduler.schedule(note_on(steady_now_us(), 60, 5), 0);
  scheduler.schedule(note_on(steady_now_us(), 61, 0), 99);  // no such source
  scheduler.schedule(note_on(steady_now_us(), 62, 0), 0);
  ASSERT_TRUE(sink.wait_for(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(scheduler.stats().dropped, 2u);
}

TEST(Scheduler, CancelDropsPendingAndReleasesWhatSounds) {
  RecordingSink sink;
  Scheduler scheduler(64, 1'000);
  scheduler.set_sink(0, &sink);
  Logger log = quiet_log();
  scheduler.start(0, log);
  const std::int64_t now = steady_now_us();
  // Source 1 plays a note and presses the pedal now, and has more to come.
  const std::array<MidiEvent, 4> answer{note_on(now, 60, 0, 2), MidiEvent{now, {0xB2, 64, 127}, 3, 0},
                                        note_off(now + 1'000'000, 60, 0, 2),
                                        note_on(now + 500'000, 64, 0, 2)};
  scheduler.schedule(answer, 1);
  // Source 0 has a note in the future that must survive.
  scheduler.schedule(note_on(now + 100'000, 70), 0);
  ASSERT_TRUE(sink.wait_for(2));
  scheduler.cancel(1);
  ASSERT_TRUE(sink.wait_for(4));
  EXPECT_EQ(sink.at(2).event.status(), 0x82);  // note-off for the sounding 60
  EXPECT_EQ(sink.at(2).event.bytes[1], 60);
  EXPECT_EQ(sink.at(3).event.status(), 0xB2);  // pedal up
  EXPECT_EQ(sink.at(3).event.bytes[2], 0);
  ASSERT_TRUE(sink.wait_for(5));
  EXPECT_EQ(sink.at(4).event.bytes[1], 70);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(sink.count(), 5u);
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.cancelled, 2u);
  EXPECT_EQ(stats.released, 1u);
}

TEST(Scheduler, PanicReleasesEveryNoteThenSilencesEveryChannel) {
  RecordingSink sink;
  Scheduler scheduler(64, 1'000);
  scheduler.set_sink(0, &sink);
  Logger log = quiet_log();
  scheduler.start(0, log);
  const std::int64_t now = steady_now_us();
  scheduler.schedule(note_on(now, 60, 0, 0), 0);
  scheduler.schedule(note_on(now, 48, 0, 5), 2);
  scheduler.schedule(note_on(now + 1'000'000, 72), 0);
  ASSERT_TRUE(sink.wait_for(2));
  scheduler.panic();
  ASSERT_TRUE(sink.wait_for(2 + 2 + kPanicEventCount));
  std::array<bool, 16> cc123{};
  int note_offs = 0;
  for (std::size_t i = 2; i < sink.count(); ++i) {
    const MidiEvent& e = sink.at(i).event;
    if ((e.status() & 0xF0) == 0x80) ++note_offs;
    if ((e.status() & 0xF0) == 0xB0 && e.bytes[1] == 123) cc123[e.channel()] = true;
  }
  EXPECT_EQ(note_offs, 2);
  EXPECT_TRUE(std::all_of(cc123.begin(), cc123.end(), [](bool b) { return b; }));
  EXPECT_EQ(scheduler.stats().cancelled, 1u);
}

TEST(Scheduler, StopReleasesEverything) {
  RecordingSink sink;
  {
    Scheduler scheduler(64, 1'000);
    scheduler.set_sink(0, &sink);
    Logger log = quiet_log();
    scheduler.start(0, log);
    scheduler.schedule(note_on(steady_now_us(), 60), 0);
    ASSERT_TRUE(sink.wait_for(1));
  }
  ASSERT_EQ(sink.count(), 2 + kPanicEventCount);
  EXPECT_EQ(sink.at(1).event.status(), 0x80);
}

TEST(Scheduler, RealtimePriorityIsGrantedOrRefusedCleanly) {
  RecordingSink sink;
  Scheduler scheduler(64, 1'000);
  scheduler.set_sink(0, &sink);
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  Logger log(LogLevel::info, false, out);
  const bool granted = scheduler.start(50, log);
  EXPECT_EQ(granted, scheduler.realtime());
  std::rewind(out);
  char line[512] = {};
  ASSERT_NE(std::fgets(line, sizeof line, out), nullptr);
  const std::string text(line);
  if (granted) {
    EXPECT_NE(text.find("SCHED_FIFO priority 50"), std::string::npos) << text;
  } else {
    EXPECT_EQ(text.rfind("warning: scheduler: real-time priority 50 refused", 0), 0u) << text;
  }
  std::fclose(out);
  // Either way it schedules.
  scheduler.schedule(note_on(steady_now_us() + 1'000, 60), 0);
  EXPECT_TRUE(sink.wait_for(1));
}

TEST(SpscRing, BoundedAndOrdered) {
  SpscRing<int> ring(3);  // rounds up to 4
  EXPECT_EQ(ring.capacity(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.try_push(i));
  EXPECT_FALSE(ring.try_push(9));
  int v = -1;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ring.try_pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(ring.try_pop(v));
  EXPECT_THROW(SpscRing<int>(0), std::invalid_argument);
}

}  // namespace
}  // namespace tatumflow::daemon
