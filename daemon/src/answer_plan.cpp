// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/answer_plan.hpp"

#include <algorithm>
#include <cmath>

namespace tatumflow::daemon {

namespace {

MidiEvent channel_event(std::int64_t time_us, std::uint8_t status, std::uint8_t data1, std::uint8_t data2,
                        std::uint8_t port) {
  return MidiEvent{time_us,
                   {status, static_cast<std::uint8_t>(data1 & 0x7F), static_cast<std::uint8_t>(data2 & 0x7F)},
                   3,
                   port};
}

// Releases first, then controllers, then presses, so that a note ending where
// the next one of its pitch starts does not cut the new one.
int order_rank(const MidiEvent& event) {
  const int kind = event.status() & 0xF0;
  if (kind == 0x80) return 0;
  if (kind == 0xB0) return 1;
  return 2;
}

struct PlacedNote {
  double on_beat;
  double off_beat;
  std::uint8_t pitch;
  std::uint8_t velocity;
};

}  // namespace

int AnswerPlan::chunk_bar_count(int chunk) const { return std::min(chunk_bars, bars - chunk * chunk_bars); }

AnswerPlan plan_answer(const BarClock& clock, std::optional<std::int64_t> answer_bar,
                       std::int64_t call_end_us, std::int64_t ready_us, const AnswerShape& shape) {
  AnswerPlan plan;
  plan.bars = std::max(1, shape.bars);
  plan.chunk_bars = std::clamp(shape.chunk_bars, 1, plan.bars);
  plan.generator_beat_us = clock.beat_period_us();
  plan.start_bar = answer_bar ? *answer_bar : clock.first_bar_at_or_after(call_end_us);
  postpone_if_needed(plan, clock, ready_us, shape.ready_margin_us);
  return plan;
}

std::int64_t postpone_if_needed(AnswerPlan& plan, const BarClock& clock, std::int64_t ready_us,
                                std::int64_t margin_us) {
  if (clock.downbeat_us(plan.start_bar) - margin_us >= ready_us) return 0;
  const std::int64_t bar = clock.first_bar_at_or_after(ready_us + margin_us);
  const std::int64_t moved = bar - plan.start_bar;
  plan.start_bar = bar;
  return moved;
}

ChunkWindow chunk_window(const AnswerPlan& plan, int chunk, const BarClock& clock) {
  const std::int64_t first_bar = plan.chunk_first_bar(chunk);
  ChunkWindow window;
  window.start_beat = clock.downbeat_beat(first_bar);
  window.end_beat = clock.downbeat_beat(first_bar + plan.chunk_bar_count(chunk));
  window.start_us = clock.time_of_beat(window.start_beat);
  window.end_us = clock.time_of_beat(window.end_beat);
  window.generator_length_us = std::llround((window.end_beat - window.start_beat) * plan.generator_beat_us);
  return window;
}

Placement place_chunk(const AnswerPlan& plan, int chunk, const Performance& notes, const BarClock& clock,
                      std::int64_t now_us, const AnswerShape& shape, std::uint8_t channel, std::uint8_t port,
                      std::vector<MidiEvent>& out) {
  const ChunkWindow window = chunk_window(plan, chunk, clock);
  const double answer_end_beat = clock.downbeat_beat(plan.end_bar());
  const std::int64_t earliest_us = now_us + shape.ready_margin_us;
  const auto to_beats = [&](std::int64_t generator_us) {
    return static_cast<double>(generator_us) / plan.generator_beat_us;
  };

  std::vector<PlacedNote> placed;
  placed.reserve(notes.notes.size());
  for (const Note& note : notes.notes) {
    if (note.onset_us < 0 || note.onset_us >= window.generator_length_us) continue;
    double on = to_beats(note.onset_us);
    if (shape.grid_division > 0) on = std::round(on * shape.grid_division) / shape.grid_division;
    const double on_beat = window.start_beat + on;
    if (on_beat >= answer_end_beat) continue;
    const double off_beat = std::min(window.start_beat + to_beats(note.offset_us()), answer_end_beat);
    placed.push_back({on_beat, off_beat, static_cast<std::uint8_t>(note.pitch & 0x7F),
                      static_cast<std::uint8_t>(std::clamp<int>(note.velocity, 1, 127))});
  }
  // A note still sounding when its pitch is struck again ends there.
  std::sort(placed.begin(), placed.end(), [](const PlacedNote& a, const PlacedNote& b) {
    return a.pitch != b.pitch ? a.pitch < b.pitch : a.on_beat < b.on_beat;
  });
  for (std::size_t i = 1; i < placed.size(); ++i) {
    if (placed[i].pitch == placed[i - 1].pitch)
      placed[i - 1].off_beat = std::min(placed[i - 1].off_beat, placed[i].on_beat);
  }

  Placement result;
  const std::size_t first_event = out.size();
  const auto note_on = static_cast<std::uint8_t>(0x90 | (channel & 0x0F));
  const auto note_off = static_cast<std::uint8_t>(0x80 | (channel & 0x0F));
  const auto control = static_cast<std::uint8_t>(0xB0 | (channel & 0x0F));
  for (const PlacedNote& note : placed) {
    const std::int64_t on_us = clock.time_of_beat(note.on_beat);
    const std::int64_t off_us = clock.time_of_beat(note.off_beat);
    if (off_us <= on_us) continue;  // snapped or cut to nothing
    if (on_us < earliest_us) {
      ++result.late_notes;
      continue;
    }
    out.push_back(channel_event(on_us, note_on, note.pitch, note.velocity, port));
    out.push_back(channel_event(off_us, note_off, note.pitch, 0, port));
    ++result.notes;
  }
  for (const PedalChange& pedal : notes.pedals) {
    if (pedal.time_us < 0 || pedal.time_us >= window.generator_length_us) continue;
    const double beat = window.start_beat + to_beats(pedal.time_us);
    if (beat >= answer_end_beat) continue;
    const std::int64_t time_us = clock.time_of_beat(beat);
    if (time_us < earliest_us) continue;
    out.push_back(channel_event(time_us, control, 64, pedal.down ? 127 : 0, port));
  }
  std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(first_event), out.end(),
                   [](const MidiEvent& a, const MidiEvent& b) {
                     return a.time_us != b.time_us ? a.time_us < b.time_us : order_rank(a) < order_rank(b);
                   });
  result.skipped = result.notes == 0 && result.late_notes > 0;
  return result;
}

MidiEvent answer_end_event(const AnswerPlan& plan, const BarClock& clock, std::uint8_t channel,
                           std::uint8_t port) {
  return channel_event(clock.downbeat_us(plan.end_bar()), static_cast<std::uint8_t>(0xB0 | (channel & 0x0F)),
                       64, 0, port);
}

}  // namespace tatumflow::daemon
