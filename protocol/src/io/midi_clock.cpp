// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/midi_clock.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace tatumflow {

namespace {

constexpr double kUsPerMinute = 60'000'000.0;
constexpr double kDefaultPeriodUs = kUsPerMinute / (120.0 * kMidiClockPpqn);
constexpr double kMinPeriodUs = kUsPerMinute / (kMaxTempoBpm * kMidiClockPpqn);
constexpr double kMaxPeriodUs = kUsPerMinute / (kMinTempoBpm * kMidiClockPpqn);

// First whole multiple of `unit` beats at or after `time_us`. Beat times are
// whole microseconds, so a beat less than half a microsecond before counts as at.
std::int64_t next_multiple_time_us(const BeatClock& clock, std::int64_t time_us, double unit) {
  const double half_us_in_beats = 0.5 * clock.tempo_bpm() / kUsPerMinute;
  const double beat = clock.beat_at(time_us) - half_us_in_beats;
  return clock.time_of_beat_us(std::ceil(beat / unit) * unit);
}

}  // namespace

void check_tempo_bpm(double bpm) {
  if (!(bpm >= kMinTempoBpm && bpm <= kMaxTempoBpm)) {
    throw std::invalid_argument("tempo " + std::to_string(bpm) + " bpm is outside " +
                                std::to_string(static_cast<int>(kMinTempoBpm)) + ".." +
                                std::to_string(static_cast<int>(kMaxTempoBpm)) + " bpm");
  }
}

void check_beats_per_bar(int beats) {
  if (beats < 1 || beats > kMaxBeatsPerBar) {
    throw std::invalid_argument("beats per bar " + std::to_string(beats) + " is outside 1.." +
                                std::to_string(kMaxBeatsPerBar));
  }
}

std::int64_t next_beat_time_us(const BeatClock& clock, std::int64_t time_us) {
  return next_multiple_time_us(clock, time_us, 1.0);
}

std::int64_t next_downbeat_time_us(const BeatClock& clock, std::int64_t time_us) {
  return next_multiple_time_us(clock, time_us, static_cast<double>(clock.beats_per_bar()));
}

std::int64_t downbeat_time_us(const BeatClock& clock, std::int64_t bar) {
  return clock.time_of_beat_us(static_cast<double>(bar) * clock.beats_per_bar());
}

// ---------------------------------------------------------------------------
// InternalClock

InternalClock::InternalClock(double tempo_bpm, int beats_per_bar, std::int64_t origin_us)
    : tempo_bpm_(tempo_bpm), beats_per_bar_(beats_per_bar), anchor_us_(origin_us) {
  check_tempo_bpm(tempo_bpm);
  check_beats_per_bar(beats_per_bar);
}

void InternalClock::set_tempo(double bpm, std::int64_t at_us) {
  check_tempo_bpm(bpm);
  anchor_beat_ = beat_at(at_us);
  anchor_us_ = at_us;
  tempo_bpm_ = bpm;
}

void InternalClock::set_beats_per_bar(int beats) {
  check_beats_per_bar(beats);
  beats_per_bar_ = beats;
}

void InternalClock::locate(double beat, std::int64_t at_us) {
  anchor_beat_ = beat;
  anchor_us_ = at_us;
}

double InternalClock::beat_at(std::int64_t time_us) const {
  return anchor_beat_ + static_cast<double>(time_us - anchor_us_) * tempo_bpm_ / kUsPerMinute;
}

std::int64_t InternalClock::time_of_beat_us(double beat) const {
  return anchor_us_ + std::llround((beat - anchor_beat_) * kUsPerMinute / tempo_bpm_);
}

// ---------------------------------------------------------------------------
// MidiClockFollower

