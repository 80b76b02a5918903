// SPDX-License-Identifier: GPL-3.0-or-later
// RtMidi reports trouble through a callback (or prints and throws from inside
// its calls when none is set). One sink per RtMidi object collects the reports
// so the code around each call can turn them into a MidiError.
#pragma once

#include <RtMidi.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace tatumflow {

class RtMidiErrorSink {
 public:
  // Registers the sink with `midi`. // event-loop thread
  void attach(RtMidi& midi) { midi.setErrorCallback(&RtMidiErrorSink::callback, this); }

  // Throws MidiError "<context>: <RtMidi message>" if an error (or, when
  // `warnings_are_errors`, a warning) arrived since the last check.
  // // event-loop thread
  void check(const std::string& context, bool warnings_are_errors);

  // While quiet, reports are only counted (no lock, no allocation): set while a
  // real-time thread may be calling into the RtMidi object. // event-loop thread
  void set_quiet(bool quiet) { quiet_.store(quiet, std::memory_order_release); }
  [[nodiscard]] std::uint64_t quiet_reports() const { return quiet_reports_.load(std::memory_order_relaxed); }

 private:
  // Any thread RtMidi calls from.
  static void callback(RtMidiError::Type type, const std::string& text, void* sink);

  std::mutex mutex_;
  std::string error_;
  std::string warning_;
  std::atomic<bool> quiet_{false};
  std::atomic<std::uint64_t> quiet_reports_{0};
};

}  // namespace tatumflow
