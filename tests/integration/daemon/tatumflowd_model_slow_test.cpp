// SPDX-License-Identifier: GPL-3.0-or-later
// The real tatumflowd answering with the bundled model (daemon.engine=model,
// models/tatumflow.tfc) in the bundled Art Tatum style, trading fours on
// a JACK dummy server: a player plays a 4-bar call at 120 bpm on the daemon's
// grid and the model's answer must start on bar 5's downbeat, stay inside
// its 4 bars, release every note and drop none as late; also after the model
// fails on its device (the injected failure) and the daemon falls back to a
// CPU copy. Skipped when the daemon was built without the model.
// As in the trading test, the inference worker keeps the 2-core machine busy
// and the non-realtime JACK dummy server misses cycles, which shifts JACK's
// frame-to-time map: reps with an xrun are held to the grid (half a beat)
// instead of one period.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "../../support/bundled_model.hpp"
#include "daemon_process.hpp"
#include "tatumflow/daemon/session.hpp"
#include "tatumflow/engine/style_file.hpp"

namespace tatumflow::test {
namespace {

constexpr std::int64_t kBeatUs = 500'000;  // 120 bpm
constexpr std::int64_t kBarUs = 4 * kBeatUs;
constexpr double kPeriodUs = 1e6 * JackTestServer::kPeriodFrames / JackTestServer::kSampleRateHz;
constexpr double kXrunToleranceUs = kBeatUs / 2.0;

const std::filesystem::path kModelPath = testing::bundled_model_path();
const std::filesystem::path kStylesDir = testing::bundled_styles_dir();

// Whether this tatumflowd has the model engine (`--version` lists the engines).
bool daemon_has_model() {
  std::FILE* pipe = popen((kDaemonPath.string() + " --version").c_str(), "r");
  if (pipe == nullptr) return false;
  char line[256] = {};
  const bool read = std::fgets(line, sizeof line, pipe) != nullptr;
  pclose(pipe);
  return read && std::strstr(line, "model") != nullptr;
}

#define TATUMFLOW_REQUIRE_MODEL_DAEMON()                                                  \
  TATUMFLOW_REQUIRE_DAEMON();                                                             \
  if (!daemon_has_model())                                                                \
    GTEST_SKIP() << "tatumflowd was built without the model (TATUMFLOW_BUILD_MODEL=OFF)"; \
  ASSERT_TRUE(std::filesystem::exists(kModelPath)) << kModelPath;                         \
  ASSERT_TRUE(std::filesystem::exists(kStylesDir / "tatum.style")) << "the bundled Art Tatum style"

// Session 0 on the rig, trading fours at 120 bpm with the model in `style`.
std::vector<std::string> model_overrides(const PlayerRig& rig, const std::string& style) {
  std::vector<std::string> overrides = rig.session_overrides();
  for (const std::string& o :
       {std::string("daemon.engine=model"), std::string("daemon.log_level=debug"),
        "daemon.model=" + kModelPath.string(), "daemon.styles_dir=" + kStylesDir.string(),
        "session.0.style=" + style, std::string("midi.send_clock=true"), std::string("midi.tempo_bpm=120"),
        std::string("session.0.phrase_end.bars=4"), std::string("session.0.phrase_end.silence_ms=0"),
        std::string("session.0.bars=4")})
    overrides.push_back(o);
  return overrides;
}

struct Trade {
  std::int64_t answer_end_us = 0;
  double start_error_us = 0.0;  // the first answer note against bar 5's downbeat
  std::uint64_t xruns = 0;
  int notes = 0;
};

// Plays a 4-bar call from the first downbeat of the daemon's grid (`grid_us`)
// at or after `earliest_us`, waits for the answer and checks it: on bar 5,
// inside its 4 bars, every note released.
Trade trade(PlayerRig& rig, std::int64_t grid_us, std::int64_t earliest_us, int rep,
            const std::filesystem::path& log) {
  const std::int64_t bars_ahead = (earliest_us - grid_us + kBarUs - 1) / kBarUs;
  const std::int64_t call_us = grid_us + bars_ahead * kBarUs;
  const std::int64_t answer_us = call_us + 4 * kBarUs;
  Trade out;
  out.answer_end_us = answer_us + 4 * kBarUs;
  const std::size_t seen = rig.events().size();
  const std::uint64_t xruns_before = rig.client().stats().xruns;
  play_call(rig, call_us, kBeatUs);
  std::this_thread::sleep_for(std::chrono::microseconds(out.answer_end_us + 300'000 - steady_now_us()));
  rig.pump();

  out.xruns = rig.client().stats().xruns - xruns_before;
  const double tolerance_us = out.xruns == 0 ? kPeriodUs : kXrunToleranceUs;
  std::optional<std::int64_t> first_on_us;
  std::map<int, int> sounding;  // pitch -> note-ons minus note-offs
  for (std::size_t i = seen; i < rig.events().size(); ++i) {
    const MidiEvent& e = rig.events()[i];
    if (!is_note_on(e) && !is_note_off(e)) continue;
    EXPECT_GE(static_cast<double>(e.time_us - answer_us), -tolerance_us)
        << "rep " << rep << ": a note event before bar 5 (JACK xruns during the rep: " << out.xruns << ")";
    EXPECT_LT(static_cast<double>(e.time_us - out.answer_end_us), tolerance_us)
        << "rep " << rep
        << ": a note event after the answer's last bar (JACK xruns during the rep: " << out.xruns << ")";
    if (is_note_on(e)) {
      if (!first_on_us) first_on_us = e.time_us;
      ++sounding[e.bytes[1]];
      ++out.notes;
    } else {
      --sounding[e.bytes[1]];
    }
  }
  EXPECT_TRUE(first_on_us) << "rep " << rep << ": no answer; the daemon's log:\n" << read_text(log);
  if (!first_on_us) return out;
  // The model's first note is put on the downbeat.
  out.start_error_us = static_cast<double>(*first_on_us - answer_us);
  EXPECT_LE(std::abs(out.start_error_us), tolerance_us)
      << "rep " << rep << ": first answer note " << out.start_error_us
      << " us from bar 5's downbeat (JACK xruns during the rep: " << out.xruns << ")";
  EXPECT_GE(out.notes, 4) << "rep " << rep << ": an answer of " << out.notes << " notes";
  for (const auto& [pitch, count] : sounding) EXPECT_EQ(count, 0) << "rep " << rep << ": pitch " << pitch;
  std::printf("rep %d: %d notes, first %.0f us from bar 5's downbeat, %llu JACK xruns\n", rep, out.notes,
              out.start_error_us, static_cast<unsigned long long>(out.xruns));
  return out;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

TEST(TatumflowdModel, AnswersFoursOnBarFiveInTheTatumStyle) {
  TATUMFLOW_REQUIRE_MODEL_DAEMON();
  TATUMFLOW_START_JACK(server);
  constexpr int kRepetitions = 3;
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  const std::filesystem::path log = std::filesystem::temp_directory_path() / (server.name() + "_model.log");
  PlayerRig rig;
  OscClient osc;
  DaemonProcess daemon(state, osc.port(), model_overrides(rig, "tatum"), kConfigPath, log);
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(daemon.wait_ready(osc, std::chrono::seconds(60)))
      << "tatumflowd did not answer /tf/status; its log:\n"
      << read_text(log);

  // The session runs in the bundled style, bit for bit.
  const style::StyleState tatum = style::load_style_state(kStylesDir / "tatum.style");
  osc.send(daemon.osc_port(), OscMessageOut("/tf/piano/style/latent"));
  const std::optional<OscMessageIn> latent = osc.wait_for("/tf/piano/style/latent.reply");
  ASSERT_TRUE(latent);
  ASSERT_EQ(latent->size(), 2 * model::kStyleDim);
  for (std::size_t i = 0; i < model::kStyleDim; ++i) {
    const float mean = latent->arg_float(i);
    ASSERT_EQ(std::memcmp(&mean, &tatum.current.mean[i], sizeof mean), 0) << "mean " << i;
  }

  const std::optional<std::int64_t> grid_us = rig.wait_for_status(0xFB, std::chrono::milliseconds(3000));
  ASSERT_TRUE(grid_us) << "no MIDI clock Continue from the daemon (its downbeat)";
  std::int64_t next_start_us = steady_now_us() + 500'000;
  double worst_start_error_us = 0.0;
  int strict_reps = 0;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    const Trade t = trade(rig, *grid_us, next_start_us, rep, log);
    if (t.xruns == 0) {
      ++strict_reps;
      worst_start_error_us = std::max(worst_start_error_us, std::abs(t.start_error_us));
    }
    RecordProperty("notes_rep_" + std::to_string(rep), t.notes);
    next_start_us = t.answer_end_us + 200'000;
  }

  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> status = osc.wait_for("/tf/status.reply");
  ASSERT_TRUE(status);
  RecordProperty("worst_start_error_us", static_cast<int>(worst_start_error_us));
  RecordProperty("reps_without_xruns", strict_reps);
  RecordProperty("inference_ms_per_chunk", static_cast<int>(status->arg_float(4)));
  RecordProperty("late_output_events", status->arg_int(5));
  std::printf(
      "model answers: worst start error %.0f us over %d reps without xruns, %.1f ms inference per chunk, "
      "late output events %d\n",
      worst_start_error_us, strict_reps, static_cast<double>(status->arg_float(4)), status->arg_int(5));
  EXPECT_EQ(status->arg_int(6), 0) << "answer notes dropped as late";
  EXPECT_EQ(status->arg_int(8), kRepetitions) << "answers";
  // The echo engine computes a chunk in microseconds; the model takes milliseconds.
  EXPECT_GT(status->arg_float(4), 1.0f) << "did the model answer?";
  EXPECT_EQ(status->arg_string(9), "cpu") << "compute device";
  EXPECT_EQ(status->arg_int(10), 0) << "no fallback without a failure";
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(std::chrono::seconds(20)), 0);
  EXPECT_EQ(read_text(log).find("generation failed"), std::string::npos) << read_text(log);
  EXPECT_NE(read_text(log).find("model warmed up"), std::string::npos) << read_text(log);
  std::filesystem::remove_all(state);
  std::filesystem::remove(log);
}

// Two sessions listen to the same player and answer on channels 1 and 2: one
// call starts both answers at once, on two inference threads whose decoding
// steps share forward passes (daemon.share_steps=on; auto shares on a GPU only). Both answers start on bar 5,
// stay inside their bars and release every note, and /tf/status reports more than one step per pass.
TEST(TatumflowdModel, TwoSessionsAnsweringOneCallShareForwardPasses) {
  TATUMFLOW_REQUIRE_MODEL_DAEMON();
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_pair");
  const std::filesystem::path log = std::filesystem::temp_directory_path() / (server.name() + "_pair.log");
  PlayerRig rig;
  OscClient osc;
  std::vector<std::string> overrides = model_overrides(rig, "tatum");
  const std::string rig_name = rig.client().client_name();
  for (const std::string& o :
       {std::string("daemon.inference_threads=2"), std::string("daemon.share_steps=on"),
        std::string("session.1.name=second"), "session.1.input=" + rig_name + ":out",
        "session.1.output=" + rig_name + ":in", std::string("session.1.output_channel=2"),
        std::string("session.1.style=tatum"), std::string("session.1.phrase_end.bars=4"),
        std::string("session.1.phrase_end.silence_ms=0"), std::string("session.1.bars=4")})
    overrides.push_back(o);
  DaemonProcess daemon(state, osc.port(), overrides, kConfigPath, log);
  ASSERT_TRUE(daemon.wait_ready(osc, std::chrono::seconds(60))) << read_text(log);

  const std::optional<std::int64_t> grid_us = rig.wait_for_status(0xFB, std::chrono::milliseconds(3000));
  ASSERT_TRUE(grid_us) << "no MIDI clock Continue from the daemon (its downbeat)";
  std::int64_t next_start_us = steady_now_us() + 500'000;
  constexpr int kPairs = 2;
  for (int rep = 0; rep < kPairs; ++rep) {
    const std::size_t seen = rig.events().size();
    next_start_us = trade(rig, *grid_us, next_start_us, rep, log).answer_end_us + 200'000;
    std::map<int, int> notes_by_channel;
    for (std::size_t i = seen; i < rig.events().size(); ++i)
      if (is_note_on(rig.events()[i])) ++notes_by_channel[rig.events()[i].bytes[0] & 0x0F];
    std::printf("rep %d: %d notes from session piano (channel 1), %d from second (channel 2)\n", rep,
                notes_by_channel[0], notes_by_channel[1]);
    EXPECT_GE(notes_by_channel[0], 4) << "rep " << rep << ": session piano (channel 1)";
    EXPECT_GE(notes_by_channel[1], 4) << "rep " << rep << ": session second (channel 2)";
  }

  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> status = osc.wait_for("/tf/status.reply");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->arg_int(0), 2) << "sessions";
  EXPECT_EQ(status->arg_int(6), 0) << "answer notes dropped as late";
  EXPECT_EQ(status->arg_int(8), 2 * kPairs) << "answers";
  EXPECT_GT(status->arg_float(11), 1.0f) << "decoding steps per forward pass";
  std::printf("%.2f decoding steps per forward pass\n", static_cast<double>(status->arg_float(11)));
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(std::chrono::seconds(20)), 0);
  EXPECT_EQ(read_text(log).find("generation failed"), std::string::npos) << read_text(log);
  std::filesystem::remove_all(state);
  std::filesystem::remove(log);
}

// The model fails on its device in the first answer (the test hook stands in
// for a GPU error): one log line, a CPU copy of the model, and the trade goes
// on, on the grid, with nothing late, the answer in progress included. The
// session learns its style from the calls, with the model before and after
// the failure, and saves what it learned at exit.
TEST(TatumflowdModel, KeepsAnsweringAndLearningOnTheCpuAfterTheDeviceFails) {
  TATUMFLOW_REQUIRE_MODEL_DAEMON();
  TATUMFLOW_START_JACK(server);
  constexpr int kRepetitions = 2;
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  const std::filesystem::path log =
      std::filesystem::temp_directory_path() / (server.name() + "_fallback.log");
  PlayerRig rig;
  OscClient osc;
  std::vector<std::string> overrides = model_overrides(rig, "learn");
  // An answer is 4 one-bar chunks: the third model chunk of the first answer fails.
  overrides.emplace_back("daemon.inject_device_failure_after_chunks=2");
  DaemonProcess daemon(state, osc.port(), overrides, kConfigPath, log);
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(daemon.wait_ready(osc, std::chrono::seconds(60)))
      << "tatumflowd did not answer /tf/status; its log:\n"
      << read_text(log);
  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> before = osc.wait_for("/tf/status.reply");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->arg_string(9), "cpu");
  EXPECT_EQ(before->arg_int(10), 0) << "fell back before any failure";