MidiClockFollower::MidiClockFollower(MidiClockFollowerConfig config) : config_(config) {
  if (!(config_.jitter_us > 0.0))
    throw std::invalid_argument("MIDI clock follower: jitter_us must be positive");
  if (!(config_.tempo_agility > 0.0)) {
    throw std::invalid_argument("MIDI clock follower: tempo_agility must be positive");
  }
  if (config_.lock_ticks < 2)
    throw std::invalid_argument("MIDI clock follower: lock_ticks must be at least 2");
  if (config_.timeout_us <= 0)
    throw std::invalid_argument("MIDI clock follower: timeout_us must be positive");
  check_beats_per_bar(config_.beats_per_bar);
  x_ = {0.0, kDefaultPeriodUs, 0.0};
}

bool MidiClockFollower::on_event(const MidiEvent& event) {
  switch (event.status()) {
    case 0xF8:
      on_tick(event.time_us);
      return true;
    case 0xFA:
      on_start();
      return true;
    case 0xFB:
      on_continue();
      return true;
    case 0xFC:
      on_stop();
      return true;
    case 0xF2:
      if (event.size != 3) return false;
      on_song_position(static_cast<std::uint16_t>(event.bytes[1] | (event.bytes[2] << 7)));
      return true;
    default:
      return false;
  }
}

void MidiClockFollower::on_start() {
  running_ = true;
  next_tick_ = 0;
}

void MidiClockFollower::on_continue() { running_ = true; }

void MidiClockFollower::on_stop() { running_ = false; }

void MidiClockFollower::on_song_position(std::uint16_t sixteenths) {
  next_tick_ = static_cast<std::int64_t>(sixteenths) * kTicksPerSixteenth;
}

void MidiClockFollower::set_beats_per_bar(int beats) {
  check_beats_per_bar(beats);
  config_.beats_per_bar = beats;
}

void MidiClockFollower::reset_filter(std::int64_t time_us) {
  const double period =
      filter_ticks_ > 0 ? std::clamp(static_cast<double>(time_us - last_raw_us_), kMinPeriodUs, kMaxPeriodUs)
                        : kDefaultPeriodUs;
  origin_us_ = time_us;
  x_ = {0.0, period, 0.0};
  // Time as measured, period and its change unknown: wide enough that the
  // next tick sets the period almost alone.
  const double r = config_.jitter_us * config_.jitter_us / 3.0;
  p_ = {{{r, 0.0, 0.0}, {0.0, 1e8, 0.0}, {0.0, 0.0, 1e4}}};
  filter_ticks_ = 1;
  jump_streak_ = 0;
}

void MidiClockFollower::on_tick(std::int64_t time_us) {
  const bool timed_out = filter_ticks_ == 0 || time_us - last_raw_us_ > config_.timeout_us;
  if (timed_out) {
    filter_ticks_ = 0;
    reset_filter(time_us);
  } else {
    // Predict one tick ahead: x = F x, P = F P F' + Q with F the constant
    // period-change model and Q its white-jerk process noise.
    constexpr double F[3][3] = {{1.0, 1.0, 0.5}, {0.0, 1.0, 1.0}, {0.0, 0.0, 1.0}};
    constexpr double Qshape[3][3] = {
        {1.0 / 20.0, 1.0 / 8.0, 1.0 / 6.0}, {1.0 / 8.0, 1.0 / 3.0, 1.0 / 2.0}, {1.0 / 6.0, 1.0 / 2.0, 1.0}};
    std::array<double, 3> x{};
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) x[i] += F[i][j] * x_[j];
    }
    std::array<std::array<double, 3>, 3> fp{};
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        for (int k = 0; k < 3; ++k) fp[i][j] += F[i][k] * p_[k][j];
      }
    }
    std::array<std::array<double, 3>, 3> p{};
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) {
        for (int k = 0; k < 3; ++k) p[i][j] += fp[i][k] * F[j][k];
        p[i][j] += config_.tempo_agility * Qshape[i][j];
      }
    }
    const double r = config_.jitter_us * config_.jitter_us / 3.0;
    const double innovation = static_cast<double>(time_us - origin_us_) - x[0];
    const double s = p[0][0] + r;
    const double jump_threshold = std::max(8.0 * std::sqrt(s), 0.25 * x[1]);
    if (std::abs(innovation) > jump_threshold) {
      // A lone outlier is skipped (the state still moves on by one tick); a
      // run of them on one side is a tempo jump.
      const int side = innovation > 0 ? 1 : -1;
      jump_streak_ = jump_streak_ * side > 0 ? jump_streak_ + side : side;
      x_ = x;
      p_ = p;
      if (std::abs(jump_streak_) >= 3) reset_filter(time_us);
    } else {
      jump_streak_ = 0;
      std::array<double, 3> gain{};
      for (int i = 0; i < 3; ++i) gain[i] = p[i][0] / s;
      for (int i = 0; i < 3; ++i) x_[i] = x[i] + gain[i] * innovation;
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) p_[i][j] = p[i][j] - gain[i] * p[0][j];
      }
      ++filter_ticks_;
    }
  }
  last_raw_us_ = time_us;
  if (running_) ++next_tick_;
}

