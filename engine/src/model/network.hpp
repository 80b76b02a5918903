// SPDX-License-Identifier: GPL-3.0-or-later
// The TatumFlow network: one DiT-style stack used in two modes.
//
//   tokens -> embedding -> latent encoder (D -> latent, normalised per position)
//          -> latent decoder (latent -> D) + position + role embedding
//          -> DiT blocks (AdaLN shift/scale/gate from time + style + theory)
//          -> final AdaLN -> token head (logits) and latent head (diffusion prediction)
//
// Autoregressive mode: all positions clean (role kAutoregressive, time 0), causal
// multi-scale attention, next-token logits. Latent diffusion mode: positions are
// clean context (kContext) or noised (kNoised), attention is bidirectional, the
// latent head predicts x0, eps or v. The readout (latent decoder + token head)
// decodes any latent to token logits.
//
// Inference and training thread only; a module in eval mode may run forward
// passes from several threads at once (read-only parameters).
#pragma once

#include <torch/torch.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/engine/theory_features.hpp"

namespace tatumflow::model {

enum class AttentionMode { kCausal, kBidirectional };

// Rows of the role embedding.
inline constexpr std::int64_t kRoleAutoregressive = 0;
inline constexpr std::int64_t kRoleContext = 1;
inline constexpr std::int64_t kRoleNoised = 2;

// Incremental-decoding state of one attention layer (batch 1). Buffers are sized
// once for the capacity and written in place.
struct AttentionCache {
  torch::Tensor k, v;  // (heads, capacity, head_dim)
  struct Coarse {
    std::int64_t scale = 1;
    torch::Tensor k, v;  // (heads, capacity / scale, head_dim): pooled complete groups
    torch::Tensor sum;   // (3 D): q, k, v summed over the open group
    torch::Tensor out;   // (D): output of the last complete group, used by the open one
  };
  std::vector<Coarse> coarse;
};

struct DecodeCache {
  std::vector<AttentionCache> layers;
  torch::Tensor condition;                // (1, D)
  std::vector<torch::Tensor> modulation;  // per block (6, D): shift, 1 + scale, gate (attention, then MLP)
  torch::Tensor final_modulation;         // (2, D): shift, 1 + scale
  std::int64_t length = 0;
  std::int64_t capacity = 0;
};

// Pools keys, values and queries over groups of `scale` positions and attends
// between groups. Causal mode shifts the result by one group: positions of group
// g + 1 read the output of group g, whose inputs all lie strictly in their past,
// so no position ever sees a later token.
class MultiScaleAttentionImpl : public torch::nn::Module {
 public:
  MultiScaleAttentionImpl(std::int64_t hidden, std::int64_t heads, const std::vector<int>& scales);

  // x (B, T, D). When qkv_out is given it receives the (B, T, 3 D) projections.
  torch::Tensor forward(const torch::Tensor& x, AttentionMode mode, torch::Tensor* qkv_out = nullptr);
  // One position of a causal pass for each row of x (B, D): row b is at
  // positions[b] of caches[b], which it reads and extends.
  torch::Tensor step(const torch::Tensor& x, std::span<AttentionCache* const> caches,
                     std::span<const std::int64_t> positions);
  [[nodiscard]] AttentionCache make_cache(std::int64_t capacity) const;
  // Fills an empty cache from a prefill's projections (1, T, 3 D).
  void fill_cache(const torch::Tensor& qkv, AttentionCache& cache) const;

 private:
  [[nodiscard]] torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     bool causal) const;
  // step()'s cache updates and attention for float32 rows on the CPU, in plain
  // loops: per row and layer they are a dozen operations on vectors of 128
  // floats, whose dispatch would cost more than the batched projections.
  // qkv_rows (B, 3 D) contiguous; writes mixed_rows (B, D).
  void step_rows_on_cpu(const torch::Tensor& qkv_rows, std::span<AttentionCache* const> caches,
                        std::span<const std::int64_t> positions, torch::Tensor& mixed_rows) const;
  // Single query (D) against the first `length` cached rows (heads, *, head_dim).
  [[nodiscard]] torch::Tensor attend_one(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, std::int64_t length) const;

  std::int64_t hidden_;
  std::int64_t heads_;
  std::int64_t head_dim_;
  std::vector<std::int64_t> scales_;
  torch::nn::Linear qkv_{nullptr};
  torch::nn::Linear out_{nullptr};
  torch::Tensor scale_mix_;  // (scales, D): per-channel weight of each scale's output
};
TORCH_MODULE(MultiScaleAttention);

class DiTBlockImpl : public torch::nn::Module {
 public:
  explicit DiTBlockImpl(const ModelConfig& config);

  // x (B, T, D), condition_silu (B, D).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& condition_silu, AttentionMode mode,
                        torch::Tensor* qkv_out = nullptr);
  // (6, D) rows: shift, 1 + scale, gate for attention, then for the MLP.
  [[nodiscard]] torch::Tensor step_modulation(const torch::Tensor& condition_silu);
  // x (B, D), modulation (B, 6, D): the rows' step_modulation(), stacked.
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& modulation,
                     std::span<AttentionCache* const> caches, std::span<const std::int64_t> positions);

  MultiScaleAttention attention{nullptr};

 private:
  std::int64_t hidden_;
  torch::nn::Linear fc1_{nullptr};
  torch::nn::Linear fc2_{nullptr};
  torch::nn::Linear adaln_{nullptr};  // zero-initialised: every block starts as the identity
};
TORCH_MODULE(DiTBlock);

struct StyleOutput {
  torch::Tensor mu;      // (B, 64)
  torch::Tensor logvar;  // (B, 64)
};

