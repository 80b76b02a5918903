// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflowd's wiring: config, MIDI ports (RtMidi or JACK), the beat clock,
// the scheduler, the inference workers, the sessions and the OSC commands, all
// driven by one Boost.Asio event loop. Private to the executable.
//
// Everything here runs on the event-loop thread (the main thread) unless
// marked otherwise.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tatumflow/daemon/bar_clock.hpp"
#include "tatumflow/daemon/config.hpp"
#include "tatumflow/daemon/generation.hpp"
#include "tatumflow/daemon/inference_pool.hpp"
#include "tatumflow/daemon/log.hpp"
#include "tatumflow/daemon/scheduler.hpp"
#include "tatumflow/daemon/session.hpp"
#include "tatumflow/protocol/jack_midi.hpp"
#include "tatumflow/protocol/midi_clock.hpp"
#include "tatumflow/protocol/midi_clock_driver.hpp"
#include "tatumflow/protocol/midi_event.hpp"
#include "tatumflow/protocol/midi_port.hpp"
#include "tatumflow/protocol/osc_server.hpp"

namespace tatumflow::daemon {

inline constexpr const char* kDaemonVersion = TATUMFLOW_VERSION;

class DaemonApp {
 public:
  // Loads the config (TATUMFLOW_STATE_DIR, then `overrides`); throws ConfigError.
  DaemonApp(std::filesystem::path config_path, std::vector<std::string> overrides);
  ~DaemonApp();
  DaemonApp(const DaemonApp&) = delete;
  DaemonApp& operator=(const DaemonApp&) = delete;

  // Opens everything, runs until SIGTERM/SIGINT or /tf/quit; returns the exit
  // status. Throws (before READY=1) when a port, the model or OSC cannot start.
  int run();

 private:
  struct Input {
    std::string key;  // "virtual" or the name substring
    std::unique_ptr<MidiInputPort> rtmidi;
    std::unique_ptr<JackMidiClient> jack;
  };
  struct Output {
    std::string key;
    std::unique_ptr<MidiOutputPort> rtmidi;
    std::unique_ptr<JackMidiClient> jack;
    std::unique_ptr<JackMidiClient::Sender> sender;
    std::unique_ptr<OutputSink> sink;
  };
  enum class Feedback { idle, listening, thinking, answering };
  struct SessionSlot {
    SessionSettings settings;
    std::uint8_t input = 0;
    std::unique_ptr<Session> session;
    Feedback feedback = Feedback::idle;
    bool from_config = false;  // a reload may free it; /tf/session/new ones stay
  };
  // The MIDI clock master's output: every output port, through the scheduler.
  class ClockSink final : public ScheduledMidiSink {
   public:
    ClockSink(Scheduler& scheduler, std::size_t ports) : scheduler_(scheduler), ports_(ports) {}
    bool schedule(const MidiEvent& event) noexcept override;  // event-loop thread

   private:
    Scheduler& scheduler_;
    std::size_t ports_;
  };

  // Scheduler sources beside the sessions' (a session's source is its id).
  static constexpr std::uint16_t kClockSource = Scheduler::kMaxSources - 1;
  static constexpr std::uint16_t kFeedbackSource = Scheduler::kMaxSources - 2;

  void open_engine();
  void open_ports();
  void open_clock();
  void open_sessions();
  void open_osc();
  void register_session_commands(const std::string& name);
  void start_timers();
  void wait_for_signal();
  // Runs `action` every `period` until shutdown.
  void every(boost::asio::steady_timer& timer, std::chrono::steady_clock::duration period,
             std::function<void()> action);

  // Creates a session from `settings` (ports already open); restores its
  // saved style or loads the configured one. Throws std::runtime_error.
  SessionSlot& add_session(SessionSettings settings);
  SessionSlot& session_named(const std::string& name);
  std::uint8_t input_index(const std::string& key) const;
  std::uint8_t output_index(const std::string& key) const;

  void tick();
  void drain_input();
  void drain_results();
  void send_feedback(std::int64_t now_us);
  // The session's state as its state CC, if it has one.
  void send_state_cc(const SessionSlot& slot);
  void set_notify_targets(const std::vector<OscTarget>& targets);
  void save_styles();
  void set_tempo(double tempo_bpm);
  // SIGHUP: re-reads the file with the same overrides and applies what can
  // change live; a bad file changes nothing.
  void reload_config();
  // The reload's session part: appends the keys applied and those needing a restart.
  void reload_sessions(const Config& fresh, std::vector<std::string>& applied,
                       std::vector<std::string>& restart);
  void free_session(SessionSlot& slot);
  void shutdown(const std::string& reason);

  void reply_done(const OscRequest& request);
  void send_status(const OscRequest& request);

  std::filesystem::path config_path_;
  std::vector<std::string> overrides_;
  Config config_;
  Logger log_;
  boost::asio::io_context io_;
  MidiApi api_ = MidiApi::jack;
  MidiEventQueue input_queue_;
  std::vector<Input> inputs_;
  std::vector<Output> outputs_;
  BarClock clock_;
  std::unique_ptr<MidiClockFollower> follower_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ClockSink> clock_sink_;
  std::unique_ptr<MidiClockMaster> clock_master_;
  std::unique_ptr<MidiClockDriver> clock_driver_;
  std::unique_ptr<ChunkGenerator> generator_;
  StyleEncoder* encoder_ = nullptr;
  std::unique_ptr<InferencePool> pool_;
  std::unique_ptr<SchedulerOutputs> session_outputs_;
  std::map<std::uint16_t, SessionSlot> sessions_;
  std::set<std::string> registered_names_;
  std::unique_ptr<OscServer> osc_;
  std::vector<boost::asio::ip::udp::endpoint> listeners_;       // /tf/notify
  std::vector<boost::asio::ip::udp::endpoint> notify_targets_;  // osc.notify
  std::vector<boost::asio::ip::udp::endpoint> sync_waiters_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer save_timer_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::signal_set signals_;
  std::vector<MidiEvent> input_batch_;
  bool realtime_ = false;
  bool stopping_ = false;
  int exit_status_ = 0;
  double inference_ms_ = 0.0;  // moving average of chunk compute time
  std::uint64_t results_seen_ = 0;
};

}  // namespace tatumflow::daemon