bool MidiClockFollower::locked(std::int64_t now_us) const {
  return filter_ticks_ >= config_.lock_ticks && now_us - last_raw_us_ <= config_.timeout_us;
}

std::int64_t MidiClockFollower::last_tick_time_us() const { return origin_us_ + std::llround(x_[0]); }

double MidiClockFollower::offset_of_ticks_ahead(double ahead) const {
  const double held =
      std::clamp(ahead, -static_cast<double>(kMidiClockPpqn), static_cast<double>(kMidiClockPpqn));
  return x_[1] * ahead + x_[2] * (held * held / 2.0 + held * (ahead - held));
}

std::int64_t MidiClockFollower::predict_tick_time_us(double tick) const {
  const double ahead = tick - static_cast<double>(next_tick_ - 1);
  return last_tick_time_us() + std::llround(offset_of_ticks_ahead(ahead));
}

double MidiClockFollower::tempo_bpm() const {
  return kUsPerMinute / (std::clamp(x_[1], kMinPeriodUs, kMaxPeriodUs) * kMidiClockPpqn);
}

double MidiClockFollower::beat_at(std::int64_t time_us) const {
  // Newton on the (monotonic) prediction, starting from the linear guess.
  const double target = static_cast<double>(time_us - origin_us_) - x_[0];
  const double period = std::clamp(x_[1], kMinPeriodUs, kMaxPeriodUs);
  double ahead = target / period;
  for (int i = 0; i < 4; ++i) {
    const double held =
        std::clamp(ahead, -static_cast<double>(kMidiClockPpqn), static_cast<double>(kMidiClockPpqn));
    const double slope = std::max(x_[1] + x_[2] * held, period / 4.0);
    ahead -= (offset_of_ticks_ahead(ahead) - target) / slope;
  }
  return (static_cast<double>(next_tick_ - 1) + ahead) / kMidiClockPpqn;
}

std::int64_t MidiClockFollower::time_of_beat_us(double beat) const {
  return predict_tick_time_us(beat * kMidiClockPpqn);
}

// ---------------------------------------------------------------------------
// MidiClockMaster

MidiClockMaster::MidiClockMaster(InternalClock& clock, std::uint8_t port)
    : clock_(clock), port_(port), rendered_us_(std::numeric_limits<std::int64_t>::min()) {}

void MidiClockMaster::enqueue(Action action, double value, std::int64_t at_us) {
  if (change_count_ == kMaxChanges) {
    throw std::length_error("MIDI clock master: " + std::to_string(kMaxChanges) +
                            " transport/tempo changes are already waiting to be rendered");
  }
  std::int64_t time_us = std::max(at_us, rendered_us_);
  if (change_count_ > 0) time_us = std::max(time_us, changes_[change_count_ - 1].time_us);
  changes_[change_count_++] = Change{time_us, action, value};
}

