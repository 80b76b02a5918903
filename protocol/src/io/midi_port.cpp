// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/midi_port.hpp"

#include <RtMidi.h>
#include <jack/jack.h>

#include <filesystem>
#include <span>
#include <thread>

#include "rtmidi_error_sink.hpp"

namespace tatumflow {

void RtMidiErrorSink::callback(RtMidiError::Type type, const std::string& text, void* sink) {
  auto& self = *static_cast<RtMidiErrorSink*>(sink);
  if (self.quiet_.load(std::memory_order_acquire)) {
    self.quiet_reports_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::scoped_lock lock(self.mutex_);
  if (type == RtMidiError::WARNING || type == RtMidiError::DEBUG_WARNING) {
    self.warning_ = text;
  } else {
    self.error_ = text;
  }
}

void RtMidiErrorSink::check(const std::string& context, bool warnings_are_errors) {
  std::string message;
  {
    const std::scoped_lock lock(mutex_);
    if (!error_.empty()) {
      message = std::move(error_);
    } else if (warnings_are_errors && !warning_.empty()) {
      message = std::move(warning_);
    }
    error_.clear();
    warning_.clear();
  }
  if (!message.empty()) throw MidiError(context + ": " + message);
}

MidiApi parse_midi_api(std::string_view text) {
  if (text == "auto") return MidiApi::automatic;
  if (text == "alsa") return MidiApi::alsa;
  if (text == "jack") return MidiApi::jack;
  throw MidiError("midi.api: '" + std::string(text) + "' is not one of auto, alsa, jack");
}

std::string_view to_string(MidiApi api) {
  switch (api) {
    case MidiApi::automatic:
      return "auto";
    case MidiApi::alsa:
      return "alsa";
    case MidiApi::jack:
      return "jack";
  }
  return "?";
}

MidiApi resolve_midi_api(MidiApi api) {
  if (api != MidiApi::automatic) return api;
  std::error_code ignored;
  return std::filesystem::exists("/dev/snd/seq", ignored) ? MidiApi::alsa : MidiApi::jack;
}

namespace {

// RtMidi's default API tries ALSA first and throws where /dev/snd is missing,
// so the API is always named explicitly.
RtMidi::Api rtmidi_api(MidiApi api) {
  return resolve_midi_api(api) == MidiApi::alsa ? RtMidi::LINUX_ALSA : RtMidi::UNIX_JACK;
}

std::string describe(const MidiPortConfig& config, const char* direction) {
  std::string text = std::string("MIDI ") + direction + " '" + config.port_name + "' (" +
                     std::string(to_string(resolve_midi_api(config.api)));
  if (!config.match.empty()) text += ", matching '" + config.match + "'";
  return text + ")";
}

// RtMidi's JACK backend only warns when no server answers (and leaks its ring
// buffers), then crashes on the next port call; asking JACK first avoids all that.
void check_jack_server(const std::string& context) {
  jack_status_t status{};
  jack_client_t* probe = jack_client_open("tatumflow-probe", JackNoStartServer, &status);
  if (probe == nullptr) throw MidiError(context + ": cannot connect to the JACK server (is jackd running?)");
  jack_client_close(probe);
}

// Constructs an RtMidi object with the sink attached, connected to the MIDI
// system. Warnings here are fatal: they mean it could not connect.
template <class Port>
std::unique_ptr<Port> open_rtmidi(MidiApi api, const std::string& client_name, RtMidiErrorSink& sink,
                                  const std::string& context) {
  if (resolve_midi_api(api) == MidiApi::jack) check_jack_server(context);
  std::unique_ptr<Port> port;
  try {
    port = std::make_unique<Port>(rtmidi_api(api), client_name);
  } catch (const RtMidiError& error) {
    throw MidiError(context + ": " + error.getMessage());
  }
  sink.attach(*port);
  static_cast<void>(port->getPortCount());
  sink.check(context, /*warnings_are_errors=*/true);
  return port;
}

template <class Port>
std::vector<std::string> port_names(Port& port) {
  std::vector<std::string> names;
  const unsigned count = port.getPortCount();
  for (unsigned i = 0; i < count; ++i) names.push_back(port.getPortName(i));
  return names;
}

// First port containing `match`, skipping our own client's ports so an input
// never loops back from our own output.
std::string find_match(const std::vector<std::string>& names, const MidiPortConfig& config) {
  const std::string own_prefix = config.client_name + ":";
  for (const auto& name : names) {
    if (name.rfind(own_prefix, 0) == 0) continue;
    if (name.find(config.match) != std::string::npos) return name;
  }
  return {};
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& candidate : names) {
    if (candidate == name) return true;
  }
  return false;
}

// Opens `port` on the port named exactly `name`; false when it has vanished meanwhile.
template <class Port>
bool open_by_name(Port& port, const std::string& name, const std::string& own_port_name) {
  const unsigned count = port.getPortCount();
  for (unsigned i = 0; i < count; ++i) {
    if (port.getPortName(i) == name) {
      port.openPort(i, own_port_name);
      return true;
    }
  }
  return false;
}

template <class Port>
std::vector<std::string> list_ports(MidiApi api, const char* what) {
  RtMidiErrorSink sink;
  auto port = open_rtmidi<Port>(api, "tatumflow-list", sink, std::string("listing MIDI ") + what);
  return port_names(*port);
}

}  // namespace

std::vector<std::string> list_midi_sources(MidiApi api) { return list_ports<RtMidiIn>(api, "sources"); }

std::vector<std::string> list_midi_destinations(MidiApi api) {
  return list_ports<RtMidiOut>(api, "destinations");
}

MidiInputPort::MidiInputPort(MidiPortConfig config, MidiEventQueue& queue)
    : config_(std::move(config)),
      api_(resolve_midi_api(config_.api)),
      producer_(queue.make_producer()),
      errors_(std::make_unique<RtMidiErrorSink>()),
      scanner_errors_(std::make_unique<RtMidiErrorSink>()) {
  const std::string context = describe(config_, "input");
  port_ = open_rtmidi<RtMidiIn>(api_, config_.client_name, *errors_, context);
  // Sysex and active sensing are dropped by RtMidi; timing (clock, MTC) must pass.
  port_->ignoreTypes(/*midiSysex=*/true, /*midiTime=*/false, /*midiSense=*/true);
  port_->setCallback(&MidiInputPort::on_message, this);
  if (config_.match.empty()) {
    port_->openVirtualPort(config_.port_name);
    errors_->check(context, /*warnings_are_errors=*/true);
    connected_.store(true, std::memory_order_release);
    return;
  }
  scanner_ = open_rtmidi<RtMidiIn>(api_, config_.client_name + "-scan", *scanner_errors_, context);
  open_matching();
}

MidiInputPort::~MidiInputPort() = default;

bool MidiInputPort::open_matching() {
  const std::string name = find_match(port_names(*scanner_), config_);
  scanner_errors_->check(describe(config_, "input") + " scanning", false);
  if (name.empty() || !open_by_name(*port_, name, config_.port_name)) return false;
  errors_->check(describe(config_, "input") + " opening '" + name + "'", false);
  device_name_ = name;
  connected_.store(true, std::memory_order_release);
  return true;
}

bool MidiInputPort::poll_reconnect() {
  if (config_.match.empty()) return false;
  if (!connected()) return open_matching();
  const auto names = port_names(*scanner_);
  scanner_errors_->check(describe(config_, "input") + " scanning", false);
  if (contains(names, device_name_)) return false;
  port_->closePort();
  errors_->check(describe(config_, "input") + " closing '" + device_name_ + "'", false);
  device_name_.clear();
  connected_.store(false, std::memory_order_release);
  return true;
}

void MidiInputPort::on_message(double /*rtmidi_delta_s*/, std::vector<unsigned char>* message, void* self) {
  auto& port = *static_cast<MidiInputPort*>(self);
  const std::int64_t now_us = steady_now_us();
  MidiEvent event;
  if (make_midi_event(now_us, std::span<const std::uint8_t>(message->data(), message->size()),
                      port.config_.port_id, event)) {
    port.producer_.push(event);
  } else {
    port.ignored_.fetch_add(1, std::memory_order_relaxed);
  }
}

MidiOutputPort::MidiOutputPort(MidiPortConfig config)
    : config_(std::move(config)),
      api_(resolve_midi_api(config_.api)),
      errors_(std::make_unique<RtMidiErrorSink>()),
      scanner_errors_(std::make_unique<RtMidiErrorSink>()) {
  const std::string context = describe(config_, "output");
  port_ = open_rtmidi<RtMidiOut>(api_, config_.client_name, *errors_, context);
  if (config_.match.empty()) {
    port_->openVirtualPort(config_.port_name);
    errors_->check(context, /*warnings_are_errors=*/true);
    connected_.store(true, std::memory_order_release);
  } else {
    scanner_ = open_rtmidi<RtMidiOut>(api_, config_.client_name + "-scan", *scanner_errors_, context);
    open_matching();
  }
  let_senders_in();
}

MidiOutputPort::~MidiOutputPort() = default;

void MidiOutputPort::lock_out_senders() {
  while (busy_.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
  errors_->set_quiet(false);
}

void MidiOutputPort::let_senders_in() {
  errors_->set_quiet(true);
  busy_.store(false, std::memory_order_release);
}

bool MidiOutputPort::send(const MidiEvent& event) noexcept {
  if (!connected() || busy_.exchange(true, std::memory_order_acquire)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::uint64_t reports_before = errors_->quiet_reports();
  port_->sendMessage(event.bytes.data(), event.size);
  const bool sent = errors_->quiet_reports() == reports_before;
  busy_.store(false, std::memory_order_release);
  if (!sent) dropped_.fetch_add(1, std::memory_order_relaxed);
  return sent;
}

std::size_t MidiOutputPort::send_panic() noexcept {
  std::size_t sent = 0;
  for (const MidiEvent& event : panic_events(0, config_.port_id)) sent += send(event) ? 1 : 0;
  return sent;
}

bool MidiOutputPort::open_matching() {
  const std::string name = find_match(port_names(*scanner_), config_);
  scanner_errors_->check(describe(config_, "output") + " scanning", false);
  if (name.empty() || !open_by_name(*port_, name, config_.port_name)) return false;
  errors_->check(describe(config_, "output") + " opening '" + name + "'", false);
  device_name_ = name;
  connected_.store(true, std::memory_order_release);
  return true;
}

bool MidiOutputPort::poll_reconnect() {
  if (config_.match.empty()) return false;
  if (connected()) {
    const auto names = port_names(*scanner_);
    scanner_errors_->check(describe(config_, "output") + " scanning", false);
    if (contains(names, device_name_)) return false;
  }
  lock_out_senders();
  bool changed = false;
  try {
    if (connected()) {
      connected_.store(false, std::memory_order_release);
      port_->closePort();
      errors_->check(describe(config_, "output") + " closing '" + device_name_ + "'", false);
      device_name_.clear();
      changed = true;
    } else {
      changed = open_matching();
    }
  } catch (...) {
    let_senders_in();
    throw;
  }
  let_senders_in();
  return changed;
}

}  // namespace tatumflow
