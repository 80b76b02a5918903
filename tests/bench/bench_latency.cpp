// SPDX-License-Identifier: GPL-3.0-or-later
// bench_latency (run through scripts/bench-latency): tatumflowd's answer
// timing as a player sees it. A private JACK dummy server (48 kHz, 64-frame
// periods), the real daemon trading fours at each tempo, and a JACK client
// that plays 4-bar calls on the daemon's grid (read from the MIDI clock it
// sends) and stamps what comes back with the frame it arrives on. The next
// call starts on the downbeat where the answer ends, as in a real trade. Per
// answer:
//  * phrase end to first chunk ready: from the session's "thinking" feedback
//    (the phrase end: generation starts, one look-ahead beat before the call's
//    last bar ends) to the first /tf/status poll whose inference time shows
//    the first chunk; the daemon has no per-answer timing of its own to ask;
//  * answer start error: the first answer note against the downbeat (echo),
//    or against its 1/12-beat grid point (model: the daemon snaps every onset
//    there, scheduler.grid_division = 12);
//  * output error: every answer note-on (same references) and the answer's
//    closing sustain-off (exactly on the downbeat after its last bar);
//  * late: the daemon dropped notes as late, moved the answer's start (the
//    closing sustain-off is not on its bar), or, with the echo engine, a note
//    of the echo is missing or off its beat.
// Everything here runs on the main thread (the JACK clients have their own).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "../integration/daemon/daemon_process.hpp"
#include "../support/bundled_model.hpp"
#include "tatumflow/engine/bench_stats.hpp"

