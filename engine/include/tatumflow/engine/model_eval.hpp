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
// window. With reference_tokens 0 there is no style or theory (the learned null
// conditions); with N, both come from the last N tokens before the window, as in
// training (style_reference(); the latent's mean), so every scored token is
// still predicted from its past alone, and a window with nothing before it gets
// the null conditions. Throws CheckpointError/ModelError.
[[nodiscard]] CheckpointEvaluation evaluate_checkpoint(const std::filesystem::path& checkpoint,
                                                       std::span<const ScoredWindow> windows,
                                                       double seconds_of_music,
                                                       std::span<const double> noise_levels,
                                                       std::size_t reference_tokens, std::uint64_t seed);

}  // namespace tatumflow::model
