// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/jack_midi.hpp"

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <array>
#include <span>
#include <thread>
#include <utility>

namespace tatumflow {

struct JackMidiClient::Handle {
  jack_client_t* client = nullptr;
  jack_port_t* input = nullptr;
  jack_port_t* output = nullptr;

  Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { close(); }

  // Returns once the process callback has run for the last time.
  void close() {
    if (client == nullptr) return;
    jack_deactivate(client);
    jack_client_close(client);
    client = nullptr;
  }
};

namespace {

std::string describe_status(jack_status_t status) {
  std::string text;
  const auto add = [&](jack_status_t bit, const char* what) {
    if ((status & bit) == 0) return;
    if (!text.empty()) text += "; ";
    text += what;
  };
  add(JackServerFailed, "cannot connect to the JACK server (is jackd running?)");
  add(JackServerError, "communication error with the server");
  add(JackNoSuchClient, "no such client");
  add(JackLoadFailure, "cannot load internal client");
  add(JackInitFailure, "cannot initialise client");
  add(JackShmFailure, "cannot access shared memory");
  add(JackVersionError, "client protocol version does not match the server");
  add(JackInvalidOption, "invalid or unsupported option");
  add(JackNameNotUnique, "client name not unique");
  return text.empty() ? "unknown JACK failure" : text;
}

std::string full_name(jack_port_t* port) { return port == nullptr ? std::string() : jack_port_name(port); }

// Follows `match` for `port` when it has no connection: connects it to the
// first other client's port (of the opposite direction) containing `match`.
bool connect_matching(jack_client_t* client, jack_port_t* port, const std::string& match,
                      bool port_is_input) {
  if (port == nullptr || match.empty() || jack_port_connected(port) > 0) return false;
  const char** names = jack_get_ports(client, nullptr, JACK_DEFAULT_MIDI_TYPE,
                                      port_is_input ? JackPortIsOutput : JackPortIsInput);
  if (names == nullptr) return false;
  const std::string own_prefix = std::string(jack_get_client_name(client)) + ":";
  bool connected = false;
  for (const char** name = names; *name != nullptr && !connected; ++name) {
    const std::string candidate(*name);
    if (candidate.rfind(own_prefix, 0) == 0 || candidate.find(match) == std::string::npos) continue;
    const std::string ours = jack_port_name(port);
    connected = port_is_input ? jack_connect(client, candidate.c_str(), ours.c_str()) == 0
                              : jack_connect(client, ours.c_str(), candidate.c_str()) == 0;
  }
  jack_free(static_cast<void*>(names));
  return connected;
}

}  // namespace

JackMidiClient::JackMidiClient(JackMidiConfig config, MidiEventQueue* input_queue)
    : config_(std::move(config)),
      handle_(std::make_unique<Handle>()),
      output_queue_(config_.output_queue_capacity, config_.max_senders) {
  const std::string context = "JACK client '" + config_.client_name + "'";
  if (!config_.input_port.empty() && input_queue == nullptr) {
    throw JackError(context + ": input port '" + config_.input_port + "' configured without an input queue");
  }
  jack_status_t status{};
  const auto options =
      static_cast<jack_options_t>(JackNoStartServer | (config_.server_name.empty() ? 0 : JackServerName));
  handle_->client =
      config_.server_name.empty()
          ? jack_client_open(config_.client_name.c_str(), options, &status)
          : jack_client_open(config_.client_name.c_str(), options, &status, config_.server_name.c_str());
  if (handle_->client == nullptr) throw JackError(context + ": " + describe_status(status));
  jack_client_t* client = handle_->client;
  client_name_ = jack_get_client_name(client);
  period_frames_.store(jack_get_buffer_size(client), std::memory_order_relaxed);

  jack_set_process_callback(client, &JackMidiClient::process, this);
  jack_set_buffer_size_callback(
      client,
      [](jack_nframes_t frames, void* self) {
        static_cast<JackMidiClient*>(self)->period_frames_.store(frames, std::memory_order_relaxed);
        return 0;
      },
      this);
  jack_set_xrun_callback(
      client,
      [](void* self) {
        static_cast<JackMidiClient*>(self)->xruns_.fetch_add(1, std::memory_order_relaxed);
        return 0;
      },
      this);
  jack_on_info_shutdown(
      client,
      [](jack_status_t, const char*, void* self) {
        static_cast<JackMidiClient*>(self)->server_lost_.store(true, std::memory_order_release);
      },
      this);

  const auto register_port = [&](const std::string& name, unsigned long flags) {
    jack_port_t* port = jack_port_register(client, name.c_str(), JACK_DEFAULT_MIDI_TYPE, flags, 0);
    if (port == nullptr) throw JackError(context + ": cannot register MIDI port '" + name + "'");
    return port;
  };
  if (!config_.input_port.empty()) {
    input_producer_ = std::make_unique<MidiEventQueue::Producer>(input_queue->make_producer());
    handle_->input = register_port(config_.input_port, JackPortIsInput);
  }
  if (!config_.output_port.empty()) handle_->output = register_port(config_.output_port, JackPortIsOutput);
  if (jack_activate(client) != 0) throw JackError(context + ": cannot activate");
  maintain_connections();
}

JackMidiClient::~JackMidiClient() {
  // Stop the process callback (which reads handle_) before anything it uses goes away.
  handle_->close();
}

JackMidiClient::Sender JackMidiClient::make_sender() { return Sender(output_queue_.make_producer()); }

bool JackMidiClient::maintain_connections() {
  if (server_lost()) return false;
  const bool input = connect_matching(handle_->client, handle_->input, config_.input_connect, true);
  const bool output = connect_matching(handle_->client, handle_->output, config_.output_connect, false);
  return input || output;
}

bool JackMidiClient::wait_until_sent(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto idle = [&] { return output_queue_.size_approx() == 0 && scheduler_.size_seen() == 0; };
  while (std::chrono::steady_clock::now() < deadline && !server_lost()) {
    if (idle()) {
      // An event popped by the cycle running now shows up in size_seen() only
      // when that cycle ends, so look again after one full cycle.
      const std::uint64_t cycle = cycles_.load(std::memory_order_acquire);
      while (cycles_.load(std::memory_order_acquire) < cycle + 2) {
        if (std::chrono::steady_clock::now() >= deadline || server_lost()) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (idle()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::string JackMidiClient::input_port_name() const { return full_name(handle_->input); }
std::string JackMidiClient::output_port_name() const { return full_name(handle_->output); }
std::uint32_t JackMidiClient::sample_rate_hz() const { return jack_get_sample_rate(handle_->client); }

std::uint32_t JackMidiClient::output_latency_frames() const {
  if (handle_->output == nullptr) return 0;
  jack_latency_range_t range{};
  jack_port_get_latency_range(handle_->output, JackPlaybackLatency, &range);
  return range.max;
}

JackMidiStats JackMidiClient::stats() const {
  JackMidiStats stats;
  stats.written = written_.load(std::memory_order_relaxed);
  stats.late = scheduler_.late();
  stats.worst_late_frames = scheduler_.worst_late_frames();
  stats.dropped = dropped_.load(std::memory_order_relaxed) + output_queue_.dropped();
  stats.received = received_.load(std::memory_order_relaxed);
  stats.ignored = ignored_.load(std::memory_order_relaxed);
  stats.xruns = xruns_.load(std::memory_order_relaxed);
  stats.unmapped_cycles = unmapped_cycles_.load(std::memory_order_relaxed);
  return stats;
}

int JackMidiClient::process(std::uint32_t nframes, void* arg) noexcept {
  auto& self = *static_cast<JackMidiClient*>(arg);
  jack_client_t* client = self.handle_->client;
  jack_nframes_t start_frame = 0;
  jack_time_t start_jack_us = 0;
  jack_time_t end_jack_us = 0;
  float period_us = 0;
  // JACK's clock is CLOCK_MONOTONIC_RAW (jackd2 on Linux), which drifts from
  // the steady clock's CLOCK_MONOTONIC by the NTP slew, so the offset is
  // measured every cycle: a JACK reading between two steady readings. A wide
  // bracket means we were preempted in between; the last offset is kept.
  constexpr std::int64_t kMaxBracketUs = 4;
  const std::int64_t before_us = steady_now_us();
  const auto jack_us = static_cast<std::int64_t>(jack_get_time());
  const std::int64_t after_us = steady_now_us();
  if (after_us - before_us <= kMaxBracketUs || !self.jack_offset_known_) {
    self.jack_offset_us_ = before_us + (after_us - before_us) / 2 - jack_us;
    self.jack_offset_known_ = true;
  }
  const std::int64_t offset_us = self.jack_offset_us_;
  PeriodTiming period{0, 0, nframes};
  if (jack_get_cycle_times(client, &start_frame, &start_jack_us, &end_jack_us, &period_us) == 0 &&
      end_jack_us > start_jack_us) {
    period.start_us = static_cast<std::int64_t>(start_jack_us) + offset_us;
    period.end_us = static_cast<std::int64_t>(end_jack_us) + offset_us;
  } else {
    // No time map (first cycle, or JACK's DLL restarting after an xrun):
    // take the period as starting now at the nominal rate.
    self.unmapped_cycles_.fetch_add(1, std::memory_order_relaxed);
    period.start_us = after_us;
    period.end_us =
        after_us + std::max<std::int64_t>(1, nframes * std::int64_t{1'000'000} /
                                                 std::max<jack_nframes_t>(1, jack_get_sample_rate(client)));
  }
  if (self.handle_->input != nullptr) self.process_input(period);
  if (self.handle_->output != nullptr) self.process_output(period);
  self.cycles_.fetch_add(1, std::memory_order_release);
  return 0;
}

void JackMidiClient::process_input(const PeriodTiming& period) noexcept {
  void* buffer = jack_port_get_buffer(handle_->input, period.frames);
  const std::uint32_t count = jack_midi_get_event_count(buffer);
  for (std::uint32_t i = 0; i < count; ++i) {
    jack_midi_event_t raw{};
    if (jack_midi_event_get(&raw, buffer, i) != 0) continue;
    MidiEvent event;
    if (!make_midi_event(period.time_of(raw.time), std::span<const std::uint8_t>(raw.buffer, raw.size),
                         config_.input_port_id, event)) {
      ignored_.fetch_add(1, std::memory_order_relaxed);
    } else if (input_producer_->push(event)) {
      received_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void JackMidiClient::process_output(const PeriodTiming& period) noexcept {
  void* buffer = jack_port_get_buffer(handle_->output, period.frames);
  jack_midi_clear_buffer(buffer);
  // Bounded so that a flood cannot stretch one cycle.
  constexpr std::size_t kBatch = 64;
  constexpr int kMaxBatches = 16;
  std::array<MidiEvent, kBatch> batch;
  for (int round = 0; round < kMaxBatches; ++round) {
    const std::size_t popped = output_queue_.try_pop_bulk(batch);
    for (std::size_t i = 0; i < popped; ++i) {
      if (!scheduler_.insert(batch[i])) dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    if (popped < kBatch) break;
  }
  const std::size_t written =
      scheduler_.take_due(period, [&](std::uint32_t offset_frames, const MidiEvent& event) {
        return jack_midi_event_write(buffer, offset_frames, event.bytes.data(), event.size) == 0;
      });
  written_.fetch_add(written, std::memory_order_relaxed);
}

}  // namespace tatumflow
