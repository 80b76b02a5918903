// SPDX-License-Identifier: GPL-3.0-or-later
// The neural model behind the daemon's seams: ChunkGenerator (answers, chunk
// by chunk, with the request's deadlines and cancel flag) and StyleEncoder.
// Built into tatumflow_daemon_model only when the model library is
// (TATUMFLOW_BUILD_MODEL); no torch here, only the model's torch-free API.
//
// Each answer gets its own GenerationState, so answers of different sessions,
// or a cancelled one still finishing, never share a cache. The style noise seed
// is fixed per answer, so every chunk of an answer uses the same style sample.
// Density, which the model has no control for, scales the call's note-rate
// features in the theory conditioning.
#pragma once

#include <memory>

#include "tatumflow/daemon/generation.hpp"
#include "tatumflow/engine/model_api.hpp"

namespace tatumflow::daemon {

class ModelGenerator final : public ChunkGenerator, public StyleEncoder {
 public:
  // `base` supplies what a request does not set (mode, top-k/p, diffusion
  // steps, guidance). // event-loop thread
  ModelGenerator(std::shared_ptr<const model::ModelContext> model, model::GenerationControls base);

  // // inference thread (several at once)
  [[nodiscard]] std::unique_ptr<AnswerStream> begin(const GenerationRequest& request) override;
  [[nodiscard]] StyleLatent encode(std::span<const tokens::Token> tokens) override;

 private:
  std::shared_ptr<const model::ModelContext> model_;
  model::GenerationControls base_;
};

// The theory features with the note-rate scalars scaled by `density` (the
// squashed rates are unsquashed, scaled and squashed again). // any thread
[[nodiscard]] TheoryFeatures scale_density(TheoryFeatures features, float density);

}  // namespace tatumflow::daemon
