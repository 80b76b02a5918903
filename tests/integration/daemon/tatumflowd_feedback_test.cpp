// SPDX-License-Identifier: GPL-3.0-or-later
// The real tatumflowd (echo engine) on a JACK dummy server: a session's state
// as a CC on its output through a trade, and SIGHUP reloading the config file
// with the command-line overrides, applying what can change live, naming the
// keys that need a restart, and surviving a bad file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "daemon_process.hpp"

namespace tatumflow::test {
namespace {

constexpr std::int64_t kBeatUs = 500'000;  // 120 bpm
constexpr std::int64_t kBarUs = 4 * kBeatUs;
// A CC is sent on the event loop's next tick (2 ms) with the output's lead
// (10 ms). A loaded 2-core machine can stall the event loop far longer (172 ms
// seen); half a beat still tells the states apart, which are a beat or more apart.
constexpr std::int64_t kFeedbackSlackUs = kBeatUs / 2;

struct Cc {
  std::int64_t time_us;
  int value;
};

// The values of controller `number` on channel 1 among the rig's events from `from` on.
std::vector<Cc> controller(const PlayerRig& rig, int number, std::size_t from = 0) {
  std::vector<Cc> out;
  for (std::size_t i = from; i < rig.events().size(); ++i) {
    const MidiEvent& e = rig.events()[i];
    if (e.status() == 0xB0 && e.bytes[1] == number) out.push_back({e.time_us, e.bytes[2]});
  }
  return out;
}

std::vector<int> values(const std::vector<Cc>& ccs) {
  std::vector<int> out;
  for (const Cc& cc : ccs) out.push_back(cc.value);
  return out;
}

TEST(TatumflowdFeedback, StateCcFollowsATrade) {
  TATUMFLOW_REQUIRE_DAEMON();
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  PlayerRig rig;
  OscClient osc;
  std::vector<std::string> overrides = rig.session_overrides();
  for (const char* o : {"midi.send_clock=true", "session.0.phrase_end.bars=4",
                        "session.0.phrase_end.silence_ms=0", "session.0.bars=4", "session.0.state_cc=20"})
    overrides.emplace_back(o);
  DaemonProcess daemon(state, osc.port(), overrides);
  ASSERT_TRUE(daemon.wait_ready(osc));
  const std::optional<std::int64_t> grid_us = rig.wait_for_status(0xFB, std::chrono::milliseconds(3000));
  ASSERT_TRUE(grid_us);
  rig.pump();
  EXPECT_EQ(values(controller(rig, 20)), std::vector<int>{0}) << "idle once at startup";
  const std::size_t before = rig.events().size();

  const std::int64_t now_us = steady_now_us() + 300'000;
  const std::int64_t call_us = *grid_us + ((now_us - *grid_us + kBarUs - 1) / kBarUs) * kBarUs;
  const std::int64_t answer_us = call_us + 4 * kBarUs;
  const std::int64_t answer_end_us = answer_us + 4 * kBarUs;
  play_call(rig, call_us, kBeatUs);
  std::this_thread::sleep_for(std::chrono::microseconds(answer_end_us + 300'000 - steady_now_us()));
  rig.pump();
  const std::vector<Cc> ccs = controller(rig, 20, before);
  ASSERT_EQ(values(ccs), (std::vector<int>{32, 64, 96, 0})) << "listening, thinking, answering, idle";
  std::printf(
      "state CC after: call %lld us, phrase end (one beat early) %lld us, bar 5 %lld us, end %lld us\n",
      static_cast<long long>(ccs[0].time_us - call_us),
      static_cast<long long>(ccs[1].time_us - (answer_us - kBeatUs)),
      static_cast<long long>(ccs[2].time_us - answer_us),
      static_cast<long long>(ccs[3].time_us - answer_end_us));
  EXPECT_GE(ccs[0].time_us, call_us);
  EXPECT_LE(ccs[0].time_us, call_us + kFeedbackSlackUs);
  EXPECT_GE(ccs[1].time_us, answer_us - kBeatUs);  // the look-ahead ends the call a beat early
  EXPECT_LE(ccs[1].time_us, answer_us - kBeatUs + kFeedbackSlackUs);
  EXPECT_GE(ccs[2].time_us, answer_us);
  EXPECT_LE(ccs[2].time_us, answer_us + kFeedbackSlackUs);
  EXPECT_GE(ccs[3].time_us, answer_end_us);
  EXPECT_LE(ccs[3].time_us, answer_end_us + kFeedbackSlackUs);

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(), 0);
  std::filesystem::remove_all(state);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// tempo, the sessions, osc.notify; `extra_session` adds a second session on the rig's ports.
std::string config_text(double tempo_bpm, int beats_per_bar, std::uint16_t notify_port, bool extra_session,
                        const std::string& rig) {
  std::string text = "[daemon]\nlog_level = \"info\"\n[midi]\ntempo_bpm = " + std::to_string(tempo_bpm) +
                     "\nbeats_per_bar = " + std::to_string(beats_per_bar) + "\n";
  if (notify_port != 0) text += "[osc]\nnotify = [\"127.0.0.1:" + std::to_string(notify_port) + "\"]\n";
  text +=
      "[[session]]\nname = \"piano\"\ntemperature = 0.5\n[session.phrase_end]\nsilence_ms = 400\n"
      "min_call_ms = 0\n";
  if (extra_session)
    text += "[[session]]\nname = \"second\"\ninput = \"" + rig + ":out\"\noutput = \"" + rig + ":in\"\n";
  return text;
}

std::vector<std::string> session_list(OscClient& osc, const DaemonProcess& daemon) {
  osc.send(daemon.osc_port(), OscMessageOut("/tf/session/list"));
  const std::optional<OscMessageIn> list = osc.wait_for("/tf/session/list.reply");
  std::vector<std::string> names;
  if (list)
    for (std::size_t i = 0; i < list->size(); ++i) names.emplace_back(list->arg_string(i));
  return names;
}

float tempo_bpm(OscClient& osc, const DaemonProcess& daemon) {
  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> status = osc.wait_for("/tf/status.reply");
  return status ? status->arg_float(1) : -1.0f;
}

TEST(TatumflowdReload, SighupAppliesTheFileWithTheOverridesAndSurvivesABadOne) {
  TATUMFLOW_REQUIRE_DAEMON();
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / (server.name() + "_reload");
  std::filesystem::create_directories(dir);
  const std::filesystem::path config = dir / "tatumflowd.toml";
  const std::filesystem::path log = dir / "tatumflowd.log";
  PlayerRig rig;
  OscClient osc;
  const std::string rig_name = rig.client().client_name();
  write_file(config, config_text(120.0, 4, 0, false, rig_name));
  // The state CC comes from the command line only: a reload must keep it.
  std::vector<std::string> overrides = rig.session_overrides();
  overrides.emplace_back("session.0.state_cc=21");
  DaemonProcess daemon(dir / "state", osc.port(), overrides, config, log);
  ASSERT_TRUE(daemon.wait_ready(osc)) << read_text(log);
  EXPECT_FLOAT_EQ(tempo_bpm(osc, daemon), 120.0f);
  EXPECT_EQ(session_list(osc, daemon), std::vector<std::string>{"piano"});

  // A new tempo, a session added, feedback to us without /tf/notify, and a
  // meter change that needs a restart.
  write_file(config, config_text(90.0, 3, osc.port(), true, rig_name));
  daemon.signal(SIGHUP);
  ASSERT_TRUE(wait_for_text(log, "SIGHUP: reloaded")) << read_text(log);
  const std::string reloaded = read_text(log);
  for (const char* key : {"midi.tempo_bpm", "osc.notify", "session.1.name"})
    EXPECT_NE(reloaded.find(key), std::string::npos) << key << " not reported applied:\n" << reloaded;
  EXPECT_NE(reloaded.find("midi.beats_per_bar changed but take effect only on a restart"), std::string::npos)
      << reloaded;
  // The overrides were applied again: the rig's ports did not fall back to the file's "virtual".
  EXPECT_EQ(reloaded.find("session.0.input"), std::string::npos) << reloaded;
  EXPECT_FLOAT_EQ(tempo_bpm(osc, daemon), 90.0f);
  EXPECT_EQ(session_list(osc, daemon), (std::vector<std::string>{"piano", "second"}));

  rig.pump();
  const std::size_t before = rig.events().size();
  const std::int64_t start_us = steady_now_us() + 50'000;
  for (int i = 0; i < 3; ++i) {
    rig.play(midi3(start_us + i * 150'000, 0x90, 64, 90));
    rig.play(midi3(start_us + i * 150'000 + 100'000, 0x80, 64, 0));
  }
  const std::optional<OscMessageIn> listening = osc.wait_matching(
      [](const OscMessageIn& m) { return m.path() == "/tf/piano/state" && m.arg_string(0) == "listening"; });
  EXPECT_TRUE(listening) << "no state feedback to the osc.notify target";
  EXPECT_TRUE(osc.wait_for("/tf/second/state")) << "the added session does not run";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  rig.pump();
  const std::vector<Cc> ccs = controller(rig, 21, before);
  ASSERT_FALSE(ccs.empty()) << "no state CC 21 after the reload: the --set was lost";
  EXPECT_EQ(ccs.front().value, 32);

  // A bad file changes nothing and says exactly what is wrong.
  write_file(config, "[midi]\ntempo_bpm = 1000.0\n[[session]]\nname = \"piano\"\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(wait_for_text(log, "SIGHUP: config not reloaded")) << read_text(log);
  EXPECT_NE(
      read_text(log).find(config.string() + ":2:13: midi.tempo_bpm: must be between 20 and 400 (got 1000)"),
      std::string::npos)
      << read_text(log);
  EXPECT_TRUE(daemon.alive());
  EXPECT_FLOAT_EQ(tempo_bpm(osc, daemon), 90.0f);

  // A session the file no longer lists is freed.
  write_file(config, config_text(90.0, 3, osc.port(), false, rig_name));
  daemon.signal(SIGHUP);
  ASSERT_TRUE(wait_for_text(log, "session second removed")) << read_text(log);
  EXPECT_EQ(session_list(osc, daemon), std::vector<std::string>{"piano"});

  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tatumflow::test
