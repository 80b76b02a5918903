// SPDX-License-Identifier: GPL-3.0-or-later
// The real tatumflowd over OSC and signals: every command answers /tf/done or
// /tf/fail to real clients (oscsend, python3-liblo), /tf/status.reply carries
// its figures, a malformed packet gets /tf/fail and the daemon keeps running;
// SIGTERM while answering releases every note and sends CC123 on every
// channel, and the session's style latent survives a restart bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "daemon_process.hpp"
#include "tatumflow/daemon/session.hpp"
#include "tatumflow/daemon/style.hpp"

namespace tatumflow::test {
namespace {

constexpr std::int64_t kBeatUs = 500'000;
constexpr std::int64_t kBarUs = 4 * kBeatUs;

bool have_python_liblo() { return std::system("/usr/bin/python3 -c 'import liblo' > /dev/null 2>&1") == 0; }

// The /tf/done or /tf/fail answering `command`; other messages are kept.
std::optional<OscMessageIn> answer_to(OscClient& osc, const std::string& command) {
  return osc.wait_matching([&](const OscMessageIn& m) {
    return (m.path() == "/tf/done" || m.path() == "/tf/fail") && m.size() >= 1 && m.arg_string(0) == command;
  });
}

int run(const std::string& command) { return std::system((command + " > /dev/null 2>&1").c_str()); }

TEST(TatumflowdOsc, EveryCommandAnswersDoneOrFail) {
  TATUMFLOW_REQUIRE_DAEMON();
  if (!have_program("/usr/bin/oscsend")) GTEST_SKIP() << "oscsend (liblo-tools) is not installed";
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  OscClient osc;
  DaemonProcess daemon(state, osc.port(), {});
  ASSERT_TRUE(daemon.wait_ready(osc));
  const std::string send = "/usr/bin/oscsend 127.0.0.1 " + std::to_string(daemon.osc_port()) + " ";

  // (address, oscsend types and arguments, expect done)
  const std::vector<std::tuple<std::string, std::string, bool>> commands{
      {"/tf/version", "", true},
      {"/tf/status", "", true},
      {"/tf/notify", "i 1", true},
      {"/tf/session/list", "", true},
      {"/tf/session/new", "s extra", true},
      {"/tf/session/new", "s extra", false},  // exists
      {"/tf/extra/temperature", "f 0.7", true},
      {"/tf/extra/temperature", "i 2", true},  // an int for a float
      {"/tf/extra/temperature", "f 9", false},
      {"/tf/piano/bars", "f 8", true},  // a float for an int (Pd)
      {"/tf/piano/creativity", "f 0.3", true},
      {"/tf/piano/density", "f 1.5", true},
      {"/tf/piano/style/save", "s a", true},
      {"/tf/piano/style/save", "s b", true},
      {"/tf/piano/style/recall", "s a", true},
      {"/tf/piano/style/recall", "s missing", false},
      {"/tf/piano/style/morph", "ssf a b 0.25", true},
      {"/tf/piano/style/pad", "ff 0.5 0.5", false},  // no corners yet
      {"/tf/piano/style/corners", "ssss a b a b", true},
      {"/tf/piano/style/pad", "ff 0.5 0.5", true},
      {"/tf/piano/style/freeze", "i 1", true},
      {"/tf/piano/style/learn", "", true},
      {"/tf/piano/style/load", "s /nonexistent.style", false},
      {"/tf/piano/style/latent", "", true},
      {"/tf/piano/style/delete", "s b", false},  // a pad corner
      {"/tf/piano/style/recall", "s b", true},
      {"/tf/piano/tempo", "f 130", true},
      {"/tf/tempo", "i 120", true},
      {"/tf/tempo", "f 1000", false},
      {"/tf/piano/trigger", "", false},  // nothing played
      {"/tf/piano/stop", "", true},
      {"/tf/panic", "", true},
      {"/tf/session/free", "s extra", true},
      {"/tf/extra/temperature", "f 0.7", false},  // freed
      {"/tf/no/such/thing", "", false},
      {"/tf/sync", "", true},
  };
  for (const auto& [address, args, done] : commands) {
    ASSERT_EQ(run(send + address + " " + args), 0) << address;
    const std::optional<OscMessageIn> answer = answer_to(osc, address);
    ASSERT_TRUE(answer) << address << " " << args << ": no /tf/done or /tf/fail";
    EXPECT_EQ(answer->path(), done ? "/tf/done" : "/tf/fail") << address << " " << args;
    if (answer->path() == "/tf/fail") {
      EXPECT_FALSE(answer->arg_string(1).empty()) << address;
    }
  }
  EXPECT_TRUE(osc.wait_for("/tf/synced"));
  const std::optional<OscMessageIn> latent = osc.wait_for("/tf/piano/style/latent.reply");
  ASSERT_TRUE(latent);
  EXPECT_EQ(latent->size(), 2 * model::kStyleDim);

  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> status = osc.wait_for("/tf/status.reply");
  ASSERT_TRUE(status);
  ASSERT_EQ(status->typetag(), "ifsifiiiisif");
  EXPECT_EQ(status->arg_int(0), 1);                                 // sessions
  EXPECT_FLOAT_EQ(status->arg_float(1), 120.0f);                    // tempo
  EXPECT_EQ(status->arg_string(2), "internal");                     // clock source
  EXPECT_EQ(status->arg_int(3), 0);                                 // queue depth
  EXPECT_GE(status->arg_float(4), 0.0f);                            // inference ms
  EXPECT_EQ(status->arg_int(5), 0);                                 // late events
  EXPECT_TRUE(status->arg_int(7) == 0 || status->arg_int(7) == 1);  // real-time granted
  EXPECT_EQ(status->arg_string(9), "none");  // compute device: the echo engine has none
  EXPECT_EQ(status->arg_int(10), 0);         // no CPU fallback
  EXPECT_EQ(status->arg_float(11), 0.0f);    // no decoding steps without a model

  // Malformed packets: /tf/fail, and the daemon keeps answering.
  osc.send_raw(daemon.osc_port(), {'g', 'a', 'r', 'b', 'a', 'g', 'e', 0});
  osc.send_raw(daemon.osc_port(), {'/', 't', 'f', 0, ',', 'i', 0, 0});  // an int without its bytes
  for (int i = 0; i < 2; ++i) {
    const std::optional<OscMessageIn> fail = osc.wait_for("/tf/fail");
    ASSERT_TRUE(fail) << "malformed packet " << i << " got no /tf/fail";
  }
  EXPECT_TRUE(daemon.alive());

  // python3-liblo: a timetagged bundle (NTP time, liblo.time()) runs at its
  // time, not before.
  if (have_python_liblo()) {
    const std::string script =
        "import liblo\n"
        "b=liblo.Bundle(liblo.time()+0.4, liblo.Message('/tf/tempo', 110.0))\n"
        "liblo.send(('127.0.0.1'," +
        std::to_string(daemon.osc_port()) + "), b)\n";
    const auto sent = std::chrono::steady_clock::now();
    ASSERT_EQ(run("/usr/bin/python3 -c \"" + script + "\""), 0);
    const std::optional<OscMessageIn> done = answer_to(osc, "/tf/tempo");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->path(), "/tf/done");
    EXPECT_GE(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(300));
  }

