// SPDX-License-Identifier: GPL-3.0-or-later
// The pending side of a frame-accurate MIDI output: events with a target time,
// kept sorted in a fixed array, handed out period by period at their frame
// offset. Pure logic with no JACK in it, so it is tested with synthetic
// periods; JackMidiClient runs it inside the JACK process callback, hence no
// function here allocates, locks or throws.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow {

// One audio period on the steady clock: frames [0, frames) span
// [start_us, end_us). JACK's DLL gives both ends (jack_get_cycle_times), and
// mapping with their difference rather than the nominal period keeps
// consecutive periods continuous. // any thread, real-time safe
struct PeriodTiming {
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  std::uint32_t frames = 0;

  // Nearest frame offset of `time_us` (negative before the period, >= frames after it).
  [[nodiscard]] std::int64_t offset_of(std::int64_t time_us) const noexcept {
    const double frames_per_us = static_cast<double>(frames) / static_cast<double>(end_us - start_us);
    return std::llround(static_cast<double>(time_us - start_us) * frames_per_us);
  }
  // Time of the frame at `offset_frames`.
  [[nodiscard]] std::int64_t time_of(std::int64_t offset_frames) const noexcept {
    const double us_per_frame = static_cast<double>(end_us - start_us) / static_cast<double>(frames);
    return start_us + std::llround(static_cast<double>(offset_frames) * us_per_frame);
  }
};

class MidiFrameScheduler {
 public:
  static constexpr std::size_t kCapacity = 2048;

  // Inserts after every pending event with the same or an earlier time, so
  // events sharing a time keep their order. False when full. // real-time thread
  bool insert(const MidiEvent& event) noexcept {
    if (size_ == kCapacity) return false;
    auto* const end = pending_.data() + size_;
    auto* const at = std::upper_bound(pending_.data(), end, event.time_us,
                                      [](std::int64_t t, const MidiEvent& e) { return t < e.time_us; });
    std::copy_backward(at, end, end + 1);
    *at = event;
    ++size_;
    return true;
  }

  // Hands out, in time order, every event due before the end of `period`:
  // `write(offset_frames, event)` writes one and returns false when the port
  // buffer is full (the rest stays pending). Past events go out at offset 0 and
  // count as late. Returns the number written. // real-time thread
  template <class Write>
  std::size_t take_due(const PeriodTiming& period, Write&& write) noexcept {
    std::size_t taken = 0;
    while (taken < size_) {
      const MidiEvent& event = pending_[taken];
      const std::int64_t offset_frames = period.offset_of(event.time_us);
      if (offset_frames >= static_cast<std::int64_t>(period.frames)) break;
      if (!write(static_cast<std::uint32_t>(std::max<std::int64_t>(offset_frames, 0)), event)) break;
      if (offset_frames < 0) {
        late_.fetch_add(1, std::memory_order_relaxed);
        std::uint64_t worst = worst_late_frames_.load(std::memory_order_relaxed);
        const auto late_frames = static_cast<std::uint64_t>(-offset_frames);
        if (late_frames > worst) worst_late_frames_.store(late_frames, std::memory_order_relaxed);
      }
      ++taken;
    }
    std::copy(pending_.begin() + static_cast<std::ptrdiff_t>(taken),
              pending_.begin() + static_cast<std::ptrdiff_t>(size_), pending_.begin());
    size_ -= taken;
    size_seen_.store(size_, std::memory_order_relaxed);
    return taken;
  }

  // // real-time thread
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // The size after the last take_due. // any thread
  [[nodiscard]] std::size_t size_seen() const noexcept { return size_seen_.load(std::memory_order_relaxed); }
  // // any thread
  [[nodiscard]] std::uint64_t late() const noexcept { return late_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t worst_late_frames() const noexcept {
    return worst_late_frames_.load(std::memory_order_relaxed);
  }

 private:
  std::array<MidiEvent, kCapacity> pending_{};
  std::size_t size_ = 0;
  std::atomic<std::size_t> size_seen_{0};
  std::atomic<std::uint64_t> late_{0};
  std::atomic<std::uint64_t> worst_late_frames_{0};
};

}  // namespace tatumflow
