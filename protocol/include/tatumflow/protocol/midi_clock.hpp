// SPDX-License-Identifier: GPL-3.0-or-later
// Beat grids on the steady clock: an internal clock (tempo + meter), a MIDI
// clock follower (24 ppqn in, tempo tracked through jitter and ramps) and a
// MIDI clock master (24 ppqn out, rendered ahead of time for a scheduled
// output). Pure logic fed with timestamps, so it is tested with synthetic
// ticks; all of it runs on the event loop. // event-loop thread throughout
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow {

inline constexpr int kMidiClockPpqn = 24;
inline constexpr int kTicksPerSixteenth = 6;  // song position pointer unit
inline constexpr double kMinTempoBpm = 20.0;
inline constexpr double kMaxTempoBpm = 400.0;
inline constexpr int kMaxBeatsPerBar = 32;

// Where beats fall on the steady clock. Beat 0 is the song start; bar N starts
// at beat N * beats_per_bar().
class BeatClock {
 public:
  virtual ~BeatClock() = default;
  [[nodiscard]] virtual double tempo_bpm() const = 0;
  [[nodiscard]] virtual int beats_per_bar() const = 0;
  // Fractional beat position at `time_us`.
  [[nodiscard]] virtual double beat_at(std::int64_t time_us) const = 0;
  // Time of the (fractional) beat position `beat`.
  [[nodiscard]] virtual std::int64_t time_of_beat_us(double beat) const = 0;

 protected:
  BeatClock() = default;
  BeatClock(const BeatClock&) = default;
  BeatClock& operator=(const BeatClock&) = default;
};

// First whole beat at or after `time_us`.
[[nodiscard]] std::int64_t next_beat_time_us(const BeatClock& clock, std::int64_t time_us);
// First bar start at or after `time_us`.
[[nodiscard]] std::int64_t next_downbeat_time_us(const BeatClock& clock, std::int64_t time_us);
// Start of bar `bar` (bar 0 starts at beat 0).
[[nodiscard]] std::int64_t downbeat_time_us(const BeatClock& clock, std::int64_t bar);

// Throws std::invalid_argument unless kMinTempoBpm <= bpm <= kMaxTempoBpm.
void check_tempo_bpm(double bpm);
// Throws std::invalid_argument unless 1 <= beats <= kMaxBeatsPerBar.
void check_beats_per_bar(int beats);

class InternalClock final : public BeatClock {
 public:
  // Beat 0 falls at `origin_us`. Throws std::invalid_argument for a tempo or
  // meter out of range.
  InternalClock(double tempo_bpm, int beats_per_bar, std::int64_t origin_us);

  // New tempo from `at_us` on; the beat position at `at_us` is kept.
  void set_tempo(double bpm, std::int64_t at_us);
  // Bars are counted from beat 0 with the new length: change it between phrases.
  void set_beats_per_bar(int beats);
  // Moves the grid so that `beat` falls at `at_us` (start, continue, song position).
  void locate(double beat, std::int64_t at_us);

  [[nodiscard]] double tempo_bpm() const override { return tempo_bpm_; }
  [[nodiscard]] int beats_per_bar() const override { return beats_per_bar_; }
  [[nodiscard]] double beat_at(std::int64_t time_us) const override;
  [[nodiscard]] std::int64_t time_of_beat_us(double beat) const override;

 private:
  double tempo_bpm_;
  int beats_per_bar_;
  std::int64_t anchor_us_;  // time at which the grid is at anchor_beat_
  double anchor_beat_ = 0.0;
};

struct MidiClockFollowerConfig {
  // Tick timing noise the tempo filter expects (uniform +/- this), in us:
  // larger values smooth more and follow tempo changes more slowly.
  double jitter_us = 1000.0;
  // How fast the tempo may change: the filter's process noise (us^2 per tick^5
  // of period acceleration). 0.1 follows a 100 -> 140 bpm ramp over 8 bars
  // within ~1.5 ms while keeping steady-tempo beat predictions within ~2 ms
  // under +/-1 ms jitter.
  double tempo_agility = 0.1;
  // Ticks after a reset before locked() (one beat).
  int lock_ticks = kMidiClockPpqn;
  // No tick for this long: unlocked; the next tick restarts the filter.
  std::int64_t timeout_us = 500'000;
  int beats_per_bar = 4;
};

// Follows an external MIDI clock. The song position counts ticks from Start
// (the first clock after Start is tick 0); Continue resumes at the current
// position, Song Position Pointer moves it while stopped. Clocks received while
// stopped keep the tempo estimate fresh without moving the position. The tempo
// is a Kalman filter over tick times with state (tick time, period, period
// change per tick); three consecutive ticks off by more than a quarter period
// (or 8 sigma) are taken as a tempo jump and restart it.
class MidiClockFollower final : public BeatClock {
 public:
  // Throws std::invalid_argument for non-positive jitter, agility, lock_ticks,
  // timeout or a bad meter.
  explicit MidiClockFollower(MidiClockFollowerConfig config = {});

  // Feeds one input event: F8 clock, FA start, FB continue, FC stop, F2 song
  // position. False (and ignored) for anything else.
  bool on_event(const MidiEvent& event);
  void on_tick(std::int64_t time_us);
  void on_start();
  void on_continue();
  void on_stop();
  void on_song_position(std::uint16_t sixteenths);
  void set_beats_per_bar(int beats);

  [[nodiscard]] bool running() const { return running_; }
  // Enough recent ticks for the tempo and beat predictions to mean something.
  [[nodiscard]] bool locked(std::int64_t now_us) const;
  // Song position, in ticks, of the next clock expected.
  [[nodiscard]] std::int64_t next_tick() const { return next_tick_; }
  // Filtered time of the latest tick.
  [[nodiscard]] std::int64_t last_tick_time_us() const;
  // Predicted time of song position `tick` (fractional ticks allowed). The
  // period change per tick is extrapolated for one beat at most, then held.
  [[nodiscard]] std::int64_t predict_tick_time_us(double tick) const;

  // BeatClock: meaningful once locked(); before, the tempo is 120 bpm.
  [[nodiscard]] double tempo_bpm() const override;
  [[nodiscard]] int beats_per_bar() const override { return config_.beats_per_bar; }
  [[nodiscard]] double beat_at(std::int64_t time_us) const override;
  [[nodiscard]] std::int64_t time_of_beat_us(double beat) const override;

 private:
  void reset_filter(std::int64_t time_us);
  // Predicted offset from the latest filtered tick, in us, of the tick `ahead` ticks later.
  [[nodiscard]] double offset_of_ticks_ahead(double ahead) const;

  MidiClockFollowerConfig config_;
  bool running_ = false;
  std::int64_t next_tick_ = 0;
  std::int64_t origin_us_ = 0;    // filter times are relative to this, for precision
  std::int64_t last_raw_us_ = 0;  // unfiltered time of the latest tick
  int filter_ticks_ = 0;          // ticks since the filter restarted
  int jump_streak_ = 0;           // consecutive ticks far off the prediction, same side
  std::array<double, 3> x_{};     // tick time (us from origin), period (us), period change (us/tick)
  std::array<std::array<double, 3>, 3> p_{};  // covariance of x_
};

// Renders 24 ppqn MIDI clock and transport messages from an InternalClock,
// ahead of time, for a scheduled output (see MidiClockDriver). Transport and
// tempo calls are queued with their time (never earlier than what render()
// has already produced) and applied to the clock when rendering reaches it, so
// clocks before a change keep the old grid. While the master runs, change the
// tempo through it, not on the clock.
class MidiClockMaster {
 public:
  // `clock` must outlive the master.
  MidiClockMaster(InternalClock& clock, std::uint8_t port);

  // FA at `at_us`; beat 0 of the grid moves there. Throws std::logic_error
  // while running.
  void start(std::int64_t at_us);
  // FC at `at_us`; no clocks from then on. Throws std::logic_error while stopped.
  void stop(std::int64_t at_us);
  // FB at `at_us`, resuming where it stopped (or was located). Throws
  // std::logic_error while running.
  void resume(std::int64_t at_us);
  // F2 at `at_us`: the next resume() starts at this position. Throws
  // std::logic_error while running.
  void song_position(std::uint16_t sixteenths, std::int64_t at_us);
  // Throws std::invalid_argument for a tempo out of range.
  void set_tempo(double bpm, std::int64_t at_us);

  // Writes the messages due before `until_us` not yet rendered, in time order,
  // into `out`; returns how many. Call again when it fills `out`.
  std::size_t render(std::int64_t until_us, std::span<MidiEvent> out);

  // Running as of the latest transport call.
  [[nodiscard]] bool running() const { return running_requested_; }

 private:
  enum class Action : std::uint8_t { start, stop, resume, song_position, tempo };
  struct Change {
    std::int64_t time_us = 0;
    Action action = Action::start;
    double value = 0.0;  // tempo in bpm, or song position in sixteenths
  };
  static constexpr std::size_t kMaxChanges = 16;
  // Throws std::length_error when kMaxChanges are waiting.
  void enqueue(Action action, double value, std::int64_t at_us);
  // Applies one change to the grid; writes its MIDI message, if any, to `out`.
  bool apply(const Change& change, MidiEvent& out);

  InternalClock& clock_;
  std::uint8_t port_;
  bool running_requested_ = false;  // state after every queued change
  bool running_ = false;            // state at the render position
  std::int64_t next_tick_ = 0;      // song position of the next clock to render
  std::int64_t rendered_us_;        // everything before this has been rendered
  std::array<Change, kMaxChanges> changes_{};
  std::size_t change_count_ = 0;
};

}  // namespace tatumflow
