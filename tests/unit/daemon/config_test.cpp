// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/config.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tatumflow::daemon {
namespace {

constexpr const char* kMinimal = R"([[session]]
name = "piano"
)";

// Runs parse_config and returns the error, failing the test when there is none.
ConfigError error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    (void)parse_config(text, "test.toml", overrides);
  } catch (const ConfigError& error) {
    return error;
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return ConfigError("", "", 0, 0, "none");
}

TEST(Config, DefaultsFromAMinimalFile) {
  const Config config = parse_config(kMinimal, "test.toml");
  EXPECT_EQ(config.daemon.state_dir, "/var/lib/tatumflow");
  EXPECT_EQ(config.daemon.log_level, LogLevel::info);
  EXPECT_EQ(config.osc.bind_address, "127.0.0.1");
  ASSERT_EQ(config.sessions.size(), 1u);
  EXPECT_EQ(config.sessions[0].name, "piano");
  EXPECT_EQ(config.sessions[0].input_channel, 0);  // omni
  EXPECT_EQ(config.sessions[0].phrase_end.silence_ms, 1200);
}

TEST(Config, ShippedConfigParses) {
  const Config config = load_config(std::string(TATUMFLOW_SOURCE_DIR) + "/configs/tatumflowd.toml");
  ASSERT_FALSE(config.sessions.empty());
  EXPECT_EQ(config.sessions[0].name, "piano");
}

TEST(Config, EveryKeyIsRead) {
  const Config config = parse_config(R"(
[daemon]
state_dir = "/tmp/tf"
log_level = "debug"
model = "/models/base.pt"
device = "cuda"
engine = "echo"
styles_dir = "/styles"
inference_threads = 2
share_steps = "on"
queue_capacity = 8
inject_device_failure_after_chunks = 3
[midi]
api = "jack"
clock_source = "midi"
send_clock = true
tempo_bpm = 96.5
beats_per_bar = 3
[osc]
bind_address = "0.0.0.0"
port = 57120
reply_port = 9001
notify = ["192.168.1.20:9000", "[::1]:9001"]
[scheduler]
realtime_priority = 0
lookahead_beats = 2
ready_margin_ms = 8
late_tolerance_ms = 2
output_lead_ms = 12
chunk_bars = 2
grid_division = 0
queue_capacity = 1024
[[session]]
name = "left"
input = "Kawai"
input_channel = 2
output = "virtual"
output_channel = 3
style = "learn"
learn_rate = 0.5
temperature = 0.9
creativity = 0.25
density = 1.5
bars = 8
state_cc = 20
[session.phrase_end]
silence_ms = 0
bars = 4
gesture_cc = 67
min_call_ms = 500
pedal_holds_phrase = false
)",
                                     "test.toml");
  EXPECT_EQ(config.daemon.device, ComputeDevice::cuda);
  EXPECT_EQ(config.daemon.engine, AnswerEngine::echo);
  EXPECT_EQ(config.daemon.inference_threads, 2);
  EXPECT_EQ(config.daemon.step_sharing, StepSharing::on);
  EXPECT_EQ(config.daemon.inject_device_failure_after_chunks, 3);
  EXPECT_EQ(config.midi.clock_source, ClockSource::midi);
  EXPECT_TRUE(config.midi.send_clock);
  EXPECT_DOUBLE_EQ(config.midi.tempo_bpm, 96.5);
  EXPECT_EQ(config.osc.port, 57120);
  EXPECT_EQ(config.osc.notify, (std::vector<OscTarget>{{"192.168.1.20", 9000}, {"::1", 9001}}));
  EXPECT_DOUBLE_EQ(config.scheduler.lookahead_beats, 2.0);  // an integer is a number too
  EXPECT_EQ(config.scheduler.grid_division, 0);
  const SessionSettings& s = config.sessions.at(0);
  EXPECT_EQ(s.input_channel, 2);
  EXPECT_EQ(s.output_channel, 3);
  EXPECT_EQ(s.bars, 8);
  EXPECT_EQ(s.state_cc, 20);
  EXPECT_EQ(s.phrase_end.bars, 4);
  EXPECT_EQ(s.phrase_end.gesture_cc, 67);
  EXPECT_FALSE(s.phrase_end.pedal_holds_phrase);
}

