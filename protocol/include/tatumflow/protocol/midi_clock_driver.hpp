// SPDX-License-Identifier: GPL-3.0-or-later
// Glue that makes a MidiClockMaster sound: an Asio timer on the event loop
// renders the clock a little ahead of time into a scheduled output (the JACK
// client's Sender), which writes each message on its frame.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "tatumflow/protocol/midi_clock.hpp"
#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow {

struct MidiClockDriverConfig {
  // How far ahead of its time a message is handed to the output: more than one
  // audio period plus the timer's wake-up jitter. A tempo change reaches the
  // output after about this long.
  std::chrono::microseconds lookahead_us{20'000};
  std::chrono::microseconds interval_us{5'000};  // timer period
};

class MidiClockDriver {
 public:
  // `master` and `sink` must outlive the driver. Throws std::invalid_argument
  // unless 0 < interval < lookahead. // event-loop thread
  MidiClockDriver(boost::asio::io_context& io, MidiClockMaster& master, ScheduledMidiSink& sink,
                  MidiClockDriverConfig config = {});
  ~MidiClockDriver();
  MidiClockDriver(const MidiClockDriver&) = delete;
  MidiClockDriver& operator=(const MidiClockDriver&) = delete;

  // Renders what is due now and every interval after. // event-loop thread
  void run();
  // Stops the timer; nothing more is rendered. // event-loop thread
  void halt();

  // Messages the sink refused (its queue was full). // event-loop thread
  [[nodiscard]] std::uint64_t dropped() const { return dropped_; }

 private:
  void render_due();
  void arm();

  MidiClockMaster& master_;
  ScheduledMidiSink& sink_;
  MidiClockDriverConfig config_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<bool> alive_;  // lets a cancelled wait that completes after destruction do nothing
  bool running_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace tatumflow
