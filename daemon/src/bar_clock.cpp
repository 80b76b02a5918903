// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/bar_clock.hpp"

#include <algorithm>
#include <cmath>

namespace tatumflow::daemon {

namespace {

// The follower locking further than this from where the internal grid is
// means a different position (Start, Song Position), not drift.
constexpr double kJumpBeats = 0.25;

}  // namespace

BarClock::BarClock(double tempo_bpm, int beats_per_bar, std::int64_t origin_us)
    : internal_(tempo_bpm, beats_per_bar, origin_us) {}

void BarClock::set_tempo(double tempo_bpm, std::int64_t at_us) { internal_.set_tempo(tempo_bpm, at_us); }

void BarClock::set_beats_per_bar(int beats_per_bar) {
  internal_.set_beats_per_bar(beats_per_bar);
  if (follower_ != nullptr) follower_->set_beats_per_bar(beats_per_bar);
  ++epoch_;
}

void BarClock::follow(MidiClockFollower* follower) {
  if (follower == follower_) return;
  if (follower != nullptr) follower->set_beats_per_bar(internal_.beats_per_bar());
  follower_ = follower;
  locked_ = false;
}

void BarClock::update(std::int64_t now_us) {
  const bool lock = follower_ != nullptr && follower_->running() && follower_->locked(now_us);
  if (lock) {
    const double beat = follower_->beat_at(now_us);
    if (!locked_ && std::abs(beat - internal_.beat_at(now_us)) > kJumpBeats) ++epoch_;
    // The internal clock shadows the follower, so losing the lock is seamless.
    internal_.set_tempo(std::clamp(follower_->tempo_bpm(), kMinTempoBpm, kMaxTempoBpm), now_us);
    internal_.locate(beat, now_us);
  }
  locked_ = lock;
}

const BeatClock& BarClock::active() const {
  if (locked_) return *follower_;
  return internal_;
}

BarPosition BarClock::position_at(std::int64_t time_us) const {
  std::int64_t bar = first_bar_at_or_after(time_us);
  if (downbeat_us(bar) > time_us) --bar;
  return {bar, std::max(0.0, beat_at(time_us) - downbeat_beat(bar))};
}

std::int64_t BarClock::first_bar_at_or_after(std::int64_t time_us) const {
  auto bar = static_cast<std::int64_t>(std::floor(beat_at(time_us) / beats_per_bar()));
  // Rounding in beat_at must not put a downbeat on the wrong side of time_us.
  while (downbeat_us(bar) < time_us) ++bar;
  while (downbeat_us(bar - 1) >= time_us) --bar;
  return bar;
}

}  // namespace tatumflow::daemon
