// SPDX-License-Identifier: GPL-3.0-or-later
#include "daemon_app.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <stdexcept>

#include "tatumflow/daemon/echo_generator.hpp"
#include "tatumflow/daemon/style.hpp"
#ifdef TATUMFLOW_HAVE_MODEL
#include "tatumflow/daemon/model_generator.hpp"
#endif

namespace tatumflow::daemon {
namespace {

constexpr auto kTickPeriod = std::chrono::milliseconds(2);
constexpr auto kSavePeriod = std::chrono::seconds(5);
constexpr auto kReconnectPeriod = std::chrono::seconds(1);
constexpr std::size_t kInputQueueCapacity = 4096;
constexpr std::size_t kMaxInputProducers = 16;

Config load_with_environment(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  // The environment's state directory comes first, so a user's --set still wins.
  std::vector<std::string> all;
  if (const char* state_dir = std::getenv("TATUMFLOW_STATE_DIR"); state_dir != nullptr && *state_dir != '\0')
    all.push_back(std::string("daemon.state_dir=\"") + state_dir + "\"");
  all.insert(all.end(), overrides.begin(), overrides.end());
  return load_config(path, all);
}

const char* feedback_word(int feedback) {
  static constexpr std::array<const char*, 4> kWords{"idle", "listening", "thinking", "answering"};
  return kWords.at(static_cast<std::size_t>(feedback));
}

}  // namespace

bool DaemonApp::ClockSink::schedule(const MidiEvent& event) noexcept {
  bool all = true;
  for (std::size_t port = 0; port < ports_; ++port) {
    MidiEvent copy = event;
    copy.port = static_cast<std::uint8_t>(port);
    all = scheduler_.schedule(copy, kClockSource) && all;
  }
  return all;
}

DaemonApp::DaemonApp(std::filesystem::path config_path, std::vector<std::string> overrides)
    : config_path_(std::move(config_path)),
      overrides_(std::move(overrides)),
      config_(load_with_environment(config_path_, overrides_)),
      log_(config_.daemon.log_level),
      input_queue_(kInputQueueCapacity, kMaxInputProducers),
      clock_(config_.midi.tempo_bpm, config_.midi.beats_per_bar, steady_now_us()),
      tick_timer_(io_),
      save_timer_(io_),
      reconnect_timer_(io_),
      watchdog_timer_(io_),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      input_batch_(256) {}

DaemonApp::~DaemonApp() = default;

int DaemonApp::run() {
  log_.notice(std::string("tatumflowd ") + kDaemonVersion + " starting with " + config_path_.string());
  open_engine();
  open_ports();
  open_clock();
  open_osc();
  set_notify_targets(config_.osc.notify);
  open_sessions();
  wait_for_signal();
  start_timers();
  sd_notify(0, "READY=1");
  log_.notice("ready: " + std::to_string(sessions_.size()) + " session(s), OSC on " +
              osc_->local_endpoint().address().to_string() + ":" +
              std::to_string(osc_->local_endpoint().port()) + ", engine " +
              std::string(to_string(config_.daemon.engine)));
  io_.run();
  return exit_status_;
}

void DaemonApp::wait_for_signal() {
  signals_.async_wait([this](const boost::system::error_code& error, int signal) {
    if (error) return;
    if (signal == SIGHUP) {
      reload_config();
      wait_for_signal();
    } else {
      shutdown(signal == SIGTERM ? "SIGTERM" : "SIGINT");
    }
  });
}

void DaemonApp::open_engine() {
  if (config_.daemon.engine == AnswerEngine::echo) {
    generator_ = std::make_unique<EchoGenerator>();
    log_.notice("engine: echo (the call answered a fourth up; no model loaded)");
  } else {
#ifdef TATUMFLOW_HAVE_MODEL
    if (config_.daemon.model.empty())
      throw std::runtime_error("daemon.model: no checkpoint given (scripts/run passes the bundled one)");
    const std::string device = config_.daemon.device == ComputeDevice::cuda ? "cuda" : "cpu";
    const model::StepSharing sharing =
        config_.daemon.step_sharing == StepSharing::on    ? model::StepSharing::kShared
        : config_.daemon.step_sharing == StepSharing::off ? model::StepSharing::kSeparate
                                                          : model::StepSharing::kAuto;
    auto model = model::ModelContext::load(config_.daemon.model, device, {.step_sharing = sharing});
    log_.notice("engine: model " + config_.daemon.model + " on " + device + ", " +
                std::to_string(model->info().parameters) + " parameters");
    model::GenerationControls base;
    base.use_style = true;
    // Style guidance would decode every answer token twice; on the Tatum clips
    // it raised P(Art Tatum) by 0.01 at guidance 3 and cost pitch accuracy.
    base.guidance = 1.0f;
    ModelGeneratorOptions options;
    options.inject_device_failure_after_chunks = config_.daemon.inject_device_failure_after_chunks;
    if (options.inject_device_failure_after_chunks > 0) {
      log_.warning("daemon.inject_device_failure_after_chunks = " +
                   std::to_string(options.inject_device_failure_after_chunks) +
                   ": the model will fail on purpose (a test hook)");
    }
    auto generator = std::make_unique<ModelGenerator>(std::move(model), base, log_, options);
    log_.info("model warmed up: a first answer and style took " +
              std::to_string(std::lround(generator->warm_up())) + " ms");
    encoder_ = generator.get();
    generator_ = std::move(generator);
#else
    throw std::runtime_error(
        "daemon.engine = \"model\": this tatumflowd was built without the model "
        "(TATUMFLOW_BUILD_MODEL=OFF); use --set daemon.engine=echo");
#endif
  }
  pool_ = std::make_unique<InferencePool>(*generator_, encoder_, log_,
                                          static_cast<std::size_t>(config_.daemon.inference_threads),
                                          static_cast<std::size_t>(config_.daemon.queue_capacity),
                                          [this] { boost::asio::post(io_, [this] { drain_results(); }); });
}

std::uint8_t DaemonApp::input_index(const std::string& key) const {
  for (std::size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i].key == key) return static_cast<std::uint8_t>(i);
  throw std::runtime_error("input '" + key + "' is not open (ports are opened at startup from the config)");
}

