// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/midi_clock_driver.hpp"

#include <array>
#include <stdexcept>
#include <string>

namespace tatumflow {

MidiClockDriver::MidiClockDriver(boost::asio::io_context& io, MidiClockMaster& master,
                                 ScheduledMidiSink& sink, MidiClockDriverConfig config)
    : master_(master), sink_(sink), config_(config), timer_(io), alive_(std::make_shared<bool>(true)) {
  if (config_.interval_us.count() <= 0 || config_.interval_us >= config_.lookahead_us) {
    throw std::invalid_argument("MIDI clock driver: interval (" +
                                std::to_string(config_.interval_us.count()) +
                                " us) must be positive and shorter than the lookahead (" +
                                std::to_string(config_.lookahead_us.count()) + " us)");
  }
}

MidiClockDriver::~MidiClockDriver() { halt(); }

void MidiClockDriver::run() {
  if (running_) return;
  running_ = true;
  timer_.expires_at(std::chrono::steady_clock::now());
  render_due();
  arm();
}

void MidiClockDriver::halt() {
  running_ = false;
  timer_.cancel();
}

void MidiClockDriver::render_due() {
  const std::int64_t until_us = steady_now_us() + config_.lookahead_us.count();
  std::array<MidiEvent, 64> batch;
  std::size_t count = 0;
  do {
    count = master_.render(until_us, batch);
    for (std::size_t i = 0; i < count; ++i) {
      if (!sink_.schedule(batch[i])) ++dropped_;
    }
  } while (count == batch.size());
}

void MidiClockDriver::arm() {
  // Fixed-rate from the previous expiry, so the render horizon never drifts back.
  timer_.expires_at(timer_.expiry() + config_.interval_us);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
    if (error || alive.expired() || !running_) return;
    render_due();
    arm();
  });
}

}  // namespace tatumflow
