// SPDX-License-Identifier: GPL-3.0-or-later
// The MIDI output scheduler: a dedicated thread, at real-time priority where
// the system allows it, that hands each timestamped event to its port's sink
// at its time. Deadline-driven: it sleeps until the earliest pending event is
// due (or new events arrive) on a futex with an absolute CLOCK_MONOTONIC
// timeout, the clock steady_now_us() reads.
//
// Events arrive from the event loop through a fixed-size SPSC ring into a
// pre-allocated heap ordered by due time (events with the same time keep their
// order). A sink that plays what it gets at once (RtMidi) is handed events at
// their time; one that takes future times itself (JACK's frame-accurate
// output) is handed them lead_us early, still carrying their target time.
// An event handed over later than late_tolerance_us after its time is counted
// late (with the worst lateness); it is still sent, since the answer planner
// has already dropped notes that could not make it and a release must never
// be lost.
//
// The scheduler tracks what each source (a session) has sounding, so cancel()
// can stop one answer cleanly and panic() can silence everything: note-offs for
// every sounding note, then sustain off, all sound off and all notes off on
// every channel of every port.
//
// On the scheduler thread nothing allocates, locks or logs; it counts.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>

#include "tatumflow/daemon/log.hpp"
#include "tatumflow/daemon/spsc_ring.hpp"
#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow {
class MidiOutputPort;
}

namespace tatumflow::daemon {

class OutputSink {
 public:
  virtual ~OutputSink() = default;
  // How long before its time an event may be handed over. // any thread
  [[nodiscard]] virtual std::int64_t lead_us() const noexcept = 0;
  // False when the sink could not take it (counted as dropped). // scheduler thread
  virtual bool deliver(const MidiEvent& event) noexcept = 0;
};

// An RtMidi port: plays on receipt. // scheduler thread
class SendNowSink final : public OutputSink {
 public:
  explicit SendNowSink(MidiOutputPort& port) : port_(port) {}
  [[nodiscard]] std::int64_t lead_us() const noexcept override { return 0; }
  bool deliver(const MidiEvent& event) noexcept override;

 private:
  MidiOutputPort& port_;
};

// A sink that takes future-timestamped events (JackMidiClient::Sender): handed
// `lead_us` early, which must cover at least one audio period. // scheduler thread
class FutureTimeSink final : public OutputSink {
 public:
  FutureTimeSink(ScheduledMidiSink& sink, std::int64_t lead_us) : sink_(sink), lead_us_(lead_us) {}
  [[nodiscard]] std::int64_t lead_us() const noexcept override { return lead_us_; }
  bool deliver(const MidiEvent& event) noexcept override { return sink_.schedule(event); }

 private:
  ScheduledMidiSink& sink_;
  std::int64_t lead_us_;
};

struct SchedulerStats {
  std::uint64_t delivered = 0;
  std::uint64_t late = 0;  // handed over later than the tolerance
  std::int64_t worst_late_us = 0;
  std::uint64_t dropped = 0;    // sink refused, ring or heap full, or no sink for the port
  std::uint64_t cancelled = 0;  // pending events removed by cancel() or panic()
  std::uint64_t released = 0;   // note-offs sent by cancel() or panic()
};

class Scheduler {
 public:
  static constexpr std::size_t kMaxPorts = 8;
  static constexpr std::size_t kMaxSources = 16;

  // Room for `capacity` pending events. // event-loop thread (allocates)
  Scheduler(std::size_t capacity, std::int64_t late_tolerance_us);
  // stop(). // event-loop thread
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The sink for events whose MidiEvent::port is `port` (< kMaxPorts); before
  // start() only. Throws std::out_of_range / std::logic_error. // event-loop thread
  void set_sink(std::uint8_t port, OutputSink* sink);

  // Starts the thread and asks for SCHED_FIFO at `realtime_priority` (0: does
  // not ask). When refused, logs one line and runs at normal priority. Returns
  // whether real-time priority was granted. // event-loop thread
  bool start(int realtime_priority, Logger& log);
  // Releases everything sounding (panic), then joins. // event-loop thread
  void stop();
  [[nodiscard]] bool realtime() const { return realtime_; }  // any thread
  [[nodiscard]] bool running() const { return thread_.joinable(); }

  // Queues events of `source` (< kMaxSources) with their target times; returns
  // how many were queued (the rest are counted dropped). // event-loop thread (the one producer)
  bool schedule(const MidiEvent& event, std::uint16_t source);
  std::size_t schedule(std::span<const MidiEvent> events, std::uint16_t source);
  // Drops `source`'s pending events and releases its sounding notes and pedal. // event-loop thread
  void cancel(std::uint16_t source);
  // Drops every pending event and silences every port. // event-loop thread
  void panic();

  [[nodiscard]] SchedulerStats stats() const;        // any thread
  [[nodiscard]] std::size_t pending_approx() const;  // any thread

 private:
  struct Queued {
    MidiEvent event;
    std::uint16_t source;
  };
  struct Entry {
    std::int64_t due_us;
    std::uint64_t sequence;
    Queued item;
  };
  struct Command {
    enum Kind : std::uint8_t { kCancel, kPanic, kStop } kind;
    std::uint16_t source;
  };
  using NoteCounts = std::array<std::array<std::uint8_t, 128>, 16>;  // [channel][pitch]

  // Scheduler thread:
  void run() noexcept;
  void take_input() noexcept;
  bool run_commands() noexcept;  // false on stop
  void deliver(const Queued& item, std::int64_t now_us) noexcept;
  void send(const MidiEvent& event) noexcept;
  void release(std::uint16_t source, std::int64_t now_us) noexcept;
  void remove_pending(bool all, std::uint16_t source) noexcept;
  void wait_until(std::int64_t due_us, std::uint32_t seen) noexcept;
  void wake() noexcept;           // event-loop thread
  bool command(Command command);  // event-loop thread

  std::array<OutputSink*, kMaxPorts> sinks_{};
  std::int64_t late_tolerance_us_;
  SpscRing<Queued> input_;
  SpscRing<Command> commands_;
  std::unique_ptr<Entry[]> heap_;
  std::size_t heap_capacity_;
  std::size_t heap_size_ = 0;
  std::uint64_t sequence_ = 0;
  std::array<NoteCounts, kMaxSources> sounding_{};
  std::array<std::array<std::uint8_t, 16>, kMaxSources> port_of_{};  // [source][channel]
  std::array<std::array<bool, 16>, kMaxSources> pedal_{};
  std::array<std::int64_t, kMaxSources> latest_us_{};  // latest target time handed over per source

  std::atomic<std::uint32_t> wake_{0};
  std::atomic<std::size_t> pending_{0};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> late_{0};
  std::atomic<std::int64_t> worst_late_us_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> released_{0};
  bool realtime_ = false;
  std::thread thread_;
};

}  // namespace tatumflow::daemon
