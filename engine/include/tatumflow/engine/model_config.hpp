// SPDX-License-Identifier: GPL-3.0-or-later
// The model's and the trainer's settings, read from TOML (configs/model/*.toml,
// configs/train/*.toml). Plain data with no torch, so the CLI and the daemon can
// read and print them. Loading allocates and reads files: any non-real-time thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/engine/augment.hpp"

namespace tatumflow::model {

// Every error the model code raises is one of these (or derived): bad configs,
// bad checkpoints, bad requests and torch failures translated at the API edge.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A config file that cannot be read, has a syntax error or a value out of range;
// what() names the file, the key and the accepted range.
class ConfigError : public ModelError {
 public:
  using ModelError::ModelError;
};

inline constexpr int kStyleDim = 64;
// Theory feature widths (harmony, melody, rhythm, dynamics), as computed by
// theory_features.hpp.
inline constexpr int kTheoryFeatureDims[4] = {128, 128, 64, 64};
inline constexpr int kTheoryFeatureTotal = 128 + 128 + 64 + 64;

// What the diffusion head predicts; the diffusion loss is the MSE in this space.
enum class Prediction { kX0, kEps, kV };
[[nodiscard]] const char* to_string(Prediction prediction);

struct ModelConfig {
  std::string name = "tiny";
  int hidden = 128;  // D
  int latent = 64;   // latent width per position
  int layers = 2;
  int heads = 4;
  int mlp_ratio = 4;
  int max_positions = 1024;             // learned positional embedding rows: the longest window
  std::vector<int> scales = {1, 2, 4};  // multi-scale attention pooling factors; first must be 1
  int style_hidden = 128;
  int theory_component = 128;  // each theory component's embedding width
  int theory_dim = 512;        // fused theory vector
  int diffusion_steps = 1000;  // T of the cosine schedule
  double cosine_offset = 0.008;
  Prediction prediction = Prediction::kX0;
  bool tie_embeddings = true;

  // Throws ConfigError naming the first inconsistent value.
  void validate() const;
  friend bool operator==(const ModelConfig&, const ModelConfig&) = default;
};

struct LossWeights {
  double recon = 1.0;  // token cross-entropy (AR next token, or decoded predicted latents)
  double diff = 0.5;   // diffusion MSE on noised positions
  double kl = 0.1;     // style VAE
  // Free bits (Kingma et al. 2016): KL per latent dimension below this is not
  // penalized. The KL is a per-sequence sum set against per-token losses, so
  // without a floor the style encoder collapses to the prior.
  double kl_free_nats_per_dim = 0.0;
  double theory = 0.2;   // mean |cos| between theory component embeddings
  double readout = 0.5;  // decoder reading clean latents
};

struct TrainConfig {
  std::filesystem::path model_config;  // resolved relative to the train config's folder
  ModelConfig model;                   // loaded from model_config
  std::uint64_t seed = 1;

  // [data]
  std::filesystem::path cache_dir;  // tokenized cache (tatumflow cache build)
  std::string performer;            // substring filter; empty = everyone
  int window_tokens = 512;          // training sequence length
  int reference_tokens = 256;       // style/theory reference taken just before the window
  int batch_size = 4;

  // [optim]
  double lr = 1e-4;
  double min_lr = 1e-5;
  int warmup_steps = 200;
  double weight_decay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.95;
  int grad_accum = 4;
  double clip_norm = 1.0;
  std::int64_t steps = 10000;  // optimizer steps; the cosine schedule spans them

  LossWeights loss;

  // [diffusion]
  double diffusion_probability = 0.5;  // chance a micro-batch trains diffusion mode
  double mask_prefix = 0.5;            // probabilities of the context masks (normalised)
  double mask_infill = 0.25;
  double mask_suffix = 0.15;
  double mask_none = 0.10;     // every position noised
  double style_dropout = 0.1;  // for classifier-free guidance
  double theory_dropout = 0.1;
  bool detach_latent_target = true;  // the diffusion target never pulls the encoder

  // [augment]: applied with augment_tokens to every sampled window
  tatumflow::augment::AugmentOptions augment;

  // [ema]
  double ema_decay = 0.999;  // warmed up: min(decay, (1 + step) / (10 + step))

  // [checkpoint] / [log]
  std::filesystem::path out_dir = "runs/pretrain";
  std::filesystem::path init_from;  // fine-tuning: start from this checkpoint's (EMA) weights
  int checkpoint_every = 500;
  int log_every = 10;
  int val_every = 250;
  int val_batches = 8;

  void validate() const;
};

// Throw ConfigError with the file, line and key at fault.
[[nodiscard]] ModelConfig load_model_config(const std::filesystem::path& path);
[[nodiscard]] ModelConfig parse_model_config(std::string_view toml_text, const std::string& source);
[[nodiscard]] std::string to_toml(const ModelConfig& config);
[[nodiscard]] TrainConfig load_train_config(const std::filesystem::path& path);

// The configs/ folder: TATUMFLOW_CONFIG_DIR if set, else the nearest `configs`
// with a `model` folder above this executable, else ./configs.
[[nodiscard]] std::filesystem::path default_config_dir();
// configs/model/<size>.toml; throws ConfigError listing the sizes found when missing.
[[nodiscard]] std::filesystem::path model_config_path(std::string_view size);

}  // namespace tatumflow::model
