// SPDX-License-Identifier: GPL-3.0-or-later
// MIDI ports through RtMidi (ALSA sequencer or JACK): a virtual port, or a
// connection to an existing port matched by name substring that survives the
// device being unplugged and plugged back (the event loop calls poll_reconnect).
//
// Input is stamped on the steady clock in RtMidi's callback and pushed into a
// MidiEventQueue without allocating. RtMidi itself copies each message into a
// std::vector before calling us, and its JACK backend stamps whole periods at
// once; use JackMidiClient (jack_midi.hpp) where frame-accurate times matter.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/protocol/midi_event.hpp"

class RtMidiIn;
class RtMidiOut;

namespace tatumflow {

class RtMidiErrorSink;

class MidiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `midi.api` in the config.
enum class MidiApi { automatic, alsa, jack };

// "auto", "alsa" or "jack"; throws MidiError naming the bad value. // any thread
[[nodiscard]] MidiApi parse_midi_api(std::string_view text);
[[nodiscard]] std::string_view to_string(MidiApi api);
// `automatic` becomes ALSA when /dev/snd/seq exists, else JACK; others pass through. // any thread
[[nodiscard]] MidiApi resolve_midi_api(MidiApi api);

struct MidiPortConfig {
  MidiApi api = MidiApi::automatic;
  std::string client_name = "tatumflow";  // ALSA/JACK client name of our side
  std::string port_name = "midi";         // our port's name (virtual, or our end of the connection)
  std::string match{};                    // empty: virtual port; else first port whose name contains it
  std::uint8_t port_id = 0;               // stamped into MidiEvent::port of input events
};

// Names of the ports an input can connect to (sources) and an output can
// connect to (destinations), as matched by MidiPortConfig::match. Throws
// MidiError when the MIDI system cannot be reached. // event-loop thread
[[nodiscard]] std::vector<std::string> list_midi_sources(MidiApi api);
[[nodiscard]] std::vector<std::string> list_midi_destinations(MidiApi api);

class MidiInputPort {
 public:
  // Opens the port; with a `match` that names no port yet it waits for the
  // device (connected() false) instead of failing. Takes a producer slot of
  // `queue` (kept even when it throws); `queue` must outlive the port. Throws
  // MidiError when the MIDI system cannot be reached. // event-loop thread
  MidiInputPort(MidiPortConfig config, MidiEventQueue& queue);
  ~MidiInputPort();
  MidiInputPort(const MidiInputPort&) = delete;
  MidiInputPort& operator=(const MidiInputPort&) = delete;

  // Closes the connection when the matched port has disappeared, opens it when
  // a matching port (re)appears. True when the state changed. Call about once a
  // second. // event-loop thread
  bool poll_reconnect();

  // Virtual ports are always connected. // any thread
  [[nodiscard]] bool connected() const { return connected_.load(std::memory_order_acquire); }
  // The matched port's full name; empty for a virtual port or while waiting. // event-loop thread
  [[nodiscard]] const std::string& device_name() const { return device_name_; }
  // Messages that were not one 1-3 byte message (sysex, stray data). // any thread
  [[nodiscard]] std::uint64_t ignored() const { return ignored_.load(std::memory_order_relaxed); }
  // ALSA or JACK, `automatic` resolved. // any thread
  [[nodiscard]] MidiApi api() const { return api_; }

 private:
  // MIDI input thread (ALSA) or JACK process thread: stamps, pushes, never allocates.
  static void on_message(double rtmidi_delta_s, std::vector<unsigned char>* message, void* self);
  bool open_matching();

  MidiPortConfig config_;
  MidiApi api_;
  MidiEventQueue::Producer producer_;
  std::unique_ptr<RtMidiErrorSink> errors_;  // of port_
  std::unique_ptr<RtMidiErrorSink> scanner_errors_;
  std::unique_ptr<RtMidiIn> port_;
  std::unique_ptr<RtMidiIn> scanner_;  // enumerates sources without touching the open port
  std::string device_name_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> ignored_{0};
};

class MidiOutputPort {
 public:
  // As MidiInputPort. // event-loop thread
  explicit MidiOutputPort(MidiPortConfig config);
  ~MidiOutputPort();
  MidiOutputPort(const MidiOutputPort&) = delete;
  MidiOutputPort& operator=(const MidiOutputPort&) = delete;

  // Sends now (time_us is not looked at). False, and counted in dropped(), when
  // not connected or while poll_reconnect is switching the device. Never
  // blocks. // one sending thread at a time (the scheduler)
  bool send(const MidiEvent& event) noexcept;
  // Sends panic_events() now; returns how many went out. // the sending thread
  std::size_t send_panic() noexcept;

  // As MidiInputPort::poll_reconnect. // event-loop thread
  bool poll_reconnect();

  // // any thread
  [[nodiscard]] bool connected() const { return connected_.load(std::memory_order_acquire); }
  // // event-loop thread
  [[nodiscard]] const std::string& device_name() const { return device_name_; }
  // Events send() refused or the MIDI system rejected. // any thread
  [[nodiscard]] std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // // any thread
  [[nodiscard]] MidiApi api() const { return api_; }

 private:
  bool open_matching();
  // Waits for a send in progress to finish and keeps new ones out. // event-loop thread
  void lock_out_senders();
  void let_senders_in();

  MidiPortConfig config_;
  MidiApi api_;
  std::unique_ptr<RtMidiErrorSink> errors_;  // of port_
  std::unique_ptr<RtMidiErrorSink> scanner_errors_;
  std::unique_ptr<RtMidiOut> port_;
  std::unique_ptr<RtMidiOut> scanner_;
  std::string device_name_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> busy_{false};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace tatumflow