  const std::optional<std::int64_t> grid_us = rig.wait_for_status(0xFB, std::chrono::milliseconds(3000));
  ASSERT_TRUE(grid_us) << "no MIDI clock Continue from the daemon (its downbeat)";
  std::int64_t next_start_us = steady_now_us() + 500'000;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    const Trade t = trade(rig, *grid_us, next_start_us, rep, log);
    next_start_us = t.answer_end_us + 200'000;
  }

  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> status = osc.wait_for("/tf/status.reply");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->arg_int(6), 0) << "answer notes dropped as late";
  EXPECT_EQ(status->arg_int(8), kRepetitions) << "answers";
  EXPECT_EQ(status->arg_string(9), "cpu") << "compute device after the fallback";
  EXPECT_EQ(status->arg_int(10), 1) << "the fallback is not reported";
  osc.send(daemon.osc_port(), OscMessageOut("/tf/piano/style/latent"));
  const std::optional<OscMessageIn> latent = osc.wait_for("/tf/piano/style/latent.reply");
  ASSERT_TRUE(latent);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(std::chrono::seconds(20)), 0);

  const style::StyleState saved = style::load_style_state(daemon::style_state_path(state, "piano"));
  EXPECT_EQ(saved.mode, style::StyleMode::learn);
  EXPECT_EQ(saved.learned_calls, static_cast<std::uint32_t>(kRepetitions)) << "calls learned from";
  EXPECT_TRUE(style::bitwise_equal(saved.current, saved.learned));
  EXPECT_FALSE(style::bitwise_equal(saved.learned, style::StyleLatent{})) << "nothing learned";
  ASSERT_EQ(latent->size(), 2 * model::kStyleDim);
  for (std::size_t i = 0; i < model::kStyleDim; ++i) {
    const float mean = latent->arg_float(i);
    EXPECT_EQ(std::memcmp(&mean, &saved.current.mean[i], sizeof mean), 0) << "saved mean " << i;
  }
  const std::string text = read_text(log);
  EXPECT_EQ(count_of(text, "injected device failure after 2 chunks"), 1u) << text;
  EXPECT_EQ(count_of(text, "on the CPU and generating there from now on"), 1u) << text;
  EXPECT_EQ(text.find("generation failed"), std::string::npos) << text;
  std::filesystem::remove_all(state);
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace tatumflow::test