struct TheoryOutput {
  torch::Tensor fused;       // (B, theory_dim)
  torch::Tensor components;  // (B, 4, theory_component)
};

class TatumFlowNetImpl : public torch::nn::Module {
 public:
  explicit TatumFlowNetImpl(const ModelConfig& config);

  [[nodiscard]] const ModelConfig& config() const { return config_; }

  // (B, T) int64 -> (B, T, latent), each position normalised to zero mean and
  // unit variance, so the encoder cannot shrink latents to make denoising trivial.
  torch::Tensor encode_latent(const torch::Tensor& tokens);
  // Mean of the token embeddings over non-PAD tokens of (B, R) references.
  StyleOutput encode_style(const torch::Tensor& reference_tokens);
  // (B, 384) theory features (harmony, melody, rhythm, dynamics) -> embeddings.
  TheoryOutput encode_theory(const torch::Tensor& features);

  // Conditioning vector (B, D) = time part + content part. time (B) float in
  // [0, T], 0 = clean (AR mode). style (B, 64) and theory (B, theory_dim) may be
  // undefined (the learned null embeddings stand in); keep masks (B) of 0/1 drop
  // them per sample, as classifier-free guidance training needs.
  torch::Tensor time_condition(const torch::Tensor& time);
  torch::Tensor content_condition(const torch::Tensor& style, const torch::Tensor& theory,
                                  const torch::Tensor& style_keep = {},
                                  const torch::Tensor& theory_keep = {});
  torch::Tensor condition(const torch::Tensor& time, const torch::Tensor& style, const torch::Tensor& theory,
                          const torch::Tensor& style_keep = {}, const torch::Tensor& theory_keep = {}) {
    return time_condition(time) + content_condition(style, theory, style_keep, theory_keep);
  }

  // latents (B, T, latent), roles (B, T) int64, condition (B, D) -> final hidden (B, T, D).
  torch::Tensor backbone(const torch::Tensor& latents, const torch::Tensor& roles,
                         const torch::Tensor& condition, AttentionMode mode,
                         std::vector<torch::Tensor>* qkv_out = nullptr);
  torch::Tensor token_logits(const torch::Tensor& hidden);
  torch::Tensor predict_latent(const torch::Tensor& hidden);
  // Token logits of any latent (clean or predicted).
  torch::Tensor readout(const torch::Tensor& latent);

  // Autoregressive logits (B, T, V) of a token batch: the reference full pass.
  torch::Tensor autoregressive_logits(const torch::Tensor& tokens, const torch::Tensor& condition);

  // Incremental decoding, one cache per sequence. prefill() runs the context
  // through one causal pass and returns the last position's logits (V); step()
  // feeds one token and returns the next logits. step_rows() feeds one token to
  // each of several caches (sequences of any lengths and conditions) in one
  // batched pass and returns their logits (B, V); one row gives step()'s result
  // bit for bit.
  [[nodiscard]] DecodeCache make_cache(std::int64_t capacity, const torch::Tensor& condition);
  torch::Tensor prefill(const torch::Tensor& tokens, DecodeCache& cache);
  torch::Tensor step(std::int64_t token, DecodeCache& cache);
  torch::Tensor step_rows(std::span<const std::int64_t> tokens, std::span<DecodeCache* const> caches);
  // Precomputes each token's decoded clean latent (V, D) so step() skips the
  // encoder; call once after loading weights, in NoGrad mode.
  void prepare_inference();

  // Parameter counts by component, in a stable order, plus "total".
  [[nodiscard]] std::vector<std::pair<std::string, std::int64_t>> parameter_groups() const;

 private:
  [[nodiscard]] torch::Tensor stack_input(const torch::Tensor& latents, const torch::Tensor& roles);

  ModelConfig config_;
  torch::nn::Embedding token_embedding_{nullptr};
  torch::Tensor positions_;  // (max_positions, D)
  torch::nn::Embedding roles_{nullptr};
  torch::nn::Linear latent_encoder_{nullptr};
  torch::nn::Linear latent_decoder_{nullptr};
  torch::nn::Sequential time_mlp_{nullptr};
  torch::nn::Linear style_hidden_{nullptr};
  torch::nn::Linear style_mu_{nullptr};
  torch::nn::Linear style_logvar_{nullptr};
  torch::nn::Linear style_projection_{nullptr};
  torch::Tensor style_null_;  // (D)
  std::vector<torch::nn::Sequential> theory_components_;
  torch::nn::Linear theory_fusion_{nullptr};
  torch::nn::Linear theory_projection_{nullptr};
  torch::Tensor theory_null_;  // (D)
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::Linear final_adaln_{nullptr};
  torch::nn::Linear latent_head_{nullptr};
  torch::nn::Linear token_head_{nullptr};  // only when embeddings are not tied
  torch::Tensor token_bias_;               // (V)
  torch::Tensor input_table_;              // (V, D) after prepare_inference()
};
TORCH_MODULE(TatumFlowNet);

// Makes glibc keep freed memory for reuse instead of returning it to the kernel
// (mmap threshold 32 MiB, no trimming). Every forward pass frees and allocates
// megabytes of activations; handing them back means a page fault per 4 KiB on
// the next pass, which cost 6x the compute of a 512-token forward on the
// development VM. Process-wide and idempotent. // any thread
void retain_freed_memory();

// The theory encoder's input (1, 384): harmony, melody, rhythm, dynamics.
torch::Tensor theory_tensor(const TheoryFeatures& features);

// Sinusoidal embedding (B, dim) of float times (B).
torch::Tensor timestep_embedding(const torch::Tensor& time, std::int64_t dim);

}  // namespace tatumflow::model
