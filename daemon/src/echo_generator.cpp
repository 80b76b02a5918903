// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/echo_generator.hpp"

#include <algorithm>
#include <cmath>

namespace tatumflow::daemon {

namespace {

int fold_into_piano(int pitch) {
  while (pitch < tokens::kMinPitch) pitch += 12;
  while (pitch > tokens::kMaxPitch) pitch -= 12;
  return pitch;
}

// How many copies of note `index` a density gives: Bresenham over the notes,
// so density 0.5 keeps every other note and 1.5 doubles every other one.
int copies(std::size_t index, double density) {
  const auto i = static_cast<double>(index);
  return static_cast<int>(std::floor((i + 1) * density) - std::floor(i * density));
}

class EchoStream final : public AnswerStream {
 public:
  explicit EchoStream(Performance echo) : echo_(std::move(echo)) {}

  Performance next_chunk(const ChunkSpec& chunk, const std::atomic<bool>&) override {
    Performance out;
    const std::int64_t end_us = position_us_ + chunk.length_us;
    for (const Note& note : echo_.notes) {
      if (note.onset_us < position_us_ || note.onset_us >= end_us) continue;
      Note shifted = note;
      shifted.onset_us -= position_us_;
      out.notes.push_back(shifted);
    }
    for (const PedalChange& pedal : echo_.pedals) {
      if (pedal.time_us < position_us_ || pedal.time_us >= end_us) continue;
      out.pedals.push_back({pedal.time_us - position_us_, pedal.down, pedal.channel});
    }
    out.length_us = chunk.length_us;
    position_us_ = end_us;
    return out;
  }

 private:
  Performance echo_;
  std::int64_t position_us_ = 0;
};

}  // namespace

Performance echo_of(const GenerationRequest& request, int transpose_semitones) {
  const Performance call = tokens::decode(request.call_tokens);
  const double density = std::max(0.0, static_cast<double>(request.controls.density));
  constexpr int kDoublings[] = {-12, 12, -24, 24};
  Performance echo;
  for (std::size_t i = 0; i < call.notes.size(); ++i) {
    const int count = copies(i, density);
    if (count == 0) continue;
    Note note = call.notes[i];
    // A pickup before the call's first downbeat lands on the answer's.
    note.onset_us = std::max<std::int64_t>(note.onset_us + request.call_phase_us, 0);
    const int pitch = fold_into_piano(note.pitch + transpose_semitones);
    note.pitch = static_cast<std::uint8_t>(pitch);
    echo.notes.push_back(note);
    for (int extra = 1; extra < count && extra <= 4; ++extra) {
      const int doubled = pitch + kDoublings[extra - 1];
      if (doubled < tokens::kMinPitch || doubled > tokens::kMaxPitch) continue;
      Note copy = note;
      copy.pitch = static_cast<std::uint8_t>(doubled);
      echo.notes.push_back(copy);
    }
  }
  for (const PedalChange& pedal : call.pedals) {
    echo.pedals.push_back({std::max<std::int64_t>(0, pedal.time_us + request.call_phase_us), pedal.down, 0});
  }
  echo.sort();
  return echo;
}

std::unique_ptr<AnswerStream> EchoGenerator::begin(const GenerationRequest& request) {
  return std::make_unique<EchoStream>(echo_of(request, transpose_semitones_));
}

}  // namespace tatumflow::daemon
