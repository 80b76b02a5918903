// SPDX-License-Identifier: GPL-3.0-or-later
// Trading fours with the real tatumflowd on a JACK dummy server: a player
// plays a 4-bar call at 120 bpm on the daemon's grid (read from the MIDI clock
// it sends); the echo answer must start on bar 5's downbeat within one JACK
// period, stay inside its 4 bars, release every note, and never be late.
// A non-realtime dummy server on a loaded 2-core CI machine misses cycles
// (an xrun), and a missed cycle shifts JACK's frame-to-time map for everyone;
// reps with an xrun are held to the grid (half a beat: a wrong beat or bar
// still fails) rather than to one period. The precision itself is measured by
// scripts/bench-latency.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "daemon_process.hpp"

namespace tatumflow::test {
namespace {

constexpr std::int64_t kBeatUs = 500'000;  // 120 bpm
constexpr std::int64_t kBarUs = 4 * kBeatUs;
constexpr int kRepetitions = 10;
constexpr double kXrunToleranceUs = kBeatUs / 2.0;
constexpr double kPeriodUs = 1e6 * JackTestServer::kPeriodFrames / JackTestServer::kSampleRateHz;

TEST(TatumflowdTrading, FoursAnswerLandsOnBarFiveTenTimes) {
  TATUMFLOW_REQUIRE_DAEMON();
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  PlayerRig rig;
  OscClient osc;
  std::vector<std::string> overrides = rig.session_overrides();
  for (const char* o : {"midi.send_clock=true", "midi.tempo_bpm=120", "session.0.phrase_end.bars=4",
                        "session.0.phrase_end.silence_ms=0", "session.0.bars=4"})
    overrides.emplace_back(o);
  DaemonProcess daemon(state, osc.port(), overrides);
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(daemon.wait_ready(osc)) << "tatumflowd did not answer /tf/status";
  const std::optional<std::int64_t> grid_us = rig.wait_for_status(0xFB, std::chrono::milliseconds(3000));
  ASSERT_TRUE(grid_us) << "no MIDI clock Continue from the daemon (its downbeat)";

  std::int64_t next_start_us = steady_now_us() + 500'000;
  double worst_start_error_us = 0.0;
  int strict_reps = 0;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    // The call starts on the daemon's next downbeat.
    const std::int64_t bars_ahead = (next_start_us - *grid_us + kBarUs - 1) / kBarUs;
    const std::int64_t call_us = *grid_us + bars_ahead * kBarUs;
    const std::int64_t answer_us = call_us + 4 * kBarUs;
    const std::int64_t answer_end_us = answer_us + 4 * kBarUs;
    const std::size_t seen = rig.events().size();
    const std::uint64_t xruns_before = rig.client().stats().xruns;
    play_call(rig, call_us, kBeatUs);
    std::this_thread::sleep_for(std::chrono::microseconds(answer_end_us + 300'000 - steady_now_us()));
    rig.pump();

    std::optional<std::int64_t> first_on_us;
    std::map<int, int> sounding;  // pitch -> note-ons minus note-offs
    int notes = 0;
    for (std::size_t i = seen; i < rig.events().size(); ++i) {
      const MidiEvent& e = rig.events()[i];
      if (!is_note_on(e) && !is_note_off(e)) continue;
      EXPECT_LT(static_cast<double>(e.time_us), static_cast<double>(answer_end_us) + kPeriodUs)
          << "rep " << rep << ": a note event after the answer's last bar";
      if (is_note_on(e)) {
        if (!first_on_us) first_on_us = e.time_us;
        ++sounding[e.bytes[1]];
        ++notes;
      } else {
        --sounding[e.bytes[1]];
      }
    }
    ASSERT_TRUE(first_on_us) << "rep " << rep << ": no answer";
    const std::uint64_t rep_xruns = rig.client().stats().xruns - xruns_before;
    const double start_error_us = std::abs(static_cast<double>(*first_on_us - answer_us));
    EXPECT_LE(start_error_us, rep_xruns == 0 ? kPeriodUs : kXrunToleranceUs)
        << "rep " << rep << ": first answer note " << (*first_on_us - answer_us)
        << " us from bar 5's downbeat (JACK xruns during the rep: " << rep_xruns << ")";
    if (rep_xruns == 0) {
      ++strict_reps;
      worst_start_error_us = std::max(worst_start_error_us, start_error_us);
    }
    EXPECT_GE(notes, 10) << "rep " << rep;
    for (const auto& [pitch, count] : sounding) EXPECT_EQ(count, 0) << "rep " << rep << ": pitch " << pitch;
    next_start_us = answer_end_us + 200'000;
  }

  osc.send(daemon.osc_port(), OscMessageOut("/tf/status"));
  const std::optional<OscMessageIn> status = osc.wait_for("/tf/status.reply");
  ASSERT_TRUE(status);
  // Late output events include the MIDI clock the daemon sends, which a
  // stalled event loop on a loaded machine can hand over late; the answers'
  // own timing is checked note by note above.
  RecordProperty("late_output_events", status->arg_int(5));
  RecordProperty("worst_start_error_us", static_cast<int>(worst_start_error_us));
  RecordProperty("reps_without_xruns", strict_reps);
  std::printf(
      "worst answer start error %.0f us over %d reps without xruns (one period %.0f us), "
      "late output events %d\n",
      worst_start_error_us, strict_reps, kPeriodUs, status->arg_int(5));
  EXPECT_EQ(status->arg_int(6), 0) << "answer notes dropped as late";
  EXPECT_EQ(status->arg_int(8), kRepetitions) << "answers";
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(), 0);
  std::filesystem::remove_all(state);
}

// The daemon follows the player's MIDI clock ramping from 100 to 140 bpm over
// the call and the answer, and the answer starts on the external bar 5.
TEST(TatumflowdTrading, FollowsARampingMidiClockOntoTheExternalDownbeat) {
  TATUMFLOW_REQUIRE_DAEMON();
  TATUMFLOW_START_JACK(server);
  const std::filesystem::path state = std::filesystem::temp_directory_path() / (server.name() + "_state");
  PlayerRig rig;
  OscClient osc;
  std::vector<std::string> overrides = rig.session_overrides();
  for (const char* o : {"midi.clock_source=midi", "session.0.phrase_end.bars=4",
                        "session.0.phrase_end.silence_ms=0", "session.0.bars=4"})
    overrides.emplace_back(o);
  DaemonProcess daemon(state, osc.port(), overrides);
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(daemon.wait_ready(osc));

  // Start, then 24 ppqn clocks whose tempo rises linearly per tick from 100
  // to 140 bpm over 9 bars (a bar of count-in, the call, the answer).
  constexpr int kTicksPerBar = 4 * 24;
  constexpr int kRampTicks = 9 * kTicksPerBar;
  const std::uint64_t xruns_before = rig.client().stats().xruns;
  const std::int64_t start_us = steady_now_us() + 300'000;
  std::vector<std::int64_t> tick_us;
  double t = static_cast<double>(start_us);
  for (int k = 0; k <= kRampTicks; ++k) {
    tick_us.push_back(static_cast<std::int64_t>(t));
    const double bpm = 100.0 + 40.0 * std::min(1.0, static_cast<double>(k) / kRampTicks);
    t += 60e6 / (24.0 * bpm);
  }
  ASSERT_TRUE(rig.play(MidiEvent{start_us, {0xFA, 0, 0}, 1, 0}));
  for (const std::int64_t tick : tick_us) ASSERT_TRUE(rig.play(MidiEvent{tick, {0xF8, 0, 0}, 1, 0}));
  // The call: one note per beat of bars 1-4 (15 beats), on the external beats.
  for (int b = 0; b < 15; ++b) {
    const auto pitch = static_cast<std::uint8_t>(60 + (b * 2) % 12);
    const std::size_t on = static_cast<std::size_t>(kTicksPerBar + 24 * b);
    ASSERT_TRUE(rig.play(midi3(tick_us[on], 0x90, pitch, 90)));
    ASSERT_TRUE(rig.play(midi3(tick_us[on + 12], 0x80, pitch, 0)));
  }
  const std::int64_t answer_us = tick_us[5 * kTicksPerBar];
  std::this_thread::sleep_for(std::chrono::microseconds(tick_us.back() + 200'000 - steady_now_us()));
  rig.pump();
  std::optional<std::int64_t> first_on_us;
  for (const MidiEvent& e : rig.events()) {
    if (is_note_on(e)) {
      first_on_us = e.time_us;
      break;
    }
  }
  ASSERT_TRUE(first_on_us) << "no answer";
  const double error_us = static_cast<double>(*first_on_us - answer_us);
  RecordProperty("ramp_start_error_us", static_cast<int>(error_us));
  const std::uint64_t xruns = rig.client().stats().xruns - xruns_before;
  std::printf("answer start error against the external downbeat under the ramp: %.0f us (JACK xruns: %llu)\n",
              error_us, static_cast<unsigned long long>(xruns));
  // One period of our output plus the follower's ~1.5 ms tracking error in a
  // ramp; the grid where an xrun moved the time map (see kXrunToleranceUs).
  EXPECT_LE(std::abs(error_us), xruns == 0 ? kPeriodUs + 1500.0 : kXrunToleranceUs);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait_exit(), 0);
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace tatumflow::test
