// SPDX-License-Identifier: GPL-3.0-or-later
// The cosine noise schedule, the training objectives of both modes, and the
// DDIM / DDPM latent samplers. Training or inference thread.
#pragma once

#include <torch/torch.h>

#include <array>
#include <functional>

#include "network.hpp"
#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {

// alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2), with
// the per-step beta clipped at 0.999 (Nichol & Dhariwal). alpha_bar[0] = 1 is
// the clean index the autoregressive mode uses.
class NoiseSchedule {
 public:
  explicit NoiseSchedule(const ModelConfig& config);
  [[nodiscard]] std::int64_t steps() const { return steps_; }
  [[nodiscard]] const torch::Tensor& alpha_bar() const { return alpha_bar_; }  // (T + 1) float64
  [[nodiscard]] double at(std::int64_t t) const { return alpha_bar_data_[static_cast<std::size_t>(t)]; }

 private:
  std::int64_t steps_;
  std::vector<double> alpha_bar_data_;
  torch::Tensor alpha_bar_;
};

// A training micro-batch.
struct TrainingBatch {
  torch::Tensor tokens;     // (B, W + 1) int64, PAD after a short performance's end
  torch::Tensor reference;  // (B, R) int64: style and theory source, disjoint from `tokens`
  torch::Tensor theory;     // (B, 384) float: theory features of the reference
};

inline constexpr int kNoiseBuckets = 5;  // equal slices of t in (0, T]

struct LossReport {
  torch::Tensor total;  // weighted sum, differentiable
  bool diffusion = false;
  double token_loss = 0;  // AR next-token CE, or CE of the decoded predicted latents on noised positions
  double token_accuracy = 0;
  std::int64_t token_targets = 0;
  double diffusion_loss = 0;  // MSE in the configured parameterisation (diffusion mode)
  double kl = 0;
  double theory = 0;
  double readout = 0;
  double latent_variance = 0;  // variance of the clean latents across positions, mean over channels
  std::array<double, kNoiseBuckets> bucket_loss{};  // summed per-sample diffusion MSE
  std::array<std::int64_t, kNoiseBuckets> bucket_count{};
};

// One micro-batch's losses in the chosen mode. Draws noise, times, masks and
// dropouts from `generator` only, so a fixed generator state gives fixed losses.
LossReport compute_losses(TatumFlowNet& net, const NoiseSchedule& schedule, const TrainingBatch& batch,
                          bool diffusion, const TrainConfig& config, torch::Generator& generator);

enum class Sampler { kDdim, kDdpm };

struct LatentSampling {
  // B windows denoised together (one per session when batched; B = 1 otherwise).
  torch::Tensor clean;     // (B, T, latent): clean latents of the context positions (others ignored)
  torch::Tensor noised;    // (B, T) bool: positions to generate
  torch::Tensor content;   // (B, D): content_condition() of the style and theory
  torch::Tensor unguided;  // (1 or B, D): the same with the null style; undefined = no guidance
  double guidance = 1.0;   // x0 = uncond + guidance (cond - uncond)
  int steps = 50;
  Sampler sampler = Sampler::kDdim;
  bool bf16 = true;  // bf16 autocast of the network on a CUDA device (the CPU always runs float32)
  // 0: the noised positions start from pure noise at T. t in 1..T: they start
  // from `clean` noised to time t and `steps` run from t down (SDEdit).
  std::int64_t start_time = 0;
  // Asked before every step after the first; false stops and returns the latest x0 estimate.
  std::function<bool(int step)> keep_going;
};

struct SampledLatents {
  torch::Tensor x0;  // (B, T, latent); context positions hold the clean latents
  int steps_run = 0;
  bool stopped_early = false;
};

SampledLatents sample_latents(TatumFlowNet& net, const NoiseSchedule& schedule, const LatentSampling& request,
                              torch::Generator& generator);

// The model's x0 estimate from its raw prediction at x_t.
torch::Tensor predicted_x0(Prediction prediction, const torch::Tensor& raw, const torch::Tensor& x_t,
                           const torch::Tensor& alpha_bar);

}  // namespace tatumflow::model