namespace tatumflow::bench {
namespace {

using nlohmann::json;
using test::DaemonProcess;
using test::JackTestServer;
using test::OscClient;
using test::PlayerRig;

constexpr int kBeatsPerBar = 4;
constexpr int kCallBars = 4;
constexpr int kAnswerBars = 4;
constexpr int kCallNotes = 15;  // test::play_call: one note on each of the call's first 15 beats
constexpr int kGridDivision = 12;
constexpr int kReadyMarginMs = 5;
constexpr double kLookaheadBeats = 1.0;
constexpr std::uint8_t kMidiClockTick = 0xF8;
constexpr std::uint8_t kMidiContinue = 0xFB;
constexpr std::uint8_t kMidiSongPosition = 0xF2;
constexpr auto kPollPeriod = std::chrono::milliseconds(1);
const std::string kSession = "bench";
const std::filesystem::path kBundledModel = testing::bundled_model_path();
// The bundled styles: the session answers in the shipped config's "tatum".
const std::filesystem::path kStylesDir = testing::bundled_styles_dir();

struct Options {
  bool json = false;
  int answers = 10;
  std::vector<double> tempos_bpm{120.0, 180.0, 240.0};
  std::string engine = "both";
  std::filesystem::path model = kBundledModel;
  std::string note;  // the conditions of the run, for the record
};

struct Status {
  float inference_ms = 0.0f;
  std::int64_t late_output_events = 0;
  std::int64_t dropped_late_notes = 0;
  bool realtime = false;
};

struct AnswerResult {
  std::optional<double> first_chunk_ms;
  std::optional<double> first_chunk_slack_ms;  // downbeat minus first chunk ready
  std::optional<double> start_error_us;
  std::optional<int> first_note_grid_step;  // 0: on the downbeat
  std::vector<double> output_errors_us;
  int notes = 0;
  std::uint64_t xruns = 0;
  std::int64_t dropped_late_notes = 0;
  std::int64_t late_output_events = 0;
  std::string late;  // why it was late; empty when on time
};

struct CaseResult {
  std::string engine;
  double tempo_bpm = 0.0;
  std::vector<AnswerResult> answers;
  std::vector<double> clock_errors_us;
  bool daemon_realtime = false;
  double daemon_cpu_percent = 0.0;
  std::uint64_t player_unmapped_cycles = 0;  // JACK periods the player client timed without a time map
};

std::int64_t time_at(double time_us) { return std::llround(time_us); }

void sleep_until_us(std::int64_t time_us) {
  const std::int64_t now_us = steady_now_us();
  if (time_us > now_us) std::this_thread::sleep_for(std::chrono::microseconds(time_us - now_us));
}

// Drops the replies the client kept while waiting for others (/tf/done, states).
void forget_kept(OscClient& osc) {
  while (osc.wait_matching([](const OscMessageIn&) { return true; }, std::chrono::milliseconds(0))) {
  }
}

Status query_status(OscClient& osc, std::uint16_t port) {
  osc.send(port, OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> reply = osc.wait_for("/tf/status.reply");
  if (!reply) throw std::runtime_error("tatumflowd did not answer /tf/status within 3 s");
  forget_kept(osc);
  // sessions, tempo, clock source, queue depth, inference ms, late output
  // events, dropped late notes, real-time priority, ... (osc_commands.cpp)
  return {reply->arg_float(4), reply->arg_int(5), reply->arg_int(6), reply->arg_bool(7)};
}

struct FirstChunk {
  std::optional<std::int64_t> phrase_end_us;
  std::optional<std::int64_t> ready_us;
};

// The session's "thinking" feedback, then /tf/status polls until the inference
// time changes: the answer's first chunk has reached the session. Ready is
// taken halfway between the last unchanged reply and the first changed one.
FirstChunk watch_first_chunk(OscClient& osc, std::uint16_t port, float inference_ms_before,
                             std::int64_t give_up_us) {
  FirstChunk seen;
  const auto remaining = [&] {
    return std::chrono::milliseconds(std::max<std::int64_t>(0, (give_up_us - steady_now_us()) / 1000));
  };
  const std::string state_path = "/tf/" + kSession + "/state";
  const std::optional<OscMessageIn> thinking = osc.wait_matching(
      [&](const OscMessageIn& m) {
        return m.path() == state_path && m.size() == 1 && m.arg_string(0) == "thinking";
      },
      remaining());
  if (!thinking) return seen;
  seen.phrase_end_us = steady_now_us();
  std::int64_t previous_reply_us = *seen.phrase_end_us;
  while (steady_now_us() < give_up_us) {
    osc.send(port, OscMessageOut("/tf/status"));
    const std::optional<OscMessageIn> reply =
        osc.wait_for("/tf/status.reply", std::chrono::milliseconds(100));
    const std::int64_t reply_us = steady_now_us();
    forget_kept(osc);
    if (reply && reply->arg_float(4) != inference_ms_before) {
      seen.ready_us = (previous_reply_us + reply_us) / 2;
      break;
    }
    previous_reply_us = reply_us;
    std::this_thread::sleep_for(kPollPeriod);
  }
  return seen;
}

// The daemon's first downbeat after it starts its MIDI clock: Continue at the
// song position it sent just before, in sixteenths (which need not be a bar
// line). Throws std::runtime_error when either is missing.
std::int64_t first_downbeat_us(PlayerRig& rig, double beat_us) {
  const std::optional<std::int64_t> continue_us =
      rig.wait_for_status(kMidiContinue, std::chrono::milliseconds(5000));
  if (!continue_us) throw std::runtime_error("no MIDI clock Continue from tatumflowd within 5 s");
  std::optional<int> sixteenths;
  for (const MidiEvent& e : rig.events()) {
    if (e.status() == kMidiSongPosition && e.time_us <= *continue_us)
      sixteenths = e.bytes[1] | (e.bytes[2] << 7);
  }
  if (!sixteenths) throw std::runtime_error("tatumflowd sent MIDI clock Continue without a song position");
  constexpr int kSixteenthsPerBar = 4 * kBeatsPerBar;
  const int to_bar = (kSixteenthsPerBar - *sixteenths % kSixteenthsPerBar) % kSixteenthsPerBar;
  return *continue_us + time_at(to_bar * beat_us / 4);
}

bool is_closing_pedal(const MidiEvent& e) {
  return (e.status() & 0xF0) == 0xB0 && e.bytes[1] == 64 && e.bytes[2] == 0;
}

// The answer's events in `events` against their expected times; fills the
// timing and the lateness a client can see.
void analyse_answer(const std::vector<MidiEvent>& events, bool echo, std::int64_t answer_us, double beat_us,
                    AnswerResult& out) {
  const double answer_end_us = static_cast<double>(answer_us) + kAnswerBars * kBeatsPerBar * beat_us;
  const double grid_step_us = beat_us / kGridDivision;
  std::vector<bool> echoed(kCallNotes, false);
  std::optional<std::int64_t> closing_us;
  std::string wrong;
  for (const MidiEvent& e : events) {
    if (is_closing_pedal(e)) closing_us = e.time_us;  // the last one closes the answer
    if (!test::is_note_on(e)) continue;
    const double offset_us = static_cast<double>(e.time_us - answer_us);
    double error_us = 0.0;
    if (echo) {
      const auto beat = static_cast<int>(std::lround(offset_us / beat_us));
      if (beat < 0 || beat >= kCallNotes || echoed[static_cast<std::size_t>(beat)]) {
        wrong = "echo note " + std::to_string(out.notes) + " on no beat of the call";
        continue;
      }
      echoed[static_cast<std::size_t>(beat)] = true;
      error_us = offset_us - std::round(beat * beat_us);
    } else {
      const auto step = static_cast<int>(std::lround(offset_us / grid_step_us));
      if (step < 0 || static_cast<double>(e.time_us) >= answer_end_us) {
        wrong = "a note outside the answer's bars";
        continue;
      }
      error_us = offset_us - std::round(step * grid_step_us);
      if (out.notes == 0) out.first_note_grid_step = step;
    }
    if (out.notes == 0) out.start_error_us = error_us;
    out.output_errors_us.push_back(error_us);
    ++out.notes;
  }
  if (echo && wrong.empty() && out.notes != kCallNotes)
    wrong =
        "echo has " + std::to_string(out.notes) + " of the call's " + std::to_string(kCallNotes) + " notes";
  if (closing_us) {
    const double error_us = static_cast<double>(*closing_us) - std::round(answer_end_us);
    if (std::abs(error_us) < beat_us / 2)
      out.output_errors_us.push_back(error_us);
    else
      out.late = "start moved: the closing sustain-off came " + std::to_string(std::lround(error_us / 1000)) +
                 " ms from the answer's planned end";
  } else {
    out.late = "no closing sustain-off (start moved, or no chunk played)";
  }
  if (out.late.empty() && out.dropped_late_notes > 0)
    out.late = std::to_string(out.dropped_late_notes) + " notes dropped as late";
  if (out.late.empty()) out.late = wrong;
}

std::vector<std::string> daemon_overrides(const PlayerRig& rig, const std::string& engine, double tempo_bpm,
                                          const std::filesystem::path& model) {
  std::vector<std::string> o = rig.session_overrides();
  for (const std::string& s :
       {"session.0.name=" + kSession, std::string("midi.send_clock=true"),
        "midi.tempo_bpm=" + std::to_string(tempo_bpm), "midi.beats_per_bar=" + std::to_string(kBeatsPerBar),
        "session.0.phrase_end.bars=" + std::to_string(kCallBars),
        std::string("session.0.phrase_end.silence_ms=0"), "session.0.bars=" + std::to_string(kAnswerBars),
        "scheduler.grid_division=" + std::to_string(kGridDivision),
        "scheduler.ready_margin_ms=" + std::to_string(kReadyMarginMs),
        "scheduler.lookahead_beats=" + std::to_string(kLookaheadBeats),
        "daemon.styles_dir=" + kStylesDir.string(), std::string("daemon.log_level=warning")})
    o.push_back(s);
  if (engine == "model") {
    o.emplace_back("daemon.engine=model");
    o.push_back("daemon.model=" + model.string());
  }
  return o;
}

double children_cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

CaseResult run_case(const Options& options, const std::string& engine, double tempo_bpm,
                    const std::string& server_name) {
  CaseResult result;
  result.engine = engine;
  result.tempo_bpm = tempo_bpm;
  const bool echo = engine == "echo";
  const double beat_us = 60e6 / tempo_bpm;
  const double bar_us = kBeatsPerBar * beat_us;
  const std::filesystem::path state =
      std::filesystem::temp_directory_path() /
      (server_name + "_bench_" + engine + "_" + std::to_string(std::lround(tempo_bpm)));
  PlayerRig rig;
  OscClient osc;
  const double cpu_before_s = children_cpu_s();
  const std::int64_t started_us = steady_now_us();
  DaemonProcess daemon(state, osc.port(), daemon_overrides(rig, engine, tempo_bpm, options.model));
  if (!daemon.started()) throw std::runtime_error("could not start " + test::kDaemonPath.string());
  if (!daemon.wait_ready(osc, std::chrono::seconds(120)))
    throw std::runtime_error("tatumflowd (" + engine + ") did not answer /tf/status; its log is above");
  osc.send(daemon.osc_port(), OscMessageOut("/tf/notify"));
  const std::int64_t first_bar_us = first_downbeat_us(rig, beat_us);
  Status status = query_status(osc, daemon.osc_port());

  const auto downbeat_after = [&](std::int64_t time_us) {
    const double bars = std::ceil(static_cast<double>(time_us - first_bar_us) / bar_us);
    return first_bar_us + time_at(bars * bar_us);
  };
  std::int64_t call_us = downbeat_after(steady_now_us() + 500'000);
  test::play_call(rig, call_us, time_at(beat_us));
  std::size_t seen = rig.events().size();
  std::uint64_t xruns_before = rig.client().stats().xruns;
  for (int rep = 0; rep < options.answers; ++rep) {
    const std::int64_t answer_us = call_us + time_at(kCallBars * bar_us);
    const std::int64_t answer_end_us = answer_us + time_at(kAnswerBars * bar_us);
    AnswerResult answer;
    const FirstChunk first =
        watch_first_chunk(osc, daemon.osc_port(), status.inference_ms, answer_us + time_at(bar_us));
    if (first.phrase_end_us && first.ready_us) {
      answer.first_chunk_ms = static_cast<double>(*first.ready_us - *first.phrase_end_us) / 1000.0;
      answer.first_chunk_slack_ms = static_cast<double>(answer_us - *first.ready_us) / 1000.0;
    }
    // The next call starts where this answer ends.
    if (rep + 1 < options.answers) test::play_call(rig, answer_end_us, time_at(beat_us));
    sleep_until_us(answer_end_us + time_at(bar_us) + 150'000);
    rig.pump();
    std::vector<MidiEvent> window;
    for (std::size_t i = seen; i < rig.events().size(); ++i) {
      const MidiEvent& e = rig.events()[i];
      if (!e.is_realtime() && e.time_us >= answer_us - time_at(bar_us)) window.push_back(e);
    }
    seen = rig.events().size();
    const Status after = query_status(osc, daemon.osc_port());
    answer.dropped_late_notes = after.dropped_late_notes - status.dropped_late_notes;
    answer.late_output_events = after.late_output_events - status.late_output_events;
    const std::uint64_t xruns_now = rig.client().stats().xruns;
    answer.xruns = xruns_now - xruns_before;
    xruns_before = xruns_now;
    analyse_answer(window, echo, answer_us, beat_us, answer);
    if (answer.late.empty() && !answer.first_chunk_ms && !echo)
      answer.late = "the first chunk was not seen by the end of the answer's first bar";
    std::fprintf(stderr, "bench-latency: %s %.0f bpm answer %d/%d: first chunk %s, start error %s%s%s\n",
                 engine.c_str(), tempo_bpm, rep + 1, options.answers,
                 answer.first_chunk_ms ? (std::to_string(std::lround(*answer.first_chunk_ms)) + " ms").c_str()
                                       : "unseen",
                 answer.start_error_us ? (std::to_string(std::lround(*answer.start_error_us)) + " us").c_str()
                                       : "none",
                 answer.late.empty() ? "" : ", LATE: ", answer.late.c_str());
    result.answers.push_back(std::move(answer));
    status = after;
    call_us = answer_end_us;
  }
  result.daemon_realtime = status.realtime;
  result.player_unmapped_cycles = rig.client().stats().unmapped_cycles;

  const double tick_us = beat_us / 24.0;
  for (const MidiEvent& e : rig.events()) {
    if (e.status() != kMidiClockTick || e.time_us < first_bar_us) continue;
    const double offset_us = static_cast<double>(e.time_us - first_bar_us);
    result.clock_errors_us.push_back(offset_us - std::round(std::round(offset_us / tick_us) * tick_us));
  }
  daemon.signal(SIGTERM);
  if (daemon.wait_exit(std::chrono::seconds(20)) != 0)
    throw std::runtime_error("tatumflowd (" + engine + ") did not exit cleanly on SIGTERM");
  const double wall_s = static_cast<double>(steady_now_us() - started_us) * 1e-6;
  result.daemon_cpu_percent = 100.0 * (children_cpu_s() - cpu_before_s) / wall_s;
  std::filesystem::remove_all(state);
  return result;
}

// To `decimals` places, so the JSON shows 248.89 rather than 248.89000000000001.
double rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

json distribution(const std::vector<double>& values, int decimals) {
  if (values.empty()) return {{"n", 0}};
  const auto at = [&](double percent) { return rounded(percentile(values, percent), decimals); };
  return {{"n", values.size()}, {"p50", at(50)}, {"p95", at(95)}, {"p99", at(99)}, {"max", at(100)}};
}

template <typename Pick>
json over_answers(const std::vector<const AnswerResult*>& answers, Pick pick, int decimals) {
  std::vector<double> all;
  std::vector<double> clean;
  for (const AnswerResult* a : answers) {
    for (const double v : pick(*a)) {
      all.push_back(v);
      if (a->xruns == 0) clean.push_back(v);
    }
  }
  return {{"all", distribution(all, decimals)}, {"no_xrun", distribution(clean, decimals)}};
}

std::vector<double> optional_value(const std::optional<double>& v) {
  return v ? std::vector<double>{*v} : std::vector<double>{};
}
std::vector<double> absolute(std::vector<double> v) {
  for (double& x : v) x = std::abs(x);
  return v;
}

// The figures over a set of answers (one tempo, or all).
json summary(const std::vector<const AnswerResult*>& answers) {
  int late = 0;
  int with_xruns = 0;
  int unseen = 0;
  std::uint64_t xruns = 0;
  std::int64_t dropped = 0;
  std::int64_t late_events = 0;
  for (const AnswerResult* a : answers) {
    late += a->late.empty() ? 0 : 1;
    with_xruns += a->xruns > 0 ? 1 : 0;
    unseen += a->first_chunk_ms ? 0 : 1;
    xruns += a->xruns;
    dropped += a->dropped_late_notes;
    late_events += a->late_output_events;
  }
  return {
      {"answers", answers.size()},
      {"late_answers", late},
      {"xruns", xruns},
      {"answers_with_xruns", with_xruns},
      {"dropped_late_notes", dropped},
      {"late_output_events", late_events},
      {"first_chunk_unseen", unseen},
      {"first_chunk_ms",
       over_answers(
           answers, [](const AnswerResult& a) { return optional_value(a.first_chunk_ms); }, 2)},
      {"first_chunk_slack_ms",
       over_answers(
           answers, [](const AnswerResult& a) { return optional_value(a.first_chunk_slack_ms); }, 2)},
      {"start_error_us",
       over_answers(
           answers, [](const AnswerResult& a) { return absolute(optional_value(a.start_error_us)); }, 1)},
      {"output_error_us",
       over_answers(
           answers, [](const AnswerResult& a) { return absolute(a.output_errors_us); }, 1)},
  };
}

json per_answer(const AnswerResult& a) {
  const auto number = [](const std::optional<double>& v, int decimals) {
    return v ? json(rounded(*v, decimals)) : json();
  };
  json worst = json();
  if (!a.output_errors_us.empty()) {
    worst = rounded(std::abs(*std::max_element(a.output_errors_us.begin(), a.output_errors_us.end(),
                                               [](double x, double y) { return std::abs(x) < std::abs(y); })),
                    1);
  }
  json j = {{"first_chunk_ms", number(a.first_chunk_ms, 2)},
            {"first_chunk_slack_ms", number(a.first_chunk_slack_ms, 2)},
            {"start_error_us", number(a.start_error_us, 1)},
            {"worst_output_error_us", worst},
            {"notes", a.notes},
            {"xruns", a.xruns},
            {"late", a.late.empty() ? json() : json(a.late)}};
  if (a.first_note_grid_step) j["first_note_grid_step"] = *a.first_note_grid_step;
  return j;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::vector<double> load_average() {
  std::ifstream in("/proc/loadavg");
  std::vector<double> load(3, 0.0);
  in >> load[0] >> load[1] >> load[2];
  return load;
}

bool model_built() {
#ifdef TATUMFLOW_HAVE_MODEL
  return true;
#else
  return false;
#endif
}

int run(const Options& options) {
  if (!std::filesystem::exists(test::kDaemonPath))
    throw std::runtime_error(test::kDaemonPath.string() +
                             " is not built (cmake --build <dir> --target tatumflowd)");
  if (!test::have_program("/usr/bin/jackd") || !test::have_program("/usr/bin/jack_wait"))
    throw std::runtime_error(
        "jackd and jack_wait are needed (Debian package jackd2; scripts/setup installs it)");
  std::vector<std::string> engines;
  json skipped = json::object();
  if (options.engine != "model") engines.emplace_back("echo");
  if (options.engine != "echo") {
    std::string why;
    if (!model_built())
      why = "this build has no model (TATUMFLOW_BUILD_MODEL=OFF)";
    else if (!std::filesystem::exists(options.model))
      why = options.model.string() + " does not exist";
    if (why.empty())
      engines.emplace_back("model");
    else if (options.engine == "model")
      throw std::runtime_error("--engine model: " + why);
    else
      skipped["model"] = why;
  }

  const std::vector<double> load_start = load_average();
  JackTestServer server;
  if (!server.ready()) throw std::runtime_error("jackd -n " + server.name() + " did not come up");
  std::vector<CaseResult> cases;
  for (const std::string& engine : engines)
    for (const double tempo_bpm : options.tempos_bpm)
      cases.push_back(run_case(options, engine, tempo_bpm, server.name()));

  json report;
  report["machine"] = {{"cores", std::thread::hardware_concurrency()},
                       {"cpu", cpu_model()},
                       {"load_average_start", load_start},
                       {"load_average_end", load_average()}};
  if (!options.note.empty()) report["machine"]["note"] = options.note;
  const double period_us = 1e6 * JackTestServer::kPeriodFrames / JackTestServer::kSampleRateHz;
  report["jack"] = {{"driver", "dummy"},
                    {"sample_rate_hz", JackTestServer::kSampleRateHz},
                    {"period_frames", JackTestServer::kPeriodFrames},
                    {"period_us", rounded(period_us, 1)},
                    {"server_realtime", server.realtime()}};
  report["tempos_bpm"] = options.tempos_bpm;
  report["answers_per_tempo"] = options.answers;
  report["trading"] = {{"call_bars", kCallBars},
                       {"answer_bars", kAnswerBars},
                       {"beats_per_bar", kBeatsPerBar},
                       {"lookahead_beats", kLookaheadBeats},
                       {"ready_margin_ms", kReadyMarginMs},
                       {"grid_division", kGridDivision}};
  report["engines"] = json::object();
  for (const std::string& engine : engines) {
    json per_tempo = json::array();
    std::vector<const AnswerResult*> all;
    for (const CaseResult& c : cases) {
      if (c.engine != engine) continue;
      std::vector<const AnswerResult*> answers;
      json list = json::array();
      for (const AnswerResult& a : c.answers) {
        answers.push_back(&a);
        all.push_back(&a);
        list.push_back(per_answer(a));
      }
      json entry = summary(answers);
      entry["tempo_bpm"] = c.tempo_bpm;
      entry["daemon_realtime_scheduler"] = c.daemon_realtime;
      entry["daemon_cpu_percent"] = rounded(c.daemon_cpu_percent, 1);
      entry["player_unmapped_cycles"] = c.player_unmapped_cycles;
      entry["midi_clock_error_us"] = distribution(absolute(c.clock_errors_us), 1);
      entry["per_answer"] = std::move(list);
      per_tempo.push_back(std::move(entry));
    }
    json total = summary(all);
    // The goals; null where no answer qualifies (none without xruns).
    const auto within_1ms = [&](const char* set) {
      const json& d = total["output_error_us"][set];
      return d.contains("p99") ? json(d["p99"].get<double>() <= 1000.0) : json();
    };
    const json goals = {{"zero_late_answers", total["late_answers"].get<int>() == 0},
                        {"output_error_p99_le_1ms", within_1ms("all")},
                        {"output_error_p99_le_1ms_without_xruns", within_1ms("no_xrun")}};
    report["engines"][engine] = {
        {"goals", goals}, {"all_tempos", std::move(total)}, {"tempos", std::move(per_tempo)}};
  }
  if (!skipped.empty()) report["skipped"] = skipped;
  report["definitions"] = {
      {"first_chunk_ms",
       "phrase end (session feedback 'thinking': generation starts, lookahead before the call's "
       "last bar ends) to the first /tf/status poll showing the first chunk (1 ms polls, "
       "midpoint of the last unchanged and first changed reply); first_chunk_unseen counts answers "
       "whose chunk left the reported inference time unchanged (an echo chunk can take 0 us)"},
      {"first_chunk_slack_ms",
       "the answer's downbeat minus the first chunk ready time; below ready_margin_ms "
       "the daemon moves the answer a bar"},
      {"start_error_us",
       "|first answer note-on - its downbeat (echo) or 1/12-beat grid point (model)|, "
       "frame-stamped on arrival; downbeats from the daemon's MIDI clock (Continue at its song position)"},
      {"output_error_us",
       "|arrival - expected| over every answer note-on (same references) and the answer's "
       "closing sustain-off"},
      {"late_answers",
       "the daemon dropped notes as late, moved the answer's start, or (echo) an echo note is "
       "missing or off its beat"},
      {"no_xrun", "only answers during whose call and answer the JACK client saw no xrun"},
      {"daemon_cpu_percent", "tatumflowd's CPU time over its life (start to exit) / wall time"},
      {"percentiles", "linear interpolation between the closest ranks (numpy's default); max is p100"}};

  if (options.json) {
    std::cout << report.dump(2) << std::endl;
    return 0;
  }
  std::printf("%d cores, JACK dummy %d frames at %d Hz (%.0f us)\n",
              static_cast<int>(std::thread::hardware_concurrency()), JackTestServer::kPeriodFrames,
              JackTestServer::kSampleRateHz, period_us);
  for (const auto& [engine, figures] : report["engines"].items()) {
    for (const json& t : figures["tempos"]) {
      // One figure, or "-" where no answer gave one (e.g. none without xruns).
      const auto p = [&](const char* key, const char* set, const char* rank) {
        const json& d = t[key][set];
        if (!d.contains(rank)) return std::string("-");
        char text[32];
        std::snprintf(text, sizeof text, "%.1f", d[rank].get<double>());
        return std::string(text);
      };
      std::printf(
          "%-5s %3.0f bpm: %d answers, %d late, %d xruns | first chunk p50 %s p95 %s ms | start error p50 %s "
          "p99 %s us | output error p99 %s us (%s without xruns) | daemon CPU %.0f%%\n",
          engine.c_str(), t["tempo_bpm"].get<double>(), t["answers"].get<int>(), t["late_answers"].get<int>(),
          t["xruns"].get<int>(), p("first_chunk_ms", "all", "p50").c_str(),
          p("first_chunk_ms", "all", "p95").c_str(), p("start_error_us", "all", "p50").c_str(),
          p("start_error_us", "all", "p99").c_str(), p("output_error_us", "all", "p99").c_str(),
          p("output_error_us", "no_xrun", "p99").c_str(), t["daemon_cpu_percent"].get<double>());
    }
  }
  return 0;
}

}  // namespace
}  // namespace tatumflow::bench

int main(int argc, char** argv) {
  tatumflow::bench::Options options;
  CLI::App app{
      "bench_latency: tatumflowd's answer timing on a private JACK dummy server (48 kHz, 64-frame periods), "
      "trading fours at each tempo; run it through scripts/bench-latency"};
  app.add_flag("--json", options.json, "Print one JSON object");
  app.add_option("--answers", options.answers, "Answers per tempo")->check(CLI::Range(1, 1000));
  app.add_option("--tempos", options.tempos_bpm, "Tempos in bpm, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(20.0, 400.0));
  app.add_option("--engine", options.engine, "echo, model, or both (model skipped when not built)")
      ->check(CLI::IsMember({"echo", "model", "both"}));
  app.add_option("--model", options.model, "Model checkpoint for the model engine")->capture_default_str();
  app.add_option("--note", options.note, "Conditions of the run (other load, machine), recorded in the JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    return tatumflow::bench::run(options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench-latency: %s\n", error.what());
    return 1;
  }
}
