// SPDX-License-Identifier: GPL-3.0-or-later
// A rule-based answer engine that needs no model (`daemon.engine = "echo"`):
// it answers a call with the call itself, transposed (a fourth up by default,
// folded by octaves into the piano's range), on the call's own phrasing (the
// call's first downbeat becomes the answer's first downbeat), thinned or
// thickened with octave doublings by the density control. Temperature and
// style do not affect it. It checks MIDI wiring, timing and trading on stage
// without a GPU, and gives tests a generator whose output follows from its
// input.
#pragma once

#include <memory>

#include "tatumflow/daemon/generation.hpp"

namespace tatumflow::daemon {

class EchoGenerator final : public ChunkGenerator {
 public:
  explicit EchoGenerator(int transpose_semitones = 5) : transpose_semitones_(transpose_semitones) {}
  // Decodes the call; stateless, so any number of inference threads may call it. // inference thread
  [[nodiscard]] std::unique_ptr<AnswerStream> begin(const GenerationRequest& request) override;

 private:
  int transpose_semitones_;
};

// The whole echo of a call, answer time 0 being the answer's first downbeat
// (what EchoGenerator's stream hands out chunk by chunk). // any non-real-time thread
[[nodiscard]] Performance echo_of(const GenerationRequest& request, int transpose_semitones);

}  // namespace tatumflow::daemon