std::uint8_t DaemonApp::output_index(const std::string& key) const {
  for (std::size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i].key == key) return static_cast<std::uint8_t>(i);
  throw std::runtime_error("output '" + key + "' is not open (ports are opened at startup from the config)");
}

void DaemonApp::open_ports() {
  api_ = resolve_midi_api(parse_midi_api(config_.midi.api));
  log_.info("MIDI through " + std::string(api_ == MidiApi::jack ? "JACK" : "ALSA"));
  scheduler_ = std::make_unique<Scheduler>(static_cast<std::size_t>(config_.scheduler.queue_capacity),
                                           std::int64_t{config_.scheduler.late_tolerance_ms} * 1000);
  // One port per distinct input and output name; sessions sharing one share the port.
  for (const SessionSettings& s : config_.sessions) {
    const bool new_input =
        std::none_of(inputs_.begin(), inputs_.end(), [&](const Input& in) { return in.key == s.input; });
    if (new_input) {
      if (inputs_.size() >= kMaxInputProducers - 1)
        throw std::runtime_error("too many distinct MIDI inputs (at most " +
                                 std::to_string(kMaxInputProducers - 1) + ")");
      Input in;
      in.key = s.input;
      const auto id = static_cast<std::uint8_t>(inputs_.size());
      const bool virtual_port = s.input == "virtual";
      if (api_ == MidiApi::jack) {
        JackMidiConfig jc;
        jc.client_name = "tatumflow";
        jc.input_port = s.name + "_in";
        jc.input_connect = virtual_port ? "" : s.input;
        jc.input_port_id = id;
        in.jack = std::make_unique<JackMidiClient>(jc, &input_queue_);
        log_.info("MIDI input " + in.jack->input_port_name() +
                  (virtual_port ? "" : " following ports matching '" + s.input + "'"));
      } else {
        MidiPortConfig pc;
        pc.api = api_;
        pc.port_name = s.name + "_in";
        pc.match = virtual_port ? "" : s.input;
        pc.port_id = id;
        in.rtmidi = std::make_unique<MidiInputPort>(pc, input_queue_);
        log_.info("MIDI input " +
                  (virtual_port ? "virtual port " + pc.port_name : "matching '" + s.input + "'") +
                  (in.rtmidi->connected() ? "" : " (waiting for the device)"));
      }
      inputs_.push_back(std::move(in));
    }
    const bool new_output = std::none_of(outputs_.begin(), outputs_.end(),
                                         [&](const Output& out) { return out.key == s.output; });
    if (new_output) {
      if (outputs_.size() >= Scheduler::kMaxPorts)
        throw std::runtime_error("too many distinct MIDI outputs (at most " +
                                 std::to_string(Scheduler::kMaxPorts) + ")");
      Output out;
      out.key = s.output;
      const bool virtual_port = s.output == "virtual";
      if (api_ == MidiApi::jack) {
        JackMidiConfig jc;
        jc.client_name = "tatumflow";
        jc.output_port = s.name + "_out";
        jc.output_connect = virtual_port ? "" : s.output;
        out.jack = std::make_unique<JackMidiClient>(jc, nullptr);
        out.sender = std::make_unique<JackMidiClient::Sender>(out.jack->make_sender());
        out.sink = std::make_unique<FutureTimeSink>(*out.sender,
                                                    std::int64_t{config_.scheduler.output_lead_ms} * 1000);
        log_.info("MIDI output " + out.jack->output_port_name() + ", period " +
                  std::to_string(out.jack->period_frames()) + " frames at " +
                  std::to_string(out.jack->sample_rate_hz()) + " Hz");
      } else {
        MidiPortConfig pc;
        pc.api = api_;
        pc.port_name = s.name + "_out";
        pc.match = virtual_port ? "" : s.output;
        out.rtmidi = std::make_unique<MidiOutputPort>(pc);
        out.sink = std::make_unique<SendNowSink>(*out.rtmidi);
        log_.info("MIDI output " +
                  (virtual_port ? "virtual port " + pc.port_name : "matching '" + s.output + "'"));
      }
      scheduler_->set_sink(static_cast<std::uint8_t>(outputs_.size()), out.sink.get());
      outputs_.push_back(std::move(out));
    }
  }
  realtime_ = scheduler_->start(config_.scheduler.realtime_priority, log_);
  session_outputs_ = std::make_unique<SchedulerOutputs>(*pool_, *scheduler_);
}

