// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflowd's configuration: the TOML file (configs/tatumflowd.toml documents
// every key) plus command-line overrides `--set <key>=<value>`, where <key> is
// the dotted path also used in error messages (`osc.port`,
// `session.0.phrase_end.bars`). An override's value is read as a TOML value
// (`8`, `true`, `1.5`, `"text"`), or as a plain string when it is not one, so
// `--set daemon.device=cuda` needs no quotes; it then passes the same typed
// checks as the file.
//
// Unknown keys, wrong types and values out of range are errors that name the
// key and where it was set: "tatumflowd.toml:12:1: session.0.phrase_end.bars:
// must be 0, 2, 4 or 8 (got 3)". Loading allocates and reads files: event-loop
// thread (or main before the threads start).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/daemon/log.hpp"

namespace tatumflow::daemon {

class ConfigError : public std::runtime_error {
 public:
  // `source` is the file name or "--set <override>", `line` 0 when unknown.
  // // any thread
  ConfigError(std::string key, std::string source, int line, int column, const std::string& message);
  [[nodiscard]] const std::string& key() const { return key_; }        // any thread
  [[nodiscard]] const std::string& source() const { return source_; }  // any thread
  [[nodiscard]] int line() const { return line_; }                     // any thread

 private:
  std::string key_;
  std::string source_;
  int line_;
};

enum class ComputeDevice { cpu, cuda };
// Answers generated at once share the model's forward passes (model_api.hpp
// StepSharing): auto on a GPU only.
enum class StepSharing { automatic, on, off };
enum class AnswerEngine { model, echo };
enum class ClockSource { internal, midi };

struct DaemonSettings {
  std::string state_dir = "/var/lib/tatumflow";
  LogLevel log_level = LogLevel::info;
  std::string model;  // checkpoint path (engine = model); scripts/run passes the bundled one
  ComputeDevice device = ComputeDevice::cpu;
  AnswerEngine engine = AnswerEngine::model;
  std::string styles_dir = "/usr/local/share/tatumflow/styles";  // bundled <name>.style files
  int inference_threads = 4;
  StepSharing step_sharing = StepSharing::automatic;
  int queue_capacity = 16;  // pending generation requests
  // Test hook: the model on `device` fails after this many chunks (model_generator.hpp); 0: off.
  int inject_device_failure_after_chunks = 0;
  friend bool operator==(const DaemonSettings&, const DaemonSettings&) = default;
};

struct MidiSettings {
  std::string api = "auto";  // auto | alsa | jack (protocol's parse_midi_api reads it)
  ClockSource clock_source = ClockSource::internal;
  bool send_clock = false;
  double tempo_bpm = 120.0;
  int beats_per_bar = 4;
  friend bool operator==(const MidiSettings&, const MidiSettings&) = default;
};

// A fixed receiver of state feedback (a tablet at a known address).
struct OscTarget {
  std::string address;  // numeric IPv4 or IPv6
  int port = 0;
  friend bool operator==(const OscTarget&, const OscTarget&) = default;
};

struct OscSettings {
  std::string bind_address = "127.0.0.1";
  int port = 8000;                // TouchOSC's default outgoing port
  int reply_port = 9000;          // TouchOSC's default incoming port
  std::vector<OscTarget> notify;  // get feedback as if registered with /tf/notify
  friend bool operator==(const OscSettings&, const OscSettings&) = default;
};

struct SchedulerSettings {
  int realtime_priority = 70;    // SCHED_FIFO 1-99; 0: do not ask
  double lookahead_beats = 1.0;  // generation starts this long before a known call end
  int ready_margin_ms = 5;       // a chunk must be placed this long before its first note
  int late_tolerance_ms = 1;     // an event handed out later than this counts as late
  int output_lead_ms = 10;       // how early events go to a sink that takes future times (JACK)
  int chunk_bars = 1;            // answer chunk length
  int grid_division = 12;        // answer onsets snap to 1/N beat; 0: no snapping
  int queue_capacity = 4096;     // events waiting in the scheduler
  friend bool operator==(const SchedulerSettings&, const SchedulerSettings&) = default;
};

struct PhraseEndSettings {
  int silence_ms = 1200;  // 0: off
  int bars = 0;           // trading length 2, 4 or 8; 0: off
  int gesture_cc = -1;    // controller whose press ends the call; -1: off
  int min_call_ms = 300;
  bool pedal_holds_phrase = true;  // a held sustain pedal keeps the call going
  friend bool operator==(const PhraseEndSettings&, const PhraseEndSettings&) = default;
};

struct SessionSettings {
  std::string name;
  std::string input = "virtual";   // port name substring, or "virtual"
  int input_channel = 0;           // 1-16; 0: omni
  std::string output = "virtual";  // port name substring, or "virtual"
  int output_channel = 1;          // 1-16
  PhraseEndSettings phrase_end;
  std::string style = "tatum";  // bundled style name, "learn", or a .mid/.midi/.style path
  double learn_rate = 0.25;     // weight of each new call in the learned style
  double temperature = 1.0;
  double creativity = 0.5;
  double density = 1.0;
  int bars = 4;       // bars per answer
  int state_cc = -1;  // controller showing the session's state on its output; -1: off
  friend bool operator==(const SessionSettings&, const SessionSettings&) = default;
};

// The values state_cc sends: idle, listening, thinking, answering.
inline constexpr std::uint8_t kStateCcValues[4] = {0, 32, 64, 96};

struct Config {
  DaemonSettings daemon;
  MidiSettings midi;
  OscSettings osc;
  SchedulerSettings scheduler;
  std::vector<SessionSettings> sessions;
};

// Parses TOML text (named `source_name` in errors), applies `overrides`
// ("key=value" each) and checks everything. Throws ConfigError. // event-loop thread
[[nodiscard]] Config parse_config(std::string_view toml_text, std::string_view source_name,
                                  std::span<const std::string> overrides = {});
// Reads the file first; a file that cannot be read is a ConfigError too. // event-loop thread
[[nodiscard]] Config load_config(const std::filesystem::path& path,
                                 std::span<const std::string> overrides = {});

// 1-32 letters, digits, '-' or '_': session and style slot names, which name
// files and OSC addresses. // any thread
[[nodiscard]] bool is_valid_name(std::string_view name);

[[nodiscard]] std::string_view to_string(ComputeDevice device);  // any thread
[[nodiscard]] std::string_view to_string(AnswerEngine engine);   // any thread
[[nodiscard]] std::string_view to_string(ClockSource source);    // any thread

}  // namespace tatumflow::daemon
