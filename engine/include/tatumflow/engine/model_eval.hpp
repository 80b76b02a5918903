// SPDX-License-Identifier: GPL-3.0-or-later
// Token-level evaluation of a checkpoint on fixed windows (see evaluation.hpp),
// in both modes. No torch here. Runs the model on the calling thread and
// allocates: never a real-time thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "tatumflow/engine/evaluation.hpp"

namespace tatumflow::model {

// Diffusion mode: the second half of each window noised to noise_level * T
// with the first half as clean context; the predicted latents read out as tokens.
struct ReconstructionScore {
  double noise_level = 0.0;
  std::int64_t tokens = 0;
  double token_accuracy = 0.0;
};

struct CheckpointEvaluation {
  std::int64_t trained_steps = 0;
  std::int64_t parameters = 0;
  TokenScore autoregressive;
  std::vector<ReconstructionScore> reconstruction;
};

// Scores each window's scored tokens given the tokens before them in that
// window, with no style or theory (the learned null conditions), the way the
// Markov baseline sees the same windows. Throws CheckpointError/ModelError.
[[nodiscard]] CheckpointEvaluation evaluate_checkpoint(const std::filesystem::path& checkpoint,
                                                       std::span<const ScoredWindow> windows,
                                                       double seconds_of_music,
                                                       std::span<const double> noise_levels,
                                                       std::uint64_t seed);

}  // namespace tatumflow::model
