// SPDX-License-Identifier: GPL-3.0-or-later
// The beat grids on synthetic timestamps: internal clock arithmetic, the MIDI
// clock follower under +/-1 ms jitter, tempo ramps and jumps, transport
// messages, and the master's rendering (fed back into a follower).
#include "tatumflow/protocol/midi_clock.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "tatumflow/protocol/midi_clock_driver.hpp"

namespace tatumflow {
namespace {

constexpr double kUsPerMinute = 60'000'000.0;

MidiEvent status_event(std::uint8_t status, std::int64_t time_us = 0) {
  return MidiEvent{time_us, {status, 0, 0}, 1, 0};
}

TEST(InternalClock, BeatsBarsAndTempoChanges) {
  InternalClock clock(120.0, 4, 1'000'000);  // 500 ms per beat
  EXPECT_DOUBLE_EQ(clock.beat_at(1'000'000), 0.0);
  EXPECT_DOUBLE_EQ(clock.beat_at(1'750'000), 1.5);
  EXPECT_EQ(clock.time_of_beat_us(3.0), 2'500'000);
  EXPECT_EQ(downbeat_time_us(clock, 2), 1'000'000 + 8 * 500'000);
  EXPECT_EQ(next_beat_time_us(clock, 1'100'000), 1'500'000);
  EXPECT_EQ(next_beat_time_us(clock, 1'500'000), 1'500'000);  // on a beat: that beat
  EXPECT_EQ(next_downbeat_time_us(clock, 1'000'001), 3'000'000);
  EXPECT_EQ(next_downbeat_time_us(clock, 3'000'000), 3'000'000);

  clock.set_tempo(60.0, 2'000'000);  // at beat 2; now 1 s per beat
  EXPECT_DOUBLE_EQ(clock.beat_at(2'000'000), 2.0);
  EXPECT_EQ(clock.time_of_beat_us(4.0), 4'000'000);
  EXPECT_EQ(next_downbeat_time_us(clock, 2'000'000), 4'000'000);

  clock.set_beats_per_bar(3);
  EXPECT_EQ(next_downbeat_time_us(clock, 2'000'000), 3'000'000);  // beat 3

  clock.locate(0.0, 10'000'000);
  EXPECT_DOUBLE_EQ(clock.beat_at(11'000'000), 1.0);

  EXPECT_THROW(clock.set_tempo(5.0, 0), std::invalid_argument);
  EXPECT_THROW(clock.set_tempo(std::nan(""), 0), std::invalid_argument);
  EXPECT_THROW(clock.set_beats_per_bar(0), std::invalid_argument);
  EXPECT_THROW(InternalClock(120.0, 99, 0), std::invalid_argument);
}

// Tick times of a tempo curve given per tick, starting at `start_us`.
std::vector<double> tick_times(const std::function<double(int)>& bpm_at_tick, int ticks, double start_us) {
  std::vector<double> times{start_us};
  for (int k = 0; k + 1 < ticks; ++k)
    times.push_back(times.back() + kUsPerMinute / (bpm_at_tick(k) * kMidiClockPpqn));
  return times;
}

struct PredictionErrors {
  double rms_ms = 0;
  double max_ms = 0;
};

// Feeds jittered ticks; after every tick in [from_tick, to_tick) compares the
// predicted time of the next whole beat with its true (jitter-free) time.
PredictionErrors follow(const std::vector<double>& truth, int from_tick, int to_tick, double jitter_us,
                        MidiClockFollower& follower, unsigned seed = 7) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<double> jitter(-jitter_us, jitter_us);
  follower.on_start();
  double sum_sq = 0;
  double worst = 0;
  int count = 0;
  for (int k = 0; k + kMidiClockPpqn < static_cast<int>(truth.size()); ++k) {
    follower.on_tick(std::llround(truth[k] + jitter(random)));
    if (k < from_tick || k >= to_tick) continue;
    const int next_beat_tick = (k / kMidiClockPpqn + 1) * kMidiClockPpqn;
    const double error_ms = (static_cast<double>(follower.time_of_beat_us(next_beat_tick / kMidiClockPpqn)) -
                             truth[next_beat_tick]) /
                            1000.0;
    sum_sq += error_ms * error_ms;
    worst = std::max(worst, std::abs(error_ms));
    ++count;
  }
  return {std::sqrt(sum_sq / count), worst};
}

TEST(MidiClockFollower, SteadyTempoThroughOneMillisecondJitter) {
  const auto truth = tick_times([](int) { return 120.0; }, 24 * 64, 5'000'000);
  MidiClockFollower follower;
  const auto errors = follow(truth, 24 * 4, 24 * 60, 1000.0, follower);
  RecordProperty("next_beat_rms_ms", std::to_string(errors.rms_ms));
  RecordProperty("next_beat_max_ms", std::to_string(errors.max_ms));
  EXPECT_LT(errors.rms_ms, 0.7);
  EXPECT_LT(errors.max_ms, 2.5);
  EXPECT_NEAR(follower.tempo_bpm(), 120.0, 0.3);
  EXPECT_TRUE(follower.locked(std::llround(truth[24 * 63])));
}

TEST(MidiClockFollower, TracksA100To140BpmRampOverEightBars) {
  constexpr int kRampStart = 24 * 16;
  constexpr int kRampEnd = 24 * 48;  // 32 beats later
  const auto bpm = [](int k) {
    if (k < kRampStart) return 100.0;
    if (k > kRampEnd) return 140.0;
    return 100.0 + 40.0 * (k - kRampStart) / (kRampEnd - kRampStart);
  };
  const auto truth = tick_times(bpm, 24 * 80, 1'000'000);
  // From one beat after the ramp starts (the filter cannot foresee the start).
  MidiClockFollower follower;
  const auto onset = follow(truth, kRampStart + 24, kRampEnd, 1000.0, follower);
  RecordProperty("ramp_rms_ms", std::to_string(onset.rms_ms));
  RecordProperty("ramp_max_ms", std::to_string(onset.max_ms));
  EXPECT_LT(onset.rms_ms, 1.5);
  EXPECT_LT(onset.max_ms, 5.0);
  EXPECT_NEAR(follower.tempo_bpm(), 140.0, 1.0);

  // In the body of the ramp, from four beats in.
  MidiClockFollower body_follower;
  const auto body = follow(truth, kRampStart + 4 * 24, kRampEnd, 1000.0, body_follower);
  RecordProperty("ramp_body_rms_ms", std::to_string(body.rms_ms));
  RecordProperty("ramp_body_max_ms", std::to_string(body.max_ms));
  EXPECT_LT(body.rms_ms, 1.0);
  EXPECT_LT(body.max_ms, 2.5);

  MidiClockFollower settled_follower;
  const auto after = follow(truth, kRampEnd + 48, 24 * 78, 1000.0, settled_follower);
  EXPECT_LT(after.rms_ms, 0.8);
  EXPECT_LT(after.max_ms, 3.0);
}

TEST(MidiClockFollower, RecoversFromATempoJumpAndIgnoresALoneOutlier) {
  auto truth = tick_times([](int k) { return k < 24 * 8 ? 120.0 : 90.0; }, 24 * 20, 0);
  truth[24 * 4 + 5] += 8000.0;  // one clock 8 ms late
  MidiClockFollower follower;
  follower.on_start();
  std::vector<double> errors_ms;
  for (int k = 0; k + 24 < static_cast<int>(truth.size()); ++k) {
    follower.on_tick(std::llround(truth[k]));
    const int next_beat = (k / 24 + 1) * 24;
    errors_ms.push_back(
        std::abs(static_cast<double>(follower.time_of_beat_us(next_beat / 24)) - truth[next_beat]) / 1000.0);
  }
  // Right after the outlier the prediction is still good.
  EXPECT_LT(errors_ms[24 * 4 + 5], 0.5);
  EXPECT_LT(errors_ms[24 * 4 + 6], 0.5);
  // One beat after the jump to 90 bpm it is back within a millisecond.
  for (int k = 24 * 9; k < 24 * 19; ++k) EXPECT_LT(errors_ms[k], 1.0) << "tick " << k;
  EXPECT_NEAR(follower.tempo_bpm(), 90.0, 0.1);
}

TEST(MidiClockFollower, TransportAndSongPosition) {
  MidiClockFollower follower;
  constexpr std::int64_t kPeriodUs = 20'833;  // 120 bpm
  std::int64_t time_us = 0;
  // Clock while stopped: tempo is learnt, the position stays.
  for (int i = 0; i < 48; ++i) EXPECT_TRUE(follower.on_event(status_event(0xF8, time_us += kPeriodUs)));
  EXPECT_FALSE(follower.running());
  EXPECT_EQ(follower.next_tick(), 0);
  EXPECT_TRUE(follower.locked(time_us));
  EXPECT_NEAR(follower.tempo_bpm(), 120.0, 0.01);

  // Start: the next clock is tick 0, i.e. beat 0 falls one period after the last clock.
  EXPECT_TRUE(follower.on_event(status_event(0xFA)));
  EXPECT_NEAR(static_cast<double>(follower.time_of_beat_us(0.0)), static_cast<double>(time_us + kPeriodUs),
              2.0);
  for (int i = 0; i < 30; ++i) follower.on_event(status_event(0xF8, time_us += kPeriodUs));
  EXPECT_EQ(follower.next_tick(), 30);
  EXPECT_NEAR(follower.beat_at(time_us), 29.0 / 24.0, 1e-3);
  // Bar 1 (beat 4, tick 96) lies 67 ticks after tick 29.
  EXPECT_NEAR(static_cast<double>(next_downbeat_time_us(follower, time_us)),
              static_cast<double>(time_us + 67 * kPeriodUs), 20.0);

  EXPECT_TRUE(follower.on_event(status_event(0xFC)));
  for (int i = 0; i < 5; ++i) follower.on_event(status_event(0xF8, time_us += kPeriodUs));
  EXPECT_EQ(follower.next_tick(), 30);
  // Song position 16 sixteenths = beat 4 = tick 96, then continue.
  EXPECT_TRUE(follower.on_event(MidiEvent{0, {0xF2, 16, 0}, 3, 0}));
  EXPECT_EQ(follower.next_tick(), 96);
  EXPECT_TRUE(follower.on_event(status_event(0xFB)));
  follower.on_event(status_event(0xF8, time_us += kPeriodUs));
  EXPECT_EQ(follower.next_tick(), 97);
  EXPECT_NEAR(follower.beat_at(time_us), 4.0, 1e-3);
  EXPECT_FALSE(follower.on_event(MidiEvent{0, {0x90, 60, 100}, 3, 0}));
}

TEST(MidiClockFollower, UnlocksWhenTheClockStops) {
  MidiClockFollower follower;
  std::int64_t time_us = 0;
  for (int i = 0; i < 30; ++i) follower.on_tick(time_us += 20'000);
  EXPECT_TRUE(follower.locked(time_us));
  EXPECT_FALSE(follower.locked(time_us + 600'000));
  follower.on_tick(time_us += 2'000'000);  // resumes after a pause: relearns
  EXPECT_FALSE(follower.locked(time_us));
}

TEST(MidiClockFollower, RejectsBadConfiguration) {
  EXPECT_THROW(MidiClockFollower({.jitter_us = 0}), std::invalid_argument);
  EXPECT_THROW(MidiClockFollower({.tempo_agility = -1}), std::invalid_argument);
  EXPECT_THROW(MidiClockFollower({.lock_ticks = 1}), std::invalid_argument);
  EXPECT_THROW(MidiClockFollower({.beats_per_bar = 0}), std::invalid_argument);
}

std::vector<MidiEvent> render_all(MidiClockMaster& master, std::int64_t until_us, std::size_t chunk) {
  std::vector<MidiEvent> events;
  std::vector<MidiEvent> buffer(chunk);
  for (std::size_t n; (n = master.render(until_us, buffer)) > 0;)
    events.insert(events.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  return events;
}

TEST(MidiClockMaster, RendersTransportAndTicksOnTheGrid) {
  InternalClock clock(120.0, 4, 0);
  MidiClockMaster master(clock, 5);
  EXPECT_TRUE(render_all(master, 1'000'000, 16).empty());  // stopped: silence

  master.start(1'000'000);
  EXPECT_THROW(master.start(1'000'000), std::logic_error);
  auto events = render_all(master, 2'000'000, 7);  // small chunks on purpose
  ASSERT_EQ(events.size(), 1U + 48U);              // FA + two beats of clocks
  EXPECT_EQ(events[0].status(), 0xFA);
  EXPECT_EQ(events[0].time_us, 1'000'000);
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i].status(), 0xF8);
    EXPECT_EQ(events[i].port, 5);
    EXPECT_NEAR(static_cast<double>(events[i].time_us),
                1'000'000 + static_cast<double>(i - 1) * (500'000.0 / 24), 0.5);
  }
  EXPECT_EQ(clock.time_of_beat_us(0.0), 1'000'000);

  master.stop(2'250'000);
  events = render_all(master, 3'000'000, 64);
  ASSERT_EQ(events.size(), 12U + 1U);  // clocks at 2.0 .. 2.229 s, then FC
  EXPECT_EQ(events.back().status(), 0xFC);
  EXPECT_EQ(events.back().time_us, 2'250'000);
  EXPECT_THROW(master.stop(3'000'000), std::logic_error);

  // Continue resumes at tick 60 (2.5 beats): the first clock lands on the FB.
  master.resume(4'000'000);
  events = render_all(master, 4'100'000, 64);
  ASSERT_GE(events.size(), 2U);
  EXPECT_EQ(events[0].status(), 0xFB);
  EXPECT_EQ(events[1].status(), 0xF8);
  EXPECT_EQ(events[1].time_us, 4'000'000);
  EXPECT_DOUBLE_EQ(clock.beat_at(4'000'000), 60.0 / 24.0);
}

TEST(MidiClockMaster, TempoChangesApplyFromTheirTimeAndNeverRewriteThePast) {
  InternalClock clock(120.0, 4, 0);
  MidiClockMaster master(clock, 0);
  master.start(0);
  auto events = render_all(master, 100'000, 64);
  // Asked for t = 50 ms, after 100 ms were rendered: it applies at 100 ms.
  master.set_tempo(60.0, 50'000);
  auto later = render_all(master, 1'000'000, 64);
  events.insert(events.end(), later.begin(), later.end());
  std::int64_t previous = -1;
  for (const MidiEvent& event : events) {
    EXPECT_GE(event.time_us, previous);
    previous = event.time_us;
  }
  // Clocks before 100 ms keep 20.833 ms spacing, after it 41.667 ms.
  EXPECT_EQ(events[2].time_us - events[1].time_us, 20'833);
  EXPECT_NEAR(static_cast<double>(events.back().time_us - events[events.size() - 2].time_us), 41'666.7, 1.0);
  EXPECT_DOUBLE_EQ(clock.tempo_bpm(), 60.0);
  EXPECT_THROW(master.set_tempo(1000.0, 0), std::invalid_argument);
}

TEST(MidiClockMaster, SongPositionOnlyWhileStopped) {
  InternalClock clock(120.0, 4, 0);
  MidiClockMaster master(clock, 0);
  master.song_position(8, 0);  // 8 sixteenths = 2 beats = tick 48
  master.resume(1'000'000);
  EXPECT_THROW(master.song_position(0, 2'000'000), std::logic_error);
  const auto events = render_all(master, 1'000'001, 64);
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0].status(), 0xF2);
  EXPECT_EQ(events[0].bytes[1], 8);
  EXPECT_EQ(events[0].bytes[2], 0);
  EXPECT_EQ(events[1].status(), 0xFB);
  EXPECT_DOUBLE_EQ(clock.beat_at(1'000'000), 2.0);
}

TEST(MidiClockMaster, AFollowerLocksOntoTheMasterOutput) {
  InternalClock clock(133.0, 4, 0);
  MidiClockMaster master(clock, 0);
  master.start(500'000);
  MidiClockFollower follower;
  for (const MidiEvent& event : render_all(master, 4'000'000, 64)) follower.on_event(event);
  EXPECT_NEAR(follower.tempo_bpm(), 133.0, 0.01);
  EXPECT_TRUE(follower.running());
  for (double beat : {8.0, 9.0, 12.0}) {
    EXPECT_NEAR(static_cast<double>(follower.time_of_beat_us(beat)),
                static_cast<double>(clock.time_of_beat_us(beat)), 20.0)
        << "beat " << beat;
  }
}

// Records what the driver hands over, and when; refuses everything once full.
class RecordingSink final : public ScheduledMidiSink {
 public:
  struct Handed {
    MidiEvent event;
    std::int64_t handed_us;
  };
  explicit RecordingSink(std::size_t room) : room_(room) {}
  bool schedule(const MidiEvent& event) noexcept override {
    if (handed_.size() == room_) return false;
    handed_.push_back({event, steady_now_us()});
    return true;
  }
  [[nodiscard]] const std::vector<Handed>& handed() const { return handed_; }

 private:
  std::size_t room_;
  std::vector<Handed> handed_;
};

TEST(MidiClockDriver, HandsClocksOverAheadOfTheirTimeOnAnAsioTimer) {
  boost::asio::io_context io;
  const std::int64_t start_us = steady_now_us() + 30'000;
  InternalClock clock(240.0, 4, start_us);  // 10.4 ms per clock
  MidiClockMaster master(clock, 0);
  master.start(start_us);
  RecordingSink sink(1000);
  MidiClockDriver driver(
      io, master, sink,
      {.lookahead_us = std::chrono::microseconds(20'000), .interval_us = std::chrono::microseconds(5'000)});
  driver.run();
  io.run_for(std::chrono::milliseconds(300));
  driver.halt();

  const auto& handed = sink.handed();
  ASSERT_GT(handed.size(), 25U);  // FA + about 27 clocks
  EXPECT_EQ(handed[0].event.status(), 0xFA);
  for (std::size_t i = 1; i < handed.size(); ++i) {
    EXPECT_EQ(handed[i].event.status(), 0xF8);
    EXPECT_NEAR(static_cast<double>(handed[i].event.time_us),
                static_cast<double>(clock.time_of_beat_us(static_cast<double>(i - 1) / 24.0)), 1.0);
    // Never handed over late; normally 15-20 ms ahead.
    EXPECT_GT(handed[i].event.time_us, handed[i].handed_us) << "clock " << i;
  }
  EXPECT_EQ(driver.dropped(), 0U);
  EXPECT_THROW(MidiClockDriver(io, master, sink,
                               {.lookahead_us = std::chrono::microseconds(5'000),
                                .interval_us = std::chrono::microseconds(5'000)}),
               std::invalid_argument);
}

TEST(MidiClockDriver, CountsWhatTheSinkRefuses) {
  boost::asio::io_context io;
  InternalClock clock(120.0, 4, 0);
  MidiClockMaster master(clock, 0);
  master.start(steady_now_us());
  RecordingSink sink(3);
  MidiClockDriver driver(io, master, sink);
  driver.run();
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(sink.handed().size(), 3U);
  EXPECT_GT(driver.dropped(), 0U);
}

}  // namespace
}  // namespace tatumflow
