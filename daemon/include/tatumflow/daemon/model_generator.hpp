// SPDX-License-Identifier: GPL-3.0-or-later
// The neural model behind the daemon's seams: ChunkGenerator (answers, chunk
// by chunk, with the request's deadlines and cancel flag) and StyleEncoder.
// Built into tatumflow_daemon_model only when the model library is
// (TATUMFLOW_BUILD_MODEL); no torch here, only the model's torch-free API.
//
// An answer is the model continuing the call, streamed by ContinuationStream
// (continuation_stream.hpp: the answer starts with the model's first note on
// its downbeat, chunks keep to their deadlines). Each answer gets its own
// GenerationState, so answers of different sessions, or a cancelled one still
// finishing, never share a cache. The style noise seed is fixed per answer, so
// every chunk of an answer uses the same style sample.
// Density, which the model has no control for, scales the call's note-rate
// features in the theory conditioning.
//
// CPU fallback: when the model fails on a GPU (driver error, out of memory),
// the first failure logs one line, loads the same checkpoint on the CPU and
// every answer runs there from then on. The failed step is retried on the CPU
// if its chunk's deadline still allows; otherwise the chunk stays silent and
// the answer goes on from the next one, on the grid, never late.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "tatumflow/daemon/generation.hpp"
#include "tatumflow/daemon/log.hpp"
#include "tatumflow/engine/model_api.hpp"

namespace tatumflow::daemon {

struct ModelGeneratorOptions {
  // Test hook (daemon.inject_device_failure_after_chunks): the model on its
  // own device throws after this many model::generate_chunk calls, as a
  // failing GPU would, so the CPU fallback can be exercised without one; 0: off.
  int inject_device_failure_after_chunks = 0;
};

class ModelGenerator final : public ChunkGenerator, public StyleEncoder {
 public:
  // `base` supplies what a request does not set (mode, top-k/p, diffusion
  // steps, guidance). // event-loop thread
  ModelGenerator(std::shared_ptr<const model::ModelContext> model, model::GenerationControls base,
                 Logger& log, ModelGeneratorOptions options = {});

  // Generates one short answer and encodes one style, so the first call is
  // not the one paying for first use (allocator growth; on a GPU the CUDA
  // context, kernel selection and cuBLAS handles). Returns the milliseconds
  // it took. A device failing here falls back to the CPU as in an answer.
  // // event-loop thread, at startup
  double warm_up();

  // // inference thread (several at once)
  [[nodiscard]] std::unique_ptr<AnswerStream> begin(const GenerationRequest& request) override;
  [[nodiscard]] StyleLatent encode(std::span<const tokens::Token> tokens) override;
  // // any thread
  [[nodiscard]] ComputeStatus compute_status() const override;

  // For the answer streams. The model to run on now (the CPU copy once fallen
  // back). // inference thread
  [[nodiscard]] std::shared_ptr<const model::ModelContext> current() const;
  // Throws the injected failure when it is due and `model` is the model on
  // its own device. // inference thread
  void count_chunk(const model::ModelContext& model);
  // After `model` threw `error`: true when generation may go on with
  // current(), the CPU copy (loaded by the first caller, which logs the one
  // line); false when `model` has nothing to fall back to (the CPU copy
  // itself, or a CPU model without the injected failure): rethrow. Throws
  // when the CPU copy cannot be loaded. // inference thread
  [[nodiscard]] bool fall_back_from(const model::ModelContext& model, const std::exception& error);

 private:
  std::shared_ptr<const model::ModelContext> model_;
  model::GenerationControls base_;
  Logger& log_;
  ModelGeneratorOptions options_;
  bool can_fall_back_;  // a non-CPU device, or the injected failure
  std::atomic<int> primary_chunks_{0};
  std::mutex fallback_mutex_;                       // one thread loads the CPU copy
  std::shared_ptr<const model::ModelContext> cpu_;  // written once, before fell_back_ is set
  std::atomic<bool> fell_back_{false};
};

// The theory features with the note-rate scalars scaled by `density` (the
// squashed rates are unsquashed, scaled and squashed again). // any thread
[[nodiscard]] TheoryFeatures scale_density(TheoryFeatures features, float density);

}  // namespace tatumflow::daemon
