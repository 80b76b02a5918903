// SPDX-License-Identifier: GPL-3.0-or-later
// Training, checkpoint inspection and model sizing, for the CLI. No torch here.
// Everything runs on the calling thread and allocates: never a real-time thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {

struct TrainOptions {
  std::optional<std::filesystem::path> cache_dir;  // overrides [data] cache
  std::optional<std::filesystem::path> out_dir;    // overrides [checkpoint] out
  std::optional<std::int64_t> steps;               // overrides [optim] steps
  // Continue from <out>/checkpoint.tfc: weights, EMA, optimizer, step; the data
  // and noise draws of step n depend only on (seed, rank, n), so a resumed run
  // repeats exactly what an uninterrupted one would have done.
  bool resume = false;
  // Stop after this many optimizer steps in this run (0: run to the end). The
  // learning-rate schedule still spans all steps; for tests and time-boxed jobs.
  std::int64_t stop_after = 0;
  // "cpu", "cuda" or "cuda:N"; a CUDA device needs a CUDA build (-DTATUMFLOW_CUDA=ON).
  std::string device = "cpu";
  bool bf16 = true;      // bf16 autocast of the forward pass on a CUDA device (ignored on the CPU)
  bool progress = true;  // progress bar on stderr (rank 0)
  bool plot = true;      // loss curve PNG via scripts/plot-metrics at the end
};

struct TrainSummary {
  std::int64_t first_step = 0;  // where this run started (after a resume)
  std::int64_t last_step = 0;
  int rank = 0;
  int world_size = 1;
  double last_loss = 0.0;
  double tokens_per_second = 0.0;
  double seconds = 0.0;
  std::optional<double> validation_nll;  // AR next-token NLL on held-out windows, nats per token
  std::filesystem::path checkpoint;      // <out>/checkpoint.tfc (training state)
  std::filesystem::path model;           // <out>/model.tfc (EMA weights for generation)
  std::filesystem::path metrics;         // <out>/metrics.csv
  std::filesystem::path plot;            // <out>/loss.png, empty when not drawn
  std::string weights_digest;            // hash of the final weights, to compare runs and ranks
};

// Trains per `config`. Distributed data-parallel when the environment sets
// WORLD_SIZE > 1 (with RANK, MASTER_ADDR, MASTER_PORT): gradients are averaged
// over ranks with torch c10d / Gloo and rank 0 writes checkpoints and metrics.
// Throws ModelError (ConfigError, CheckpointError) or dataset::CacheError.
TrainSummary train(TrainConfig config, const TrainOptions& options);  // training thread (the caller's)

// Parameter counts by component for a model config ("total" last).
[[nodiscard]] std::vector<std::pair<std::string, std::int64_t>> parameter_counts(
    const ModelConfig& config);  // any thread

struct CheckpointSummary {
  std::string kind;  // "training" or "model"
  std::int64_t step = 0;
  ModelConfig config;
  std::int64_t window_tokens = 0;  // the training window; 0: not recorded
  std::vector<std::pair<std::string, std::int64_t>> parameters;
};
// Reads and verifies a checkpoint. Throws CheckpointError.
[[nodiscard]] CheckpointSummary inspect_checkpoint(const std::filesystem::path& path);  // any thread

}  // namespace tatumflow::model
