// SPDX-License-Identifier: GPL-3.0-or-later
// The unit of MIDI traffic between threads: a fixed-size, trivially copyable
// event stamped on the steady clock, and the bounded lock-free queue that carries
// it. Producers on real-time threads (RtMidi input, JACK process, scheduler)
// never allocate: the queue is pre-sized and each producer owns a token created
// beforehand on an ordinary thread.
#pragma once

#include <concurrentqueue/concurrentqueue.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

namespace tatumflow {

// Microseconds on std::chrono::steady_clock (CLOCK_MONOTONIC): the one time base
// of every MidiEvent, input and output alike. // any thread, real-time safe
[[nodiscard]] std::int64_t steady_now_us() noexcept;

// A channel or system message of at most three bytes. Sysex never travels here.
struct MidiEvent {
  std::int64_t time_us = 0;  // steady clock: arrival time for input, target time for output
  std::array<std::uint8_t, 3> bytes{};
  std::uint8_t size = 0;  // 1-3
  std::uint8_t port = 0;  // caller-chosen id of the port it came from or goes to

  [[nodiscard]] std::uint8_t status() const { return bytes[0]; }
  // Channel 0-15 of a channel message; meaningless for system messages.
  [[nodiscard]] std::uint8_t channel() const { return static_cast<std::uint8_t>(bytes[0] & 0x0F); }
  [[nodiscard]] bool is_channel_message() const { return bytes[0] >= 0x80 && bytes[0] < 0xF0; }
  // System real-time: clock F8, start FA, continue FB, stop FC, active sensing FE, reset FF.
  [[nodiscard]] bool is_realtime() const { return bytes[0] >= 0xF8; }
  friend bool operator==(const MidiEvent&, const MidiEvent&) = default;
};
static_assert(std::is_trivially_copyable_v<MidiEvent>);

// Builds an event from raw bytes; returns false (and leaves `out` alone) when
// the bytes are not one complete message of 1-3 bytes with a status byte first,
// or are sysex. // any thread, real-time safe
[[nodiscard]] bool make_midi_event(std::int64_t time_us, std::span<const std::uint8_t> bytes,
                                   std::uint8_t port, MidiEvent& out) noexcept;

// Number of data bytes that follow a status byte (0, 1 or 2); -1 for sysex
// start/end and undefined status bytes. // any thread, real-time safe
[[nodiscard]] int midi_data_bytes(std::uint8_t status) noexcept;

// Controllers the daemon acts on, by number.
inline constexpr std::uint8_t kSustainPedal = 64;
inline constexpr std::uint8_t kAllSoundOff = 120;
inline constexpr std::uint8_t kAllNotesOff = 123;

// Panic: sustain off (CC64 0), all sound off (CC120) and all notes off (CC123)
// on every channel, all stamped `time_us`. Synths that ignore CC123 while the
// pedal is down still release on CC64 0 + CC123. // any thread
inline constexpr std::size_t kPanicEventCount = 48;
[[nodiscard]] std::array<MidiEvent, kPanicEventCount> panic_events(std::int64_t time_us,
                                                                   std::uint8_t port) noexcept;

// Sink for events that carry a target time (MidiEvent::time_us in the future);
// implemented by the JACK output's Sender, used by the clock master.
class ScheduledMidiSink {
 public:
  virtual ~ScheduledMidiSink() = default;
  // False when the event could not be queued (queue full); never blocks or allocates.
  virtual bool schedule(const MidiEvent& event) noexcept = 0;
};

// Queue traits: blocks of 64 events and an explicit-producer block index big
// enough that a producer never needs to grow it (growing would allocate).
struct MidiQueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static constexpr std::size_t BLOCK_SIZE = 64;
  static constexpr std::size_t EXPLICIT_INITIAL_INDEX_SIZE = 256;
};

// Bounded multi-producer queue of MidiEvents. Each producer thread holds a
// Producer made beforehand; pushing fails (and counts a drop) instead of growing.
// Order is kept per producer, not across producers. moodycamel's explicit
// producers keep the blocks they have used, so the pool is sized for every
// producer to hold the whole capacity once, and a separate count bounds what is
// in flight.
class MidiEventQueue {
 public:
  static constexpr std::size_t kMaxCapacity =
      MidiQueueTraits::BLOCK_SIZE * (MidiQueueTraits::EXPLICIT_INITIAL_INDEX_SIZE - 2);

  // Room for `capacity` events in flight in all, from up to `max_producers`
  // producers made over the queue's life. Throws std::invalid_argument when
  // capacity is 0 or above kMaxCapacity, or max_producers is 0. // any thread (allocates)
  MidiEventQueue(std::size_t capacity, std::size_t max_producers);
  MidiEventQueue(const MidiEventQueue&) = delete;
  MidiEventQueue& operator=(const MidiEventQueue&) = delete;

  class Producer {
   public:
    // False (and one more drop counted) when the queue is full. // the one thread owning this producer
    bool push(const MidiEvent& event) noexcept;

   private:
    friend class MidiEventQueue;
    explicit Producer(MidiEventQueue& queue) : queue_(&queue), token_(queue.queue_) {}
    MidiEventQueue* queue_;
    moodycamel::ProducerToken token_;
  };

  // Throws std::length_error past max_producers. // any ordinary thread (allocates)
  [[nodiscard]] Producer make_producer();

  // False when empty. // consumer thread (one at a time), real-time safe
  bool try_pop(MidiEvent& event) noexcept;
  // Pops up to out.size() events; returns how many. // consumer thread, real-time safe
  std::size_t try_pop_bulk(std::span<MidiEvent> out) noexcept;

  // // any thread
  [[nodiscard]] std::size_t size_approx() const noexcept {
    return in_flight_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  moodycamel::ConcurrentQueue<MidiEvent, MidiQueueTraits> queue_;
  std::size_t capacity_;
  std::size_t max_producers_;
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> producers_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace tatumflow