  ASSERT_EQ(run(send + "/tf/quit"), 0);
  EXPECT_EQ(daemon.wait_exit(), 0);
  std::filesystem::remove_all(state);
}

TEST(TatumflowdLifecycle, SigtermWhileAnsweringReleasesEverythingAndStyleSurvivesRestart) {
  TATUMFLOW_REQUIRE_DAEMON();
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  std::filesystem::create_directories(state);

  // A style with arbitrary bits, loaded from a .style file.
  daemon::StyleState style;
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  for (float& v : style.current.mean) v = normal(random);
  for (float& v : style.current.log_variance) v = normal(random);
  const std::filesystem::path style_file = state / "given.style";
  daemon::save_style_state(style_file, style);

  PlayerRig rig;
  OscClient osc;
  std::vector<std::string> overrides = rig.session_overrides();
  for (const std::string& o :
       {std::string("midi.send_clock=true"), std::string("session.0.phrase_end.bars=4"),
        std::string("session.0.phrase_end.silence_ms=0"), "session.0.style=" + style_file.string()})
    overrides.push_back(o);
  {
    DaemonProcess daemon(state, osc.port(), overrides);
    ASSERT_TRUE(daemon.wait_ready(osc));
    const std::optional<std::int64_t> grid_us = rig.wait_for_status(0xFB, std::chrono::milliseconds(3000));
    ASSERT_TRUE(grid_us);
    osc.send(daemon.osc_port(), OscMessageOut("/tf/notify"));
    ASSERT_TRUE(answer_to(osc, "/tf/notify"));
    const std::int64_t now_us = steady_now_us() + 300'000;
    const std::int64_t call_us = *grid_us + ((now_us - *grid_us + kBarUs - 1) / kBarUs) * kBarUs;
    play_call(rig, call_us, kBeatUs);
    // Into the answer's second beat, while notes sound and more are queued.
    std::this_thread::sleep_for(std::chrono::microseconds(call_us + 4 * kBarUs + 700'000 - steady_now_us()));
    rig.pump();
    const std::size_t before = rig.events().size();
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait_exit(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    rig.pump();
    int answer_notes = 0;
    std::map<int, int> sounding;
    std::set<int> cc123_channels;
    for (std::size_t i = 0; i < rig.events().size(); ++i) {
      const MidiEvent& e = rig.events()[i];
      const int key = e.channel() * 128 + e.bytes[1];
      if (is_note_on(e)) {
        ++sounding[key];
        if (i < before) ++answer_notes;
      } else if (is_note_off(e)) {
        --sounding[key];
      } else if ((e.status() & 0xF0) == 0xB0 && e.bytes[1] == 123) {
        cc123_channels.insert(e.channel());
      }
    }
    EXPECT_GT(answer_notes, 0) << "SIGTERM came before the answer started";
    // /tf/notify feedback followed the session through the trade.
    std::vector<std::string> states;
    while (const auto m = osc.wait_for("/tf/piano/state", std::chrono::milliseconds(50)))
      states.emplace_back(m->arg_string(0));
    EXPECT_EQ(states, (std::vector<std::string>{"listening", "thinking", "answering"}));
    for (const auto& [key, count] : sounding)
      EXPECT_EQ(count, 0) << "channel " << key / 128 << " pitch " << key % 128;
    EXPECT_EQ(cc123_channels.size(), 16u) << "CC123 on every channel";
  }

  const std::filesystem::path saved = daemon::style_state_path(state, "piano");
  ASSERT_TRUE(std::filesystem::exists(saved)) << "no style state saved at exit";
  EXPECT_TRUE(daemon::bitwise_equal(daemon::load_style_state(saved).current, style.current));

  // Restarted with another configured style, the saved one wins, bit for bit.
  overrides.back() = "session.0.style=learn";
  DaemonProcess restarted(state, osc.port(), overrides);
  ASSERT_TRUE(restarted.wait_ready(osc));
  osc.send(restarted.osc_port(), OscMessageOut("/tf/piano/style/latent"));
  const std::optional<OscMessageIn> latent = osc.wait_for("/tf/piano/style/latent.reply");
  ASSERT_TRUE(latent);
  ASSERT_EQ(latent->size(), 2 * model::kStyleDim);
  for (std::size_t i = 0; i < model::kStyleDim; ++i) {
    const float mean = latent->arg_float(i);
    const float log_variance = latent->arg_float(model::kStyleDim + i);
    EXPECT_EQ(std::memcmp(&mean, &style.current.mean[i], sizeof mean), 0) << "mean " << i;
    EXPECT_EQ(std::memcmp(&log_variance, &style.current.log_variance[i], sizeof mean), 0)
        << "log variance " << i;
  }
  restarted.signal(SIGTERM);
  EXPECT_EQ(restarted.wait_exit(), 0);
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace tatumflow::test
