// SPDX-License-Identifier: GPL-3.0-or-later
// When and where an answer plays. An answer is `bars` bars starting on a
// downbeat, split into chunks of chunk_bars bars that the generator computes
// one after another; each chunk is placed on the beat grid as soon as it is
// ready, so the first notes sound while the rest is being computed.
//
// Rules (DESIGN.md §2):
//  * the answer starts on the first downbeat at or after the call's end (in
//    trading, exactly the bar after the call's last bar), unless the first
//    chunk cannot be ready by then: then on the first downbeat that can be met;
//  * a chunk is placed only where there is still time: notes that would start
//    less than ready_margin_us from now are dropped and counted (the chunk is
//    shortened; with none left it is skipped), never played late;
//  * notes start on the grid (1/grid_division beat), and every note ends, and
//    the pedal is released, by the end of the answer's last bar.
//
// The generator works in microseconds at the tempo the plan was made at
// (`generator_beat_us`); placing a chunk turns those times into beats, and the
// beats into times with the clock as it is then, so a tempo change after
// planning is followed.
//
// Pure functions of their arguments: event-loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tatumflow/daemon/bar_clock.hpp"
#include "tatumflow/protocol/midi_event.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::daemon {

struct AnswerShape {
  int bars = 4;
  int chunk_bars = 1;
  std::int64_t ready_margin_us = 5'000;
  int grid_division = 12;  // 0: no snapping
};

struct AnswerPlan {
  std::int64_t start_bar = 0;
  int bars = 4;
  int chunk_bars = 1;
  double generator_beat_us = 500'000.0;

  [[nodiscard]] int chunk_count() const { return (bars + chunk_bars - 1) / chunk_bars; }
  [[nodiscard]] std::int64_t chunk_first_bar(int chunk) const {
    return start_bar + std::int64_t{chunk} * chunk_bars;
  }
  [[nodiscard]] int chunk_bar_count(int chunk) const;
  [[nodiscard]] std::int64_t end_bar() const { return start_bar + bars; }
};

// One chunk on the clock as it is now.
struct ChunkWindow {
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  double start_beat = 0.0;
  double end_beat = 0.0;
  std::int64_t generator_length_us = 0;  // the chunk's length in the generator's time
};

// Plans an answer to a call that ends at `call_end_us`. `answer_bar`, when
// known (trading), is where it should start. `ready_us` is the earliest time
// the first chunk can be ready. // event-loop thread
[[nodiscard]] AnswerPlan plan_answer(const BarClock& clock, std::optional<std::int64_t> answer_bar,
                                     std::int64_t call_end_us, std::int64_t ready_us,
                                     const AnswerShape& shape);

// Moves the answer to the first downbeat at least margin_us after `ready_us`
// if its start cannot be met any more; returns the number of bars it moved
// (0: the start stands). // event-loop thread
std::int64_t postpone_if_needed(AnswerPlan& plan, const BarClock& clock, std::int64_t ready_us,
                                std::int64_t margin_us);

[[nodiscard]] ChunkWindow chunk_window(const AnswerPlan& plan, int chunk, const BarClock& clock);

struct Placement {
  int notes = 0;         // placed
  int late_notes = 0;    // dropped: would have started too late
  bool skipped = false;  // the chunk had notes and none could be placed
};

// Appends the MIDI events of chunk `chunk` to `out`, sorted by time (releases
// before presses at the same time). `notes` are the generator's, in its time
// from the chunk's start; notes starting outside the chunk are left to the
// chunk that owns their time. // event-loop thread
Placement place_chunk(const AnswerPlan& plan, int chunk, const Performance& notes, const BarClock& clock,
                      std::int64_t now_us, const AnswerShape& shape, std::uint8_t channel, std::uint8_t port,
                      std::vector<MidiEvent>& out);

// The event that closes an answer: sustain off at the end of its last bar
// (every note already ends there). // event-loop thread
[[nodiscard]] MidiEvent answer_end_event(const AnswerPlan& plan, const BarClock& clock, std::uint8_t channel,
                                         std::uint8_t port);

}  // namespace tatumflow::daemon