TEST(Config, UnknownKeyNamesKeyAndLine) {
  const ConfigError error = error_of(R"([osc]
port = 9000
prot = 9001
[[session]]
name = "a"
)");
  EXPECT_EQ(error.key(), "osc.prot");
  EXPECT_EQ(error.source(), "test.toml");
  EXPECT_EQ(error.line(), 3);
  EXPECT_NE(std::string(error.what()).find("did you mean 'osc.port'"), std::string::npos) << error.what();
}

TEST(Config, UnknownKeyInASession) {
  const ConfigError error = error_of(R"([[session]]
name = "a"
[[session]]
name = "b"
[session.phrase_end]
silnce_ms = 10
)");
  EXPECT_EQ(error.key(), "session.1.phrase_end.silnce_ms");
  EXPECT_EQ(error.line(), 6);
}

TEST(Config, WrongTypeNamesKeyLineAndTypes) {
  const ConfigError error = error_of(R"([[session]]
name = "a"
bars = "eight"
)");
  EXPECT_EQ(error.key(), "session.0.bars");
  EXPECT_EQ(error.line(), 3);
  EXPECT_NE(std::string(error.what()).find("expected an integer, got a string"), std::string::npos)
      << error.what();
  EXPECT_EQ(std::string(error.what()).rfind("test.toml:3:", 0), 0u) << error.what();
}

TEST(Config, RangeAndChoiceErrors) {
  EXPECT_EQ(error_of("[osc]\nport = 70000\n[[session]]\nname = \"a\"\n").key(), "osc.port");
  EXPECT_EQ(error_of("[daemon]\ndevice = \"tpu\"\n[[session]]\nname = \"a\"\n").key(), "daemon.device");
  EXPECT_EQ(error_of("[daemon]\ninject_device_failure_after_chunks = -1\n[[session]]\nname = \"a\"\n").key(),
            "daemon.inject_device_failure_after_chunks");
  EXPECT_EQ(error_of("[osc]\nbind_address = \"localhost\"\n[[session]]\nname = \"a\"\n").key(),
            "osc.bind_address");
  const ConfigError bars = error_of("[[session]]\nname = \"a\"\nphrase_end = { bars = 3 }\n");
  EXPECT_EQ(bars.key(), "session.0.phrase_end.bars");
  EXPECT_NE(std::string(bars.what()).find("must be 0 (off), 2, 4 or 8 (got 3)"), std::string::npos);
  EXPECT_EQ(error_of("[[session]]\nname = \"a\"\nphrase_end = { gesture_cc = 64 }\n").key(),
            "session.0.phrase_end.gesture_cc");
  EXPECT_EQ(error_of("[[session]]\nname = \"a\"\ninput_channel = \"all\"\n").key(),
            "session.0.input_channel");
  EXPECT_EQ(error_of("[[session]]\nname = \"a\"\noutput_channel = \"omni\"\n").key(),
            "session.0.output_channel");
}

TEST(Config, StateCcAndNotifyTargetsAreChecked) {
  EXPECT_EQ(parse_config(kMinimal, "test.toml").sessions[0].state_cc, -1);  // off by default
  const ConfigError pedal = error_of("[[session]]\nname = \"a\"\nstate_cc = 64\n");
  EXPECT_EQ(pedal.key(), "session.0.state_cc");
  EXPECT_NE(std::string(pedal.what()).find("sustain pedal"), std::string::npos) << pedal.what();
  // 120-127 are channel mode messages (all notes off...), not controllers.
  EXPECT_EQ(error_of("[[session]]\nname = \"a\"\nstate_cc = 123\n").key(), "session.0.state_cc");
  for (const char* bad :
       {"\"localhost:9000\"", "\"127.0.0.1\"", "\"127.0.0.1:0\"", "\"127.0.0.1:9x\"", "9000"}) {
    const ConfigError error =
        error_of(std::string("[osc]\nnotify = [") + bad + "]\n[[session]]\nname = \"a\"\n");
    EXPECT_EQ(error.key(), "osc.notify") << bad;
    EXPECT_EQ(error.line(), 2) << bad;
  }
  EXPECT_EQ(error_of("[osc]\nnotify = \"127.0.0.1:9000\"\n[[session]]\nname = \"a\"\n").key(), "osc.notify");
}

