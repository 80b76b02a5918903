// SPDX-License-Identifier: GPL-3.0-or-later
// MidiEvent construction, panic messages, the bounded lock-free queue and the
// frame scheduler of the JACK output, including proof that their real-time
// paths never allocate.
#include <gtest/gtest.h>

#include <array>
#include <thread>
#include <vector>

#include "allocation_counter.hpp"
#include "tatumflow/protocol/midi_event.hpp"
#include "tatumflow/protocol/midi_frame_scheduler.hpp"

namespace tatumflow {
namespace {

MidiEvent note_on(std::int64_t time_us, std::uint8_t pitch) {
  return MidiEvent{time_us, {0x90, pitch, 100}, 3, 0};
}

TEST(MidiEvent, AcceptsCompleteMessagesOnly) {
  MidiEvent event;
  const std::array<std::uint8_t, 3> note{0x91, 60, 100};
  ASSERT_TRUE(make_midi_event(42, note, 3, event));
  EXPECT_EQ(event.time_us, 42);
  EXPECT_EQ(event.size, 3);
  EXPECT_EQ(event.channel(), 1);
  EXPECT_EQ(event.port, 3);
  EXPECT_TRUE(event.is_channel_message());

  const std::array<std::uint8_t, 1> clock{0xF8};
  ASSERT_TRUE(make_midi_event(1, clock, 0, event));
  EXPECT_TRUE(event.is_realtime());
  const std::array<std::uint8_t, 3> song_position{0xF2, 0x10, 0x01};
  EXPECT_TRUE(make_midi_event(1, song_position, 0, event));
  const std::array<std::uint8_t, 2> program{0xC0, 5};
  EXPECT_TRUE(make_midi_event(1, program, 0, event));

  const MidiEvent untouched = event;
  const std::array<std::uint8_t, 2> short_note{0x90, 60};
  EXPECT_FALSE(make_midi_event(9, short_note, 0, event));
  const std::array<std::uint8_t, 3> sysex{0xF0, 0x7E, 0xF7};
  EXPECT_FALSE(make_midi_event(9, sysex, 0, event));
  const std::array<std::uint8_t, 3> data_first{60, 100, 0};
  EXPECT_FALSE(make_midi_event(9, data_first, 0, event));
  const std::array<std::uint8_t, 3> status_as_data{0x90, 0x90, 1};
  EXPECT_FALSE(make_midi_event(9, status_as_data, 0, event));
  EXPECT_FALSE(make_midi_event(9, std::span<const std::uint8_t>(), 0, event));
  EXPECT_EQ(event, untouched);
}

TEST(MidiEvent, PanicReleasesEveryChannel) {
  const auto events = panic_events(1000, 2);
  std::array<int, 16> cc123_per_channel{};
  std::array<int, 16> cc64_per_channel{};
  for (const MidiEvent& event : events) {
    EXPECT_EQ(event.time_us, 1000);
    EXPECT_EQ(event.port, 2);
    ASSERT_EQ(event.status() & 0xF0, 0xB0);
    EXPECT_EQ(event.bytes[2], 0);
    if (event.bytes[1] == 123) ++cc123_per_channel[event.channel()];
    if (event.bytes[1] == 64) ++cc64_per_channel[event.channel()];
  }
  for (int channel = 0; channel < 16; ++channel) {
    EXPECT_EQ(cc123_per_channel[channel], 1) << channel;
    EXPECT_EQ(cc64_per_channel[channel], 1) << channel;
  }
}

TEST(MidiEventQueue, RejectsBadSizes) {
  EXPECT_THROW(MidiEventQueue(0, 1), std::invalid_argument);
  EXPECT_THROW(MidiEventQueue(MidiEventQueue::kMaxCapacity + 1, 1), std::invalid_argument);
  EXPECT_THROW(MidiEventQueue(16, 0), std::invalid_argument);
  MidiEventQueue queue(16, 1);
  auto producer = queue.make_producer();
  EXPECT_THROW(static_cast<void>(queue.make_producer()), std::length_error);
}

TEST(MidiEventQueue, BoundedPushCountsDropsAndNeverAllocates) {
  constexpr std::size_t kCapacity = 256;
  MidiEventQueue queue(kCapacity, 2);
  auto first = queue.make_producer();
  auto second = queue.make_producer();

  test::start_counting_allocations();
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < 4 * kCapacity; ++i) {
    accepted += first.push(note_on(static_cast<std::int64_t>(i), 60)) ? 1 : 0;
  }
  const bool second_accepted_while_full = second.push(note_on(-1, 61));
  EXPECT_EQ(test::stop_counting_allocations(), 0U);
  EXPECT_EQ(accepted, kCapacity);
  EXPECT_FALSE(second_accepted_while_full);
  EXPECT_EQ(queue.dropped(), 3 * kCapacity + 1);
  EXPECT_EQ(queue.size_approx(), kCapacity);

