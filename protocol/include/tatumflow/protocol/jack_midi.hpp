// SPDX-License-Identifier: GPL-3.0-or-later
// A JACK client of our own with a frame-accurate MIDI output port and a MIDI
// input port stamped from frame times. RtMidi's JACK backend writes every
// event at frame 0 of the period and stamps input per period; here an output
// event carries its target time on the steady clock and is written at the
// frame of that time, and an input event gets the time of its frame.
//
// Threads: the constructor, maintain_connections and the destructor run on the
// event loop; make_sender on any ordinary thread; each Sender on one thread at
// a time; the JACK process callback (real-time) drains the output queue and
// fills the input queue without allocating, locking or logging.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "tatumflow/protocol/midi_event.hpp"
#include "tatumflow/protocol/midi_frame_scheduler.hpp"

namespace tatumflow {

class JackError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JackMidiConfig {
  std::string client_name = "tatumflow";
  std::string server_name{};       // empty: $JACK_DEFAULT_SERVER, else "default"
  std::string input_port{};        // empty: no input port
  std::string input_connect{};     // follow the first source port whose name contains this (empty: none)
  std::uint8_t input_port_id = 0;  // stamped into MidiEvent::port of input events
  std::string output_port{};       // empty: no output port
  std::string output_connect{};    // follow the first destination port whose name contains this
  std::size_t output_queue_capacity = 4096;  // output events in flight, all senders together
  std::size_t max_senders = 8;
};

struct JackMidiStats {
  std::uint64_t written = 0;            // output events written to the port
  std::uint64_t late = 0;               // written after their time (at frame 0 of a later period)
  std::uint64_t worst_late_frames = 0;  // largest lateness seen, in frames
  std::uint64_t dropped = 0;            // output events lost: queue full, pending buffer full
  std::uint64_t received = 0;           // input events pushed to the input queue
  std::uint64_t ignored = 0;            // input messages that were sysex or malformed
  std::uint64_t xruns = 0;
  std::uint64_t unmapped_cycles = 0;  // cycles without JACK's time map, timed from their start
};

class JackMidiClient {
 public:
  // Opens the client (never starts a server), registers the configured ports,
  // activates and makes the configured connections. Input events go to
  // `input_queue`, which must outlive the client and have a producer slot free;
  // it may be null when there is no input port. Throws JackError.
  // // event-loop thread
  JackMidiClient(JackMidiConfig config, MidiEventQueue* input_queue);
  ~JackMidiClient();
  JackMidiClient(const JackMidiClient&) = delete;
  JackMidiClient& operator=(const JackMidiClient&) = delete;

  // Queues output events: MidiEvent::time_us is the target time on the steady
  // clock. Events must reach the client at least one period before their time
  // to be written on their frame; later ones go out at once and count as late.
  class Sender : public ScheduledMidiSink {
   public:
    // // the one thread owning this sender; real-time safe
    bool schedule(const MidiEvent& event) noexcept override { return producer_.push(event); }

   private:
    friend class JackMidiClient;
    explicit Sender(MidiEventQueue::Producer producer) : producer_(std::move(producer)) {}
    MidiEventQueue::Producer producer_;
  };
  // Throws std::length_error past max_senders. // any ordinary thread
  [[nodiscard]] Sender make_sender();

  // Connects an unconnected port to the first port matching its *_connect
  // substring (the device came back, or appeared late). True when a connection
  // was made. // event-loop thread
  bool maintain_connections();

  // Waits until every queued and pending output event has been written, e.g.
  // before closing after a panic. False on timeout or when the server is gone.
  // // any ordinary thread
  bool wait_until_sent(std::chrono::milliseconds timeout) const;

  // True once JACK shut the client down (server stopped); the client must then
  // be recreated. // any thread
  [[nodiscard]] bool server_lost() const { return server_lost_.load(std::memory_order_acquire); }

  // // any thread
  [[nodiscard]] const std::string& client_name() const { return client_name_; }  // as JACK granted it
  [[nodiscard]] std::string input_port_name() const;   // "client:port", empty without input
  [[nodiscard]] std::string output_port_name() const;  // "client:port", empty without output
  [[nodiscard]] std::uint32_t sample_rate_hz() const;
  [[nodiscard]] std::uint32_t period_frames() const { return period_frames_.load(std::memory_order_relaxed); }

  // Time from writing an event to it leaving the system ports (JACK's
  // reported playback latency of the connected ports), in frames. // event-loop thread
  [[nodiscard]] std::uint32_t output_latency_frames() const;
  [[nodiscard]] JackMidiStats stats() const;  // any thread

 private:
  struct Handle;  // the jack_client_t and ports
  // JACK process thread.
  static int process(std::uint32_t nframes, void* self) noexcept;
  void process_input(const PeriodTiming& period) noexcept;
  void process_output(const PeriodTiming& period) noexcept;

  JackMidiConfig config_;
  std::unique_ptr<Handle> handle_;
  std::string client_name_;
  MidiEventQueue output_queue_;
  MidiFrameScheduler scheduler_;
  std::unique_ptr<MidiEventQueue::Producer> input_producer_;
  std::atomic<bool> server_lost_{false};
  std::atomic<std::uint32_t> period_frames_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> ignored_{0};
  std::atomic<std::uint64_t> xruns_{0};
  std::atomic<std::uint64_t> unmapped_cycles_{0};
  std::atomic<std::uint64_t> cycles_{0};  // process callbacks completed
  // Steady clock minus JACK's clock. // JACK process thread only
  std::int64_t jack_offset_us_ = 0;
  bool jack_offset_known_ = false;
};

}  // namespace tatumflow