void DaemonApp::open_clock() {
  if (config_.midi.clock_source == ClockSource::midi) {
    MidiClockFollowerConfig fc;
    fc.beats_per_bar = config_.midi.beats_per_bar;
    follower_ = std::make_unique<MidiClockFollower>(fc);
    clock_.follow(follower_.get());
    log_.info("clock: following MIDI clock on the inputs");
  }
  if (config_.midi.send_clock) {
    clock_sink_ = std::make_unique<ClockSink>(*scheduler_, outputs_.size());
    clock_master_ = std::make_unique<MidiClockMaster>(clock_.internal(), 0);
    clock_driver_ = std::make_unique<MidiClockDriver>(io_, *clock_master_, *clock_sink_);
    // Start on the next internal downbeat so the grid does not move under the sessions.
    const std::int64_t now_us = steady_now_us();
    const std::int64_t bar = clock_.first_bar_at_or_after(now_us + 50'000);
    const double beat = clock_.internal().beat_at(clock_.downbeat_us(bar));
    clock_master_->song_position(static_cast<std::uint16_t>(std::max(0.0, beat) * 4.0), now_us);
    clock_master_->resume(clock_.downbeat_us(bar));
    clock_driver_->run();
    log_.info("clock: sending MIDI clock on every output");
  }
}

DaemonApp::SessionSlot& DaemonApp::add_session(SessionSettings settings) {
  if (!is_valid_name(settings.name))
    throw std::runtime_error("'" + settings.name + "' is not a valid session name");
  for (const auto& [id, slot] : sessions_)
    if (slot.settings.name == settings.name)
      throw std::runtime_error("session '" + settings.name + "' exists");
  std::uint16_t id = 0;
  while (sessions_.count(id) != 0) ++id;
  if (id >= kFeedbackSource)
    throw std::runtime_error("too many sessions (at most " + std::to_string(kFeedbackSource) + ")");
  SessionSlot slot;
  slot.input = input_index(settings.input);
  const std::uint8_t output = output_index(settings.output);
  const std::filesystem::path state_path = style_state_path(config_.daemon.state_dir, settings.name);
  std::optional<StyleState> saved;
  if (std::filesystem::exists(state_path)) {
    try {
      saved = load_style_state(state_path);
      log_.info("session " + settings.name + ": style restored from " + state_path.string());
    } catch (const StyleError& error) {
      log_.error(std::string(error.what()) + "; starting from the configured style");
    }
  }
  slot.session =
      std::make_unique<Session>(id, settings, session_timing(config_.scheduler), output, clock_,
                                *session_outputs_, log_, saved ? *saved : initial_style_state(settings));
  if (!saved) {
    try {
      slot.session->load_style(settings.style, config_.daemon.styles_dir);
    } catch (const std::exception& error) {
      log_.warning("session " + settings.name + ": style '" + settings.style +
                   "' not loaded: " + error.what());
    }
  }
  slot.settings = std::move(settings);
  auto [it, inserted] = sessions_.emplace(id, std::move(slot));
  register_session_commands(it->second.settings.name);
  send_state_cc(it->second);  // a controller's light starts from idle
  return it->second;
}

void DaemonApp::free_session(SessionSlot& slot) {
  slot.session->stop_answer();
  slot.session->save_style_if_changed(style_state_path(config_.daemon.state_dir, slot.settings.name));
  sessions_.erase(slot.session->id());
}

DaemonApp::SessionSlot& DaemonApp::session_named(const std::string& name) {
  for (auto& [id, slot] : sessions_)
    if (slot.settings.name == name) return slot;
  throw std::runtime_error("no session '" + name + "'");
}

void DaemonApp::open_sessions() {
  for (const SessionSettings& s : config_.sessions) {
    SessionSlot& slot = add_session(s);
    slot.from_config = true;
    log_.info("session " + s.name + " (id " + std::to_string(slot.session->id()) + "): in '" + s.input +
              "' channel " + (s.input_channel == 0 ? std::string("omni") : std::to_string(s.input_channel)) +
              ", out '" + s.output + "' channel " + std::to_string(s.output_channel));
  }
}

void DaemonApp::start_timers() {
  every(tick_timer_, kTickPeriod, [this] { tick(); });
  every(save_timer_, kSavePeriod, [this] { save_styles(); });
  every(reconnect_timer_, kReconnectPeriod, [this] {
    for (Input& in : inputs_) {
      if (in.rtmidi && in.rtmidi->poll_reconnect())
        log_.notice("MIDI input '" + in.key + "' " + (in.rtmidi->connected() ? "connected" : "disconnected"));
      if (in.jack && in.jack->maintain_connections()) log_.notice("MIDI input '" + in.key + "' connected");
    }
    for (Output& out : outputs_) {
      if (out.rtmidi && out.rtmidi->poll_reconnect())
        log_.notice("MIDI output '" + out.key + "' " +
                    (out.rtmidi->connected() ? "connected" : "disconnected"));
      if (out.jack && out.jack->maintain_connections())
        log_.notice("MIDI output '" + out.key + "' connected");
    }
    const bool lost = std::any_of(inputs_.begin(), inputs_.end(),
                                  [](const Input& in) { return in.jack && in.jack->server_lost(); }) ||
                      std::any_of(outputs_.begin(), outputs_.end(),
                                  [](const Output& out) { return out.jack && out.jack->server_lost(); });
    if (lost) {
      exit_status_ = 1;
      shutdown("the JACK server went away");
    }
  });
  std::uint64_t watchdog_us = 0;
  if (sd_watchdog_enabled(0, &watchdog_us) > 0) {
    // Half the interval, as sd_watchdog_enabled(3) recommends; from the event
    // loop, so a stuck loop stops the pings.
    every(watchdog_timer_, std::chrono::microseconds(watchdog_us / 2), [] { sd_notify(0, "WATCHDOG=1"); });
    log_.info("systemd watchdog every " + std::to_string(watchdog_us / 2000) + " ms");
  }
}

void DaemonApp::every(boost::asio::steady_timer& timer, std::chrono::steady_clock::duration period,
                      std::function<void()> action) {
  timer.expires_after(period);
  timer.async_wait(
      [this, &timer, period, action = std::move(action)](const boost::system::error_code& error) {
        if (error || stopping_) return;
        action();
        if (!stopping_) every(timer, period, action);
      });
}

void DaemonApp::tick() {
  const std::int64_t now_us = steady_now_us();
  drain_input();
  clock_.update(now_us);
  drain_results();
  for (auto& [id, slot] : sessions_) slot.session->tick(now_us);
  send_feedback(now_us);
  if (!sync_waiters_.empty() && pool_->depth() == 0) {
    for (const auto& to : sync_waiters_) osc_->send(to, OscMessageOut("/tf/synced"));
    sync_waiters_.clear();
  }
}

void DaemonApp::drain_input() {
  for (;;) {
    const std::size_t n = input_queue_.try_pop_bulk(input_batch_);
    for (std::size_t i = 0; i < n; ++i) {
      const MidiEvent& event = input_batch_[i];
      if (event.is_realtime() || event.status() == 0xF2) {
        if (follower_) follower_->on_event(event);
        continue;
      }
      for (auto& [id, slot] : sessions_)
        if (slot.input == event.port) slot.session->on_midi(event);
    }
    if (n < input_batch_.size()) return;
  }
}

void DaemonApp::drain_results() {
  WorkResult result;
  while (pool_->poll(result)) {
    const std::int64_t now_us = steady_now_us();
    if (auto* chunk = std::get_if<ChunkResult>(&result)) {
      if (chunk->status == ChunkStatus::ok) {
        ++results_seen_;
        // Moving average over about the last 16 chunks.
        const double ms = static_cast<double>(chunk->compute_us) / 1000.0;
        inference_ms_ = results_seen_ == 1 ? ms : inference_ms_ + (ms - inference_ms_) / 16.0;
      }
      const auto it = sessions_.find(static_cast<std::uint16_t>(chunk->session));
      if (it != sessions_.end()) it->second.session->on_result(std::move(*chunk), now_us);
    } else {
      const auto& style = std::get<StyleResult>(result);
      const auto it = sessions_.find(static_cast<std::uint16_t>(style.session));
      if (it != sessions_.end()) it->second.session->on_style(style);
    }
  }
}

void DaemonApp::send_feedback(std::int64_t now_us) {
  for (auto& [id, slot] : sessions_) {
    const Session& session = *slot.session;
    Feedback state = Feedback::idle;
    if (session.in_call()) {
      state = Feedback::listening;
    } else if (session.answering(now_us)) {
      const auto& plan = session.plan();
      state =
          plan && now_us >= clock_.downbeat_us(plan->start_bar) ? Feedback::answering : Feedback::thinking;
    }
    if (state == slot.feedback) continue;
    slot.feedback = state;
    const char* word = feedback_word(static_cast<int>(state));
    log_.debug("session " + slot.settings.name + ": " + word);
    send_state_cc(slot);
    OscMessageOut message("/tf/" + slot.settings.name + "/state");
    message.add(word);
    for (const auto& to : listeners_) osc_->send(to, message);
    for (const auto& to : notify_targets_)
      if (std::find(listeners_.begin(), listeners_.end(), to) == listeners_.end()) osc_->send(to, message);
  }
}

void DaemonApp::send_state_cc(const SessionSlot& slot) {
  if (slot.settings.state_cc < 0) return;
  const std::uint8_t port = slot.session->output_port();
  // As soon as the port can take it: a sink that schedules ahead gets it its lead early.
  const MidiEvent event{steady_now_us() + outputs_[port].sink->lead_us(),
                        {static_cast<std::uint8_t>(0xB0 | slot.session->output_channel()),
                         static_cast<std::uint8_t>(slot.settings.state_cc),
                         kStateCcValues[static_cast<std::size_t>(slot.feedback)]},
                        3,
                        port};
  scheduler_->schedule(event, kFeedbackSource);
}

void DaemonApp::set_notify_targets(const std::vector<OscTarget>& targets) {
  notify_targets_.clear();
  for (const OscTarget& target : targets)
    notify_targets_.emplace_back(boost::asio::ip::make_address(target.address),
                                 static_cast<std::uint16_t>(target.port));
}

void DaemonApp::save_styles() {
  for (auto& [id, slot] : sessions_) {
    try {
      slot.session->save_style_if_changed(style_state_path(config_.daemon.state_dir, slot.settings.name));
    } catch (const StyleError& error) {
      log_.error(error.what());
    }
  }
}

void DaemonApp::set_tempo(double tempo_bpm) {
  check_tempo_bpm(tempo_bpm);
  const std::int64_t now_us = steady_now_us();
  if (clock_master_)
    clock_master_->set_tempo(tempo_bpm, now_us);
  else
    clock_.set_tempo(tempo_bpm, now_us);
  log_.info("tempo " + std::to_string(tempo_bpm) + " bpm");
}

void DaemonApp::reload_config() {
  Config fresh;
  try {
    fresh = load_with_environment(config_path_, overrides_);
  } catch (const std::exception& error) {
    log_.error(std::string("SIGHUP: config not reloaded, still running on the previous one: ") +
               error.what());
    return;
  }
  std::vector<std::string> applied;
  std::vector<std::string> restart;
  // Keys that open ports, threads, sockets or the model, or move the bar grid,
  // keep their running values until a restart.
  const auto keep = [&restart](const char* key, auto& fresh_value, const auto& running_value) {
    if (fresh_value == running_value) return;
    restart.emplace_back(key);
    fresh_value = running_value;
  };
  keep("daemon.state_dir", fresh.daemon.state_dir, config_.daemon.state_dir);
  keep("daemon.model", fresh.daemon.model, config_.daemon.model);
  keep("daemon.device", fresh.daemon.device, config_.daemon.device);
  keep("daemon.engine", fresh.daemon.engine, config_.daemon.engine);
  keep("daemon.inference_threads", fresh.daemon.inference_threads, config_.daemon.inference_threads);
  keep("daemon.share_steps", fresh.daemon.step_sharing, config_.daemon.step_sharing);
  keep("daemon.queue_capacity", fresh.daemon.queue_capacity, config_.daemon.queue_capacity);
  keep("daemon.inject_device_failure_after_chunks", fresh.daemon.inject_device_failure_after_chunks,
       config_.daemon.inject_device_failure_after_chunks);
  keep("midi.api", fresh.midi.api, config_.midi.api);
  keep("midi.clock_source", fresh.midi.clock_source, config_.midi.clock_source);
  keep("midi.send_clock", fresh.midi.send_clock, config_.midi.send_clock);
  keep("midi.beats_per_bar", fresh.midi.beats_per_bar, config_.midi.beats_per_bar);
  keep("osc.bind_address", fresh.osc.bind_address, config_.osc.bind_address);
  keep("osc.port", fresh.osc.port, config_.osc.port);
  keep("osc.reply_port", fresh.osc.reply_port, config_.osc.reply_port);
  keep("scheduler.realtime_priority", fresh.scheduler.realtime_priority, config_.scheduler.realtime_priority);
  keep("scheduler.late_tolerance_ms", fresh.scheduler.late_tolerance_ms, config_.scheduler.late_tolerance_ms);
  keep("scheduler.output_lead_ms", fresh.scheduler.output_lead_ms, config_.scheduler.output_lead_ms);
  keep("scheduler.queue_capacity", fresh.scheduler.queue_capacity, config_.scheduler.queue_capacity);

  const auto changed = [&applied](const char* key, const auto& fresh_value, const auto& running_value) {
    if (fresh_value != running_value) applied.emplace_back(key);
  };
  changed("daemon.log_level", fresh.daemon.log_level, config_.daemon.log_level);
  changed("daemon.styles_dir", fresh.daemon.styles_dir, config_.daemon.styles_dir);
  changed("midi.tempo_bpm", fresh.midi.tempo_bpm, config_.midi.tempo_bpm);
  changed("osc.notify", fresh.osc.notify, config_.osc.notify);
  changed("scheduler.lookahead_beats", fresh.scheduler.lookahead_beats, config_.scheduler.lookahead_beats);
  changed("scheduler.ready_margin_ms", fresh.scheduler.ready_margin_ms, config_.scheduler.ready_margin_ms);
  changed("scheduler.chunk_bars", fresh.scheduler.chunk_bars, config_.scheduler.chunk_bars);
  changed("scheduler.grid_division", fresh.scheduler.grid_division, config_.scheduler.grid_division);
  log_.set_threshold(fresh.daemon.log_level);
  if (fresh.midi.tempo_bpm != config_.midi.tempo_bpm) set_tempo(fresh.midi.tempo_bpm);
  set_notify_targets(fresh.osc.notify);
  config_ = fresh;  // its sessions become those running in reload_sessions
  reload_sessions(fresh, applied, restart);

  const auto join = [](const std::vector<std::string>& keys) {
    std::string text;
    for (const std::string& key : keys) text += (text.empty() ? "" : ", ") + key;
    return text;
  };
  log_.notice("SIGHUP: reloaded " + config_path_.string() + ": " +
              (applied.empty() ? std::string("nothing to change") : "applied " + join(applied)));
  if (!restart.empty()) {
    log_.warning("SIGHUP: " + join(restart) +
                 " changed but take effect only on a restart; running with the previous values");
  }
}

void DaemonApp::reload_sessions(const Config& fresh, std::vector<std::string>& applied,
                                std::vector<std::string>& restart) {
  const auto port_open = [](const auto& ports, const std::string& key) {
    return std::any_of(ports.begin(), ports.end(), [&](const auto& port) { return port.key == key; });
  };
  std::vector<SessionSettings> running;
  for (std::size_t i = 0; i < fresh.sessions.size(); ++i) {
    SessionSettings s = fresh.sessions[i];
    const std::string prefix = "session." + std::to_string(i) + ".";
    // A port opened at startup can be switched to; a new one needs a restart.
    const auto existing = std::find_if(sessions_.begin(), sessions_.end(), [&](const auto& entry) {
      return entry.second.settings.name == s.name;
    });
    const SessionSettings* before = existing == sessions_.end() ? nullptr : &existing->second.settings;
    if (!port_open(inputs_, s.input)) {
      restart.push_back(prefix + "input");
      if (before == nullptr) continue;
      s.input = before->input;
    }
    if (!port_open(outputs_, s.output)) {
      restart.push_back(prefix + "output");
      if (before == nullptr) continue;
      s.output = before->output;
    }
    running.push_back(s);
    if (before == nullptr) {
      try {
        add_session(s).from_config = true;
        applied.push_back(prefix + "name (new session " + s.name + ")");
      } catch (const std::exception& error) {
        log_.error("SIGHUP: session " + s.name + " not added: " + error.what());
      }
      continue;
    }
    SessionSlot& slot = existing->second;
    const SessionSettings old = slot.settings;
    const auto changed = [&](const char* key, const auto& fresh_value, const auto& running_value) {
      const bool differs = fresh_value != running_value;
      if (differs) applied.push_back(prefix + key);
      return differs;
    };
    changed("input", s.input, old.input);
    changed("input_channel", s.input_channel, old.input_channel);
    changed("output", s.output, old.output);
    changed("output_channel", s.output_channel, old.output_channel);
    changed("phrase_end", s.phrase_end, old.phrase_end);
    changed("learn_rate", s.learn_rate, old.learn_rate);
    const bool state_cc = changed("state_cc", s.state_cc, old.state_cc);
    // Controls and style are also set over OSC: only what the file changed
    // overrides the live values.
    AnswerControls& controls = slot.session->edit_style().controls();
    if (changed("temperature", s.temperature, old.temperature))
      controls.temperature = static_cast<float>(s.temperature);
    if (changed("creativity", s.creativity, old.creativity))
      controls.creativity = static_cast<float>(s.creativity);
    if (changed("density", s.density, old.density)) controls.density = static_cast<float>(s.density);
    if (changed("bars", s.bars, old.bars)) controls.bars = s.bars;
    if (changed("style", s.style, old.style)) {
      try {
        slot.session->load_style(s.style, config_.daemon.styles_dir);
      } catch (const std::exception& error) {
        log_.warning("SIGHUP: session " + s.name + ": style '" + s.style + "' not loaded: " + error.what());
      }
    }
    slot.input = input_index(s.input);
    slot.session->reconfigure(s, session_timing(config_.scheduler), output_index(s.output));
    slot.settings = s;
    slot.from_config = true;
    if (state_cc) send_state_cc(slot);
  }
  // Sessions the file no longer has; those made over OSC stay.
  std::vector<std::string> dropped;
  for (auto& [id, slot] : sessions_) {
    const bool listed = std::any_of(running.begin(), running.end(),
                                    [&](const SessionSettings& s) { return s.name == slot.settings.name; });
    if (slot.from_config && !listed) dropped.push_back(slot.settings.name);
  }
  for (const std::string& name : dropped) {
    try {
      free_session(session_named(name));
      applied.push_back("session " + name + " removed");
    } catch (const StyleError& error) {
      log_.error("SIGHUP: session " + name + ": " + error.what());
    }
  }
  config_.sessions = std::move(running);
}

void DaemonApp::shutdown(const std::string& reason) {
  if (stopping_) return;
  stopping_ = true;
  sd_notify(0, "STOPPING=1");
  log_.notice("stopping (" + reason + "): releasing every note");
  if (clock_driver_) clock_driver_->halt();
  for (auto& [id, slot] : sessions_) slot.session->stop_answer();
  scheduler_->stop();  // note-offs for what sounds, then CC64/120/123 on every channel
  for (Output& out : outputs_)
    if (out.jack && !out.jack->wait_until_sent(std::chrono::milliseconds(1000)))
      log_.warning("MIDI output '" + out.key + "': panic may not have been sent in full");
  save_styles();
  const SchedulerStats stats = scheduler_->stats();
  log_.notice("stopped: " + std::to_string(stats.delivered) + " events sent, " + std::to_string(stats.late) +
              " late, " + std::to_string(stats.released) + " released at stop");
  tick_timer_.cancel();
  save_timer_.cancel();
  reconnect_timer_.cancel();
  watchdog_timer_.cancel();
  signals_.cancel();
  io_.stop();
}

}  // namespace tatumflow::daemon