TEST(Config, SessionProblems) {
  EXPECT_EQ(error_of("[daemon]\n").key(), "session");
  EXPECT_EQ(error_of("[session]\nname = \"a\"\n").key(), "session");
  const ConfigError missing = error_of("[[session]]\ninput = \"x\"\n");
  EXPECT_EQ(missing.key(), "session.0");
  EXPECT_EQ(missing.line(), 1);
  const ConfigError twice = error_of("[[session]]\nname = \"a\"\n[[session]]\nname = \"a\"\n");
  EXPECT_EQ(twice.key(), "session.1.name");
  EXPECT_EQ(twice.line(), 4);
  EXPECT_EQ(error_of("[[session]]\nname = \"my piano\"\n").key(), "session.0.name");
  EXPECT_EQ(error_of("[[session]]\nname = \"a\"\nphrase_end = { silence_ms = 0 }\n").key(), "session.0");
}

TEST(Config, SyntaxErrorHasLine) {
  const ConfigError error = error_of("[osc]\nport = = 3\n");
  EXPECT_EQ(error.line(), 2);
  EXPECT_EQ(error.source(), "test.toml");
}

TEST(Config, OverridesSetTypedValues) {
  const std::vector<std::string> overrides{"osc.port=9100",
                                           "session.0.bars=8",
                                           "daemon.device=cuda",
                                           "session.0.phrase_end.bars=2",
                                           "scheduler.lookahead_beats=0.5",
                                           "midi.send_clock=true",
                                           "session.0.input_channel=omni",
                                           "daemon.model=/models/my model.pt"};
  const Config config = parse_config(kMinimal, "test.toml", overrides);
  EXPECT_EQ(config.osc.port, 9100);
  EXPECT_EQ(config.sessions[0].bars, 8);
  EXPECT_EQ(config.daemon.device, ComputeDevice::cuda);
  EXPECT_EQ(config.sessions[0].phrase_end.bars, 2);
  EXPECT_DOUBLE_EQ(config.scheduler.lookahead_beats, 0.5);
  EXPECT_TRUE(config.midi.send_clock);
  EXPECT_EQ(config.sessions[0].input_channel, 0);
  EXPECT_EQ(config.daemon.model, "/models/my model.pt");
}

TEST(Config, OverrideAddsASession) {
  const Config config = parse_config(kMinimal, "test.toml", std::vector<std::string>{"session.1.name=bass"});
  ASSERT_EQ(config.sessions.size(), 2u);
  EXPECT_EQ(config.sessions[1].name, "bass");
  const Config created = parse_config("", "empty.toml", std::vector<std::string>{"session.0.name=solo"});
  ASSERT_EQ(created.sessions.size(), 1u);
}

TEST(Config, OverrideErrorsNameTheOverride) {
  const ConfigError type = error_of(kMinimal, {"session.0.bars=eight"});
  EXPECT_EQ(type.key(), "session.0.bars");
  EXPECT_EQ(type.source(), "--set session.0.bars=eight");
  EXPECT_EQ(type.line(), 0);
  EXPECT_NE(std::string(type.what()).find("expected an integer, got a string"), std::string::npos);

  const ConfigError range = error_of(kMinimal, {"osc.port=0"});
  EXPECT_EQ(range.key(), "osc.port");
  EXPECT_EQ(range.source(), "--set osc.port=0");

  const ConfigError unknown = error_of(kMinimal, {"oss.port=9000"});
  EXPECT_EQ(unknown.key(), "oss");
  EXPECT_EQ(unknown.source(), "--set oss.port=9000");

  EXPECT_EQ(error_of(kMinimal, {"session.5.bars=4"}).key(), "session.5");
  EXPECT_EQ(error_of(kMinimal, {"osc.port"}).source(), "--set osc.port");
  EXPECT_EQ(error_of(kMinimal, {"osc..port=1"}).key(), "osc..port");
}

TEST(Config, FileErrorsStillPointAtTheFileWithOverrides) {
  const ConfigError error =
      error_of("[osc]\nport = \"x\"\n[[session]]\nname = \"a\"\n", {"osc.reply_port=9"});
  EXPECT_EQ(error.source(), "test.toml");
  EXPECT_EQ(error.line(), 2);
}

TEST(Config, MissingFile) { EXPECT_THROW((void)load_config("/nonexistent/tatumflowd.toml"), ConfigError); }

}  // namespace
}  // namespace tatumflow::daemon
