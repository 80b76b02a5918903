// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/model_generator.hpp"

#include <chrono>

#include "tatumflow/engine/random.hpp"

namespace tatumflow::daemon {

namespace {

// squash(x, c) = x / (x + c), as theory_features.hpp defines it.
float rescale_squashed(float squashed, float c, float factor) {
  if (!(squashed > 0.0f && squashed < 1.0f)) return squashed;
  const float rate = c * squashed / (1.0f - squashed);
  const float scaled = rate * factor;
  return scaled / (scaled + c);
}

class ModelStream final : public AnswerStream {
 public:
  ModelStream(std::shared_ptr<const model::ModelContext> model, const GenerationRequest& request,
              model::GenerationControls controls)
      : model_(std::move(model)),
        context_(request.call_tokens),
        style_(request.style),
        controls_(std::move(controls)) {}

  Performance next_chunk(const ChunkSpec& chunk, const std::atomic<bool>& cancel) override {
    const auto deadline = std::chrono::steady_clock::time_point(std::chrono::microseconds(chunk.deadline_us));
    const model::GeneratedChunk generated =
        model::generate_chunk(*model_, state_, context_, style_, controls_,
                              static_cast<double>(chunk.length_us) * 1e-6, &cancel, deadline);
    context_.insert(context_.end(), generated.tokens.begin(), generated.tokens.end());
    Performance out;
    out.notes = generated.notes;
    out.pedals = generated.pedals;
    out.length_us = generated.length_us;
    return out;
  }

 private:
  std::shared_ptr<const model::ModelContext> model_;
  model::GenerationState state_;
  std::vector<tokens::Token> context_;
  StyleLatent style_;
  model::GenerationControls controls_;
};

}  // namespace

TheoryFeatures scale_density(TheoryFeatures features, float density) {
  // rhythm 55: squash(notes/s, 10), 56: squash(onset groups/s, 6); melody 123: squash(melody notes/s, 4).
  features.rhythm[rhythm_index::kScalars + 3] =
      rescale_squashed(features.rhythm[rhythm_index::kScalars + 3], 10.0f, density);
  features.rhythm[rhythm_index::kScalars + 4] =
      rescale_squashed(features.rhythm[rhythm_index::kScalars + 4], 6.0f, density);
  features.melody[melody_index::kScalars + 9] =
      rescale_squashed(features.melody[melody_index::kScalars + 9], 4.0f, density);
  features.notes_per_second *= density;
  return features;
}

ModelGenerator::ModelGenerator(std::shared_ptr<const model::ModelContext> model,
                               model::GenerationControls base)
    : model_(std::move(model)), base_(std::move(base)) {}

std::unique_ptr<AnswerStream> ModelGenerator::begin(const GenerationRequest& request) {
  model::GenerationControls controls = base_;
  controls.temperature = request.controls.temperature;
  controls.creativity = request.controls.creativity;
  controls.use_style = true;
  controls.seed = mix64(request.generation ^ (std::uint64_t{request.session} << 48));
  controls.theory = std::make_shared<const TheoryFeatures>(
      scale_density(model::theory_of(request.call_tokens), request.controls.density));
  return std::make_unique<ModelStream>(model_, request, std::move(controls));
}

StyleLatent ModelGenerator::encode(std::span<const tokens::Token> tokens) {
  return model::encode_style(*model_, tokens);
}

}  // namespace tatumflow::daemon