void MidiClockMaster::start(std::int64_t at_us) {
  if (running_requested_) throw std::logic_error("MIDI clock master: start while running (stop first)");
  enqueue(Action::start, 0.0, at_us);
  running_requested_ = true;
}

void MidiClockMaster::stop(std::int64_t at_us) {
  if (!running_requested_) throw std::logic_error("MIDI clock master: stop while stopped");
  enqueue(Action::stop, 0.0, at_us);
  running_requested_ = false;
}

void MidiClockMaster::resume(std::int64_t at_us) {
  if (running_requested_) throw std::logic_error("MIDI clock master: continue while running");
  enqueue(Action::resume, 0.0, at_us);
  running_requested_ = true;
}

void MidiClockMaster::song_position(std::uint16_t sixteenths, std::int64_t at_us) {
  if (running_requested_)
    throw std::logic_error("MIDI clock master: song position while running (stop first)");
  if (sixteenths > 0x3FFF) {
    throw std::invalid_argument("MIDI clock master: song position " + std::to_string(sixteenths) +
                                " exceeds 16383 sixteenths");
  }
  enqueue(Action::song_position, sixteenths, at_us);
}

void MidiClockMaster::set_tempo(double bpm, std::int64_t at_us) {
  check_tempo_bpm(bpm);
  enqueue(Action::tempo, bpm, at_us);
}

bool MidiClockMaster::apply(const Change& change, MidiEvent& out) {
  const auto message = [&](std::uint8_t status, std::uint8_t data1, std::uint8_t data2, std::uint8_t size) {
    out = MidiEvent{change.time_us, {status, data1, data2}, size, port_};
    return true;
  };
  switch (change.action) {
    case Action::start:
      clock_.locate(0.0, change.time_us);
      next_tick_ = 0;
      running_ = true;
      return message(0xFA, 0, 0, 1);
    case Action::stop:
      running_ = false;
      return message(0xFC, 0, 0, 1);
    case Action::resume:
      clock_.locate(static_cast<double>(next_tick_) / kMidiClockPpqn, change.time_us);
      running_ = true;
      return message(0xFB, 0, 0, 1);
    case Action::song_position: {
      const auto sixteenths = static_cast<std::uint16_t>(change.value);
      next_tick_ = static_cast<std::int64_t>(sixteenths) * kTicksPerSixteenth;
      return message(0xF2, static_cast<std::uint8_t>(sixteenths & 0x7F),
                     static_cast<std::uint8_t>(sixteenths >> 7), 3);
    }
    case Action::tempo:
      clock_.set_tempo(change.value, change.time_us);
      return false;
  }
  return false;
}

std::size_t MidiClockMaster::render(std::int64_t until_us, std::span<MidiEvent> out) {
  constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
  std::size_t count = 0;
  while (count < out.size()) {
    const std::int64_t tick_us =
        running_ ? clock_.time_of_beat_us(static_cast<double>(next_tick_) / kMidiClockPpqn) : kNever;
    const std::int64_t change_us = change_count_ > 0 ? changes_[0].time_us : kNever;
    if (std::min(tick_us, change_us) >= until_us) {
      rendered_us_ = std::max(rendered_us_, until_us);
      return count;
    }
    if (change_us <= tick_us) {
      const Change change = changes_[0];
      std::copy(changes_.begin() + 1, changes_.begin() + static_cast<std::ptrdiff_t>(change_count_),
                changes_.begin());
      --change_count_;
      if (apply(change, out[count])) ++count;
      rendered_us_ = std::max(rendered_us_, change.time_us);
    } else {
      out[count++] = MidiEvent{tick_us, {0xF8, 0, 0}, 1, port_};
      ++next_tick_;
      rendered_us_ = std::max(rendered_us_, tick_us);
    }
  }
  return count;
}

}  // namespace tatumflow