  test::start_counting_allocations();
  std::array<MidiEvent, 64> batch;
  std::size_t popped = 0;
  std::int64_t previous_time = -1;
  for (std::size_t n; (n = queue.try_pop_bulk(batch)) > 0;) {
    for (std::size_t i = 0; i < n; ++i) {
      EXPECT_EQ(batch[i].time_us, previous_time + 1);  // per-producer order
      previous_time = batch[i].time_us;
    }
    popped += n;
  }
  EXPECT_EQ(test::stop_counting_allocations(), 0U);
  EXPECT_EQ(popped, kCapacity);
  EXPECT_EQ(queue.size_approx(), 0U);

  // The blocks the first producer keeps do not starve the second one, and
  // emptied blocks are reused: no allocation either way.
  test::start_counting_allocations();
  std::size_t refilled = 0;
  for (std::size_t i = 0; i < kCapacity; ++i) refilled += second.push(note_on(0, 61)) ? 1 : 0;
  MidiEvent event;
  for (std::size_t i = 0; i < kCapacity; ++i) static_cast<void>(queue.try_pop(event));
  for (std::size_t i = 0; i < kCapacity; ++i) refilled += first.push(note_on(0, 60)) ? 1 : 0;
  EXPECT_EQ(test::stop_counting_allocations(), 0U);
  EXPECT_EQ(refilled, 2 * kCapacity);
}

TEST(MidiEventQueue, ConcurrentProducersLoseNothingWithinCapacity) {
  constexpr int kPerThread = 2000;
  MidiEventQueue queue(4096, 2);
  std::vector<std::thread> threads;
  for (std::uint8_t id = 0; id < 2; ++id) {
    threads.emplace_back([&queue, id, producer = queue.make_producer()]() mutable {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_TRUE(producer.push(MidiEvent{i, {0x90, 60, 1}, 3, id}));
      }
    });
  }
  std::array<std::int64_t, 2> next{0, 0};
  int received = 0;
  while (received < 2 * kPerThread) {
    MidiEvent event;
    if (!queue.try_pop(event)) continue;
    ASSERT_LT(event.port, 2);
    EXPECT_EQ(event.time_us, next[event.port]++);
    ++received;
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(queue.dropped(), 0U);
}

TEST(PeriodTiming, MapsTimesAndFramesBothWays) {
  // 64 frames at 48 kHz: 1333.33 us.
  const PeriodTiming period{1'000'000, 1'001'333, 64};
  EXPECT_EQ(period.offset_of(1'000'000), 0);
  EXPECT_EQ(period.offset_of(1'000'021), 1);  // 20.83 us per frame
  EXPECT_EQ(period.offset_of(1'000'667), 32);
  EXPECT_EQ(period.offset_of(999'979), -1);
  EXPECT_EQ(period.offset_of(1'001'333), 64);
  for (std::int64_t frame = 0; frame < 64; ++frame) {
    EXPECT_EQ(period.offset_of(period.time_of(frame)), frame);
  }
}

struct Written {
  std::uint32_t offset_frames;
  MidiEvent event;
};

TEST(MidiFrameScheduler, WritesEachEventAtItsFrameInTimeOrder) {
  MidiFrameScheduler scheduler;
  const PeriodTiming first{1'000'000, 1'001'333, 64};
  const PeriodTiming second{1'001'333, 1'002'667, 64};
  // Inserted out of order; two share a time and must keep insertion order.
  ASSERT_TRUE(scheduler.insert(note_on(1'002'000, 64)));  // second period, frame 32
  ASSERT_TRUE(scheduler.insert(note_on(1'000'500, 62)));  // frame 24
  ASSERT_TRUE(scheduler.insert(note_on(1'000'500, 63)));  // frame 24, after 62
  ASSERT_TRUE(scheduler.insert(note_on(1'000'021, 61)));  // frame 1
  ASSERT_TRUE(scheduler.insert(note_on(999'000, 60)));    // already past: late

  std::vector<Written> written;
  written.reserve(16);
  const auto write = [&](std::uint32_t offset, const MidiEvent& event) {
    written.push_back({offset, event});
    return true;
  };
  test::start_counting_allocations();
  const std::size_t count = scheduler.take_due(first, write);
  EXPECT_EQ(test::stop_counting_allocations(), 0U);
  ASSERT_EQ(count, 4U);
  EXPECT_EQ(written[0].event.bytes[1], 60);
  EXPECT_EQ(written[0].offset_frames, 0U);
  EXPECT_EQ(written[1].event.bytes[1], 61);
  EXPECT_EQ(written[1].offset_frames, 1U);
  EXPECT_EQ(written[2].event.bytes[1], 62);
  EXPECT_EQ(written[2].offset_frames, 24U);
  EXPECT_EQ(written[3].event.bytes[1], 63);
  EXPECT_EQ(written[3].offset_frames, 24U);
  EXPECT_EQ(scheduler.late(), 1U);
  EXPECT_EQ(scheduler.worst_late_frames(), 48U);  // 1000 us early of the period start
  EXPECT_EQ(scheduler.size(), 1U);

  written.clear();
  EXPECT_EQ(scheduler.take_due(second, write), 1U);
  EXPECT_EQ(written[0].event.bytes[1], 64);
  EXPECT_EQ(written[0].offset_frames, 32U);
  EXPECT_EQ(scheduler.late(), 1U);
  EXPECT_EQ(scheduler.size_seen(), 0U);
}

TEST(MidiFrameScheduler, KeepsEventsWhenThePortBufferIsFull) {
  MidiFrameScheduler scheduler;
  const PeriodTiming period{0, 1333, 64};
  for (std::uint8_t i = 0; i < 4; ++i) ASSERT_TRUE(scheduler.insert(note_on(100 * i, 60 + i)));
  int room = 2;
  EXPECT_EQ(scheduler.take_due(period, [&](std::uint32_t, const MidiEvent&) { return room-- > 0; }), 2U);
  EXPECT_EQ(scheduler.size(), 2U);
  std::vector<std::uint8_t> pitches;
  pitches.reserve(4);
  EXPECT_EQ(scheduler.take_due(period,
                               [&](std::uint32_t, const MidiEvent& event) {
                                 pitches.push_back(event.bytes[1]);
                                 return true;
                               }),
            2U);
  EXPECT_EQ(pitches, (std::vector<std::uint8_t>{62, 63}));
}

TEST(MidiFrameScheduler, RefusesInsertWhenFull) {
  MidiFrameScheduler scheduler;
  for (std::size_t i = 0; i < MidiFrameScheduler::kCapacity; ++i) {
    ASSERT_TRUE(scheduler.insert(note_on(static_cast<std::int64_t>(MidiFrameScheduler::kCapacity - i), 60)));
  }
  EXPECT_FALSE(scheduler.insert(note_on(0, 60)));
  // Still sorted after inserting in reverse order.
  std::int64_t previous = -1;
  const PeriodTiming everything{0, 1'000'000'000, 64};
  scheduler.take_due(everything, [&](std::uint32_t, const MidiEvent& event) {
    EXPECT_GE(event.time_us, previous);
    previous = event.time_us;
    return true;
  });
  EXPECT_EQ(scheduler.size(), 0U);
}

}  // namespace
}  // namespace tatumflow
