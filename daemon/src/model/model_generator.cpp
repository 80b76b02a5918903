// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/model_generator.hpp"

#include <chrono>
#include <string>

#include "tatumflow/daemon/continuation_stream.hpp"
#include "tatumflow/engine/random.hpp"
#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow::daemon {

namespace {

// squash(x, c) = x / (x + c), as theory_features.hpp defines it.
float rescale_squashed(float squashed, float c, float factor) {
  if (!(squashed > 0.0f && squashed < 1.0f)) return squashed;
  const float rate = c * squashed / (1.0f - squashed);
  const float scaled = rate * factor;
  return scaled / (scaled + c);
}

// model::generate_chunk as the stream's continuer; the answer's own state
// (attention cache, style, controls with a fixed seed).
class ModelContinuer final : public Continuer {
 public:
  ModelContinuer(ModelGenerator& generator, const StyleLatent& style, model::GenerationControls controls)
      : generator_(generator), model_(generator.current()), style_(style), controls_(std::move(controls)) {}

  Continuation next(std::span<const tokens::Token> context, std::int64_t length_us, std::int64_t stop_us,
                    const std::atomic<bool>& cancel) override {
    const auto stop = std::chrono::steady_clock::time_point(std::chrono::microseconds(stop_us));
    const double seconds = static_cast<double>(length_us) * 1e-6;
    model::GeneratedChunk generated;
    try {
      use_current();
      generated = run(context, seconds, cancel, stop);
    } catch (const std::exception& error) {
      if (!generator_.fall_back_from(*model_, error)) throw;
      use_current();
      // The failed step again on the CPU, unless its chunk could no longer be
      // handed over in time: then the chunk stays silent.
      if (steady_now_us() >= stop_us) {
        Continuation skipped;
        skipped.stopped = true;
        return skipped;
      }
      generated = run(context, seconds, cancel, stop);
    }
    Continuation out;
    out.tokens = std::move(generated.tokens);
    out.notes = std::move(generated.notes);
    out.pedals = std::move(generated.pedals);
    out.length_us = generated.length_us;
    out.stopped = generated.cancelled || generated.deadline_missed;
    return out;
  }

 private:
  // After a fallback (this answer's or another's): the CPU copy, with a fresh
  // cache, as the old one lives on the failed device.
  void use_current() {
    std::shared_ptr<const model::ModelContext> now = generator_.current();
    if (now == model_) return;
    model_ = std::move(now);
    state_ = model::GenerationState();
  }

  model::GeneratedChunk run(std::span<const tokens::Token> context, double seconds,
                            const std::atomic<bool>& cancel, std::chrono::steady_clock::time_point stop) {
    generator_.count_chunk(*model_);
    return model::generate_chunk(*model_, state_, context, style_, controls_, seconds, &cancel, stop);
  }

  ModelGenerator& generator_;
  std::shared_ptr<const model::ModelContext> model_;
  model::GenerationState state_;
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
                               model::GenerationControls base, Logger& log, ModelGeneratorOptions options)
    : model_(std::move(model)),
      base_(std::move(base)),
      log_(log),
      options_(options),
      can_fall_back_(model_->info().device != "cpu" || options.inject_device_failure_after_chunks > 0) {}

double ModelGenerator::warm_up() {
  const std::int64_t started_us = steady_now_us();
  // Two bars of a C major arpeggio at 120 bpm.
  Performance phrase;
  const std::uint8_t pitches[] = {60, 64, 67, 72};
  for (int i = 0; i < 16; ++i) {
    phrase.notes.push_back({i * 250'000, 200'000, pitches[i % 4], 80});
  }
  const std::vector<tokens::Token> call = tokens::encode(phrase, {.add_sos = true, .add_eos = false});
  model::GenerationControls controls = base_;
  controls.theory = std::make_shared<const TheoryFeatures>(model::theory_of(call));
  const auto answer = [&](const model::ModelContext& model) {
    model::GenerationState state;
    (void)model::generate_chunk(model, state, call, model::encode_style(model, call), controls, 1.0);
  };
  try {
    answer(*model_);
  } catch (const std::exception& error) {
    if (!fall_back_from(*model_, error)) throw;
    answer(*current());
  }
  return double(steady_now_us() - started_us) / 1000.0;
}

std::unique_ptr<AnswerStream> ModelGenerator::begin(const GenerationRequest& request) {
  model::GenerationControls controls = base_;
  controls.temperature = request.controls.temperature;
  controls.creativity = request.controls.creativity;
  controls.use_style = true;
  controls.seed = mix64(request.generation ^ (std::uint64_t{request.session} << 48));
  controls.theory = std::make_shared<const TheoryFeatures>(
      scale_density(model::theory_of(request.call_tokens), request.controls.density));
  return std::make_unique<ContinuationStream>(
      std::make_unique<ModelContinuer>(*this, request.style, std::move(controls)), request.call_tokens);
}

StyleLatent ModelGenerator::encode(std::span<const tokens::Token> tokens) {
  const std::shared_ptr<const model::ModelContext> model = current();
  try {
    return model::encode_style(*model, tokens);
  } catch (const std::exception& error) {
    if (!fall_back_from(*model, error)) throw;
    return model::encode_style(*current(), tokens);
  }
}

ComputeStatus ModelGenerator::compute_status() const {
  const std::shared_ptr<const model::ModelContext> model = current();
  return {model->info().device, fell_back_.load(std::memory_order_acquire),
          model->decode_stats().steps_per_pass()};
}

std::shared_ptr<const model::ModelContext> ModelGenerator::current() const {
  return fell_back_.load(std::memory_order_acquire) ? cpu_ : model_;
}

void ModelGenerator::count_chunk(const model::ModelContext& model) {
  const int after = options_.inject_device_failure_after_chunks;
  if (after <= 0 || &model != model_.get()) return;
  if (primary_chunks_.fetch_add(1, std::memory_order_relaxed) >= after) {
    throw model::ModelError("injected device failure after " + std::to_string(after) +
                            " chunks (daemon.inject_device_failure_after_chunks, a test hook)");
  }
}

bool ModelGenerator::fall_back_from(const model::ModelContext& model, const std::exception& error) {
  if (&model != model_.get() || !can_fall_back_) return false;
  const std::lock_guard lock(fallback_mutex_);
  if (fell_back_.load(std::memory_order_acquire)) return true;  // another answer got there first
  const model::ModelInfo& info = model_->info();
  log_.error("model on " + info.device + " failed: " + error.what() + "; loading " + info.path.string() +
             " on the CPU and generating there from now on");
  cpu_ = model::ModelContext::load(info.path, "cpu");
  fell_back_.store(true, std::memory_order_release);
  return true;
}

}  // namespace tatumflow::daemon
