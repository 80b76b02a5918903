// SPDX-License-Identifier: GPL-3.0-or-later
#include "network.hpp"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::model {

namespace F = torch::nn::functional;
using torch::indexing::Slice;

namespace {

torch::Tensor unit_norm(const torch::Tensor& x) { return torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6); }

// A tiny epsilon, so even an encoder whose outputs have shrunk to 1e-5 yields
// unit-scale latents: the scale cannot be learnt away.
torch::Tensor latent_norm(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, {}, {}, 1e-12);
}

torch::nn::Linear linear(std::int64_t in, std::int64_t out) { return torch::nn::Linear(in, out); }

// x (B, in) -> (B, out). On the CPU row by row: OpenBLAS's GEMM for a few
// rows of the tiny model took 15-20 us where a matrix-vector product took 3.
torch::Tensor affine_rows(const torch::Tensor& bias, const torch::Tensor& weight, const torch::Tensor& x) {
  if (x.size(0) == 1) return torch::addmv(bias, weight, x[0]).unsqueeze(0);
  if (!x.is_cpu()) return torch::addmm(bias, x, weight.t());
  auto out = torch::empty({x.size(0), weight.size(0)}, x.options());
  for (std::int64_t row = 0; row < x.size(0); ++row) {
    auto out_row = out[row];
    torch::addmv_out(out_row, bias, weight, x[row]);
  }
  return out;
}

// Per-row tensors (each of the same shape) as one (B, ...) tensor.
torch::Tensor stack_rows(const std::vector<torch::Tensor>& rows) {
  return rows.size() == 1 ? rows[0].unsqueeze(0) : torch::stack(rows);
}

}  // namespace

torch::Tensor timestep_embedding(const torch::Tensor& time, std::int64_t dim) {
  const std::int64_t half = dim / 2;
  const auto frequencies =
      torch::exp(-std::log(10000.0) * torch::arange(half, torch::TensorOptions().dtype(torch::kFloat32)) /
                 static_cast<double>(half))
          .to(time.device());
  const auto angles = time.to(torch::kFloat32).unsqueeze(1) * frequencies.unsqueeze(0);
  auto embedding = torch::cat({torch::cos(angles), torch::sin(angles)}, 1);
  if (dim % 2 == 1) embedding = F::pad(embedding, F::PadFuncOptions({0, 1}));
  return embedding;
}

void retain_freed_memory() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  });
}

static_assert(kHarmonySize == kTheoryFeatureDims[0] && kMelodySize == kTheoryFeatureDims[1] &&
              kRhythmSize == kTheoryFeatureDims[2] && kDynamicsSize == kTheoryFeatureDims[3]);

torch::Tensor theory_tensor(const TheoryFeatures& features) {
  auto out = torch::empty({1, kTheoryFeatureTotal});
  float* data = out.data_ptr<float>();
  data = std::copy(features.harmony.begin(), features.harmony.end(), data);
  data = std::copy(features.melody.begin(), features.melody.end(), data);
  data = std::copy(features.rhythm.begin(), features.rhythm.end(), data);
  std::copy(features.dynamics.begin(), features.dynamics.end(), data);
  return out;
}

// ---------------------------------------------------------------- attention

MultiScaleAttentionImpl::MultiScaleAttentionImpl(std::int64_t hidden, std::int64_t heads,
                                                 const std::vector<int>& scales)
    : hidden_(hidden), heads_(heads), head_dim_(hidden / heads), scales_(scales.begin(), scales.end()) {
  qkv_ = register_module("qkv", linear(hidden, 3 * hidden));
  out_ = register_module("out", linear(hidden, hidden));
  // Coarse scales start at half the weight of the note level.
  auto mix = torch::full({static_cast<std::int64_t>(scales_.size()), hidden}, 0.5);
  mix[0].fill_(1.0);
  scale_mix_ = register_parameter("scale_mix", mix);
}

torch::Tensor MultiScaleAttentionImpl::attend(const torch::Tensor& q, const torch::Tensor& k,
                                              const torch::Tensor& v, bool causal) const {
  const auto batch = q.size(0);
  const auto length = q.size(1);
  const auto rows = batch * heads_;
#if TATUMFLOW_CUDA
  if (q.is_cuda()) {
    // Fused (flash) attention: no (N, N) score matrix in GPU memory.
    const auto heads = [&](const torch::Tensor& x) {  // (B, N, D) -> (B, H, N, dh)
      return x.reshape({batch, length, heads_, head_dim_}).transpose(1, 2);
    };
    return at::scaled_dot_product_attention(heads(q), heads(k), heads(v), {}, 0.0, causal)
        .transpose(1, 2)
        .reshape({batch, length, hidden_});
  }
#endif
  const auto split = [&](const torch::Tensor& x) {  // (B, N, D) -> (B H, N, dh)
    return x.reshape({batch, length, heads_, head_dim_}).transpose(1, 2).reshape({rows, length, head_dim_});
  };
  const double scale = 1.0 / std::sqrt(double(head_dim_));
  const auto keys_t = split(k).transpose(1, 2);
  torch::Tensor scores;
  if (causal) {
    // Mask and scale ride along with the GEMM instead of two more passes over the scores.
    const auto future =
        torch::full({length, length}, -std::numeric_limits<float>::infinity(), q.options()).triu(1);
    scores = torch::baddbmm(future.expand({rows, length, length}), split(q), keys_t, 1.0, scale);
  } else {
    scores = torch::bmm(split(q), keys_t).mul_(scale);
  }
  return torch::bmm(torch::softmax(scores, -1), split(v))
      .view({batch, heads_, length, head_dim_})
      .transpose(1, 2)
      .reshape({batch, length, hidden_});
}

torch::Tensor MultiScaleAttentionImpl::forward(const torch::Tensor& x, AttentionMode mode,
                                               torch::Tensor* qkv_out) {
  const auto batch = x.size(0);
  const auto length = x.size(1);
  const bool causal = mode == AttentionMode::kCausal;
  const auto qkv = qkv_(x);
  if (qkv_out != nullptr) *qkv_out = qkv;
  const auto parts = qkv.chunk(3, -1);
  auto mixed = attend(parts[0], parts[1], parts[2], causal) * scale_mix_[0];

  for (std::size_t i = 1; i < scales_.size(); ++i) {
    const std::int64_t scale = scales_[i];
    // Causal passes pool only complete groups; bidirectional ones also the
    // partial last group, averaged over the positions it has.
    const std::int64_t groups = causal ? length / scale : (length + scale - 1) / scale;
    if (groups == 0) continue;
    torch::Tensor pooled;
    if (causal) {
      pooled = qkv.narrow(1, 0, groups * scale).reshape({batch, groups, scale, 3 * hidden_}).mean(2);
    } else {
      const std::int64_t pad = groups * scale - length;
      auto padded = pad > 0 ? F::pad(qkv, F::PadFuncOptions({0, 0, 0, pad})) : qkv;
      auto counts = torch::full({groups}, double(scale), x.options());
      if (pad > 0) counts[groups - 1].fill_(double(scale - pad));
      pooled = padded.reshape({batch, groups, scale, 3 * hidden_}).sum(2) / counts.view({1, groups, 1});
    }
    const auto pooled_parts = pooled.chunk(3, -1);
    const auto coarse = attend(pooled_parts[0], pooled_parts[1], pooled_parts[2], causal);
    auto upsampled =
        coarse.unsqueeze(2).expand({batch, groups, scale, hidden_}).reshape({batch, groups * scale, hidden_});
    if (causal) upsampled = torch::cat({torch::zeros({batch, scale, hidden_}, x.options()), upsampled}, 1);
    mixed = mixed + upsampled.narrow(1, 0, length) * scale_mix_[static_cast<std::int64_t>(i)];
  }
  return out_(mixed);
}

AttentionCache MultiScaleAttentionImpl::make_cache(std::int64_t capacity) const {
  const auto options = qkv_->weight.options().requires_grad(false);
  AttentionCache cache;
  cache.k = torch::zeros({heads_, capacity, head_dim_}, options);
  cache.v = torch::zeros({heads_, capacity, head_dim_}, options);
  for (std::size_t i = 1; i < scales_.size(); ++i) {
    AttentionCache::Coarse coarse;
    coarse.scale = scales_[i];
    const std::int64_t groups = std::max<std::int64_t>(capacity / coarse.scale, 1);
    coarse.k = torch::zeros({heads_, groups, head_dim_}, options);
    coarse.v = torch::zeros({heads_, groups, head_dim_}, options);
    coarse.sum = torch::zeros({3 * hidden_}, options);
    coarse.out = torch::zeros({hidden_}, options);
    cache.coarse.push_back(std::move(coarse));
  }
  return cache;
}

namespace {

// Dot product with eight independent partial sums, which the compiler turns
// into SIMD lanes without needing -ffast-math.
float dot(const float* a, const float* b, std::int64_t n) {
  float partial[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) partial[j] += a[i + j] * b[i + j];
  }
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (float p : partial) sum += p;
  return sum;
}

// One query against cached rows, all heads, on the CPU. Torch's bmm for a
// (heads, L, head_dim) x (heads, head_dim, 1) product loops over heads with a
// GEMM each and cost 3x the whole layer's matrix-vector work per token.
void attend_cached(const float* q, const float* k, const float* v, std::int64_t heads, std::int64_t head_dim,
                   std::int64_t capacity, std::int64_t length, float* out) {
  thread_local std::vector<float> weights;
  weights.resize(static_cast<std::size_t>(length));
  const float scale = 1.0f / std::sqrt(float(head_dim));
  for (std::int64_t h = 0; h < heads; ++h) {
    const float* keys = k + h * capacity * head_dim;
    const float* values = v + h * capacity * head_dim;
    const float* query = q + h * head_dim;
    float top = -std::numeric_limits<float>::infinity();
    for (std::int64_t l = 0; l < length; ++l) {
      weights[static_cast<std::size_t>(l)] = dot(keys + l * head_dim, query, head_dim) * scale;
      top = std::max(top, weights[static_cast<std::size_t>(l)]);
    }
    float total = 0.0f;
    for (float& w : weights) total += (w = std::exp(w - top));
    float* result = out + h * head_dim;
    std::fill_n(result, head_dim, 0.0f);
    for (std::int64_t l = 0; l < length; ++l) {
      const float w = weights[static_cast<std::size_t>(l)] / total;
      const float* row = values + l * head_dim;
      for (std::int64_t d = 0; d < head_dim; ++d) result[d] += w * row[d];
    }
  }
}

}  // namespace

torch::Tensor MultiScaleAttentionImpl::attend_one(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v, std::int64_t length) const {
  if (q.is_cpu() && q.scalar_type() == torch::kFloat32) {
    const auto query = q.contiguous();
    auto out = torch::empty({hidden_}, q.options());
    attend_cached(query.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), heads_, head_dim_,
                  k.size(1), length, out.data_ptr<float>());
    return out;
  }
  const auto keys = k.narrow(1, 0, length);    // (H, L, dh)
  const auto values = v.narrow(1, 0, length);  // (H, L, dh)
  const auto scores =
      torch::matmul(keys, q.view({heads_, head_dim_, 1})).mul_(1.0 / std::sqrt(double(head_dim_)));
  const auto probabilities = torch::softmax(scores, 1);  // (H, L, 1)
  return torch::matmul(values.transpose(1, 2), probabilities).view({hidden_});
}

void MultiScaleAttentionImpl::step_rows_on_cpu(const torch::Tensor& qkv_rows,
                                               std::span<AttentionCache* const> caches,
                                               std::span<const std::int64_t> positions,
                                               torch::Tensor& mixed_rows) const {
  const torch::Tensor mix = scale_mix_.contiguous();  // (scales, D)
  const float* scale_weights = mix.data_ptr<float>();
  const std::int64_t d = hidden_;
  // Writes one position's key and value (D each, head-major) into (H, N, dh) caches.
  const auto store = [&](const float* key, const float* value, torch::Tensor& keys, torch::Tensor& values,
                         std::int64_t position) {
    const std::int64_t rows = keys.size(1);
    for (std::int64_t h = 0; h < heads_; ++h) {
      std::copy_n(key + h * head_dim_, head_dim_, keys.data_ptr<float>() + (h * rows + position) * head_dim_);
      std::copy_n(value + h * head_dim_, head_dim_,
                  values.data_ptr<float>() + (h * rows + position) * head_dim_);
    }
  };
  thread_local std::vector<float> pooled;
  pooled.resize(static_cast<std::size_t>(3 * d));
  for (std::size_t row = 0; row < caches.size(); ++row) {
    AttentionCache& cache = *caches[row];
    const std::int64_t position = positions[row];
    const float* qkv = qkv_rows.data_ptr<float>() + static_cast<std::int64_t>(row) * 3 * d;
    float* mixed = mixed_rows.data_ptr<float>() + static_cast<std::int64_t>(row) * d;
    store(qkv + d, qkv + 2 * d, cache.k, cache.v, position);
    attend_cached(qkv, cache.k.data_ptr<float>(), cache.v.data_ptr<float>(), heads_, head_dim_,
                  cache.k.size(1), position + 1, mixed);
    for (std::int64_t c = 0; c < d; ++c) mixed[c] *= scale_weights[c];
    for (std::size_t i = 0; i < cache.coarse.size(); ++i) {
      AttentionCache::Coarse& coarse = cache.coarse[i];
      // The open group reads the last complete group's output, then may complete itself.
      const float* weights = scale_weights + static_cast<std::int64_t>(i + 1) * d;
      float* out = coarse.out.data_ptr<float>();
      float* sum = coarse.sum.data_ptr<float>();
      for (std::int64_t c = 0; c < d; ++c) mixed[c] += out[c] * weights[c];
      for (std::int64_t c = 0; c < 3 * d; ++c) sum[c] += qkv[c];
      if ((position + 1) % coarse.scale != 0) continue;
      const std::int64_t group = position / coarse.scale;
      for (std::int64_t c = 0; c < 3 * d; ++c)
        pooled[static_cast<std::size_t>(c)] = sum[c] / float(coarse.scale);
      store(pooled.data() + d, pooled.data() + 2 * d, coarse.k, coarse.v, group);
      attend_cached(pooled.data(), coarse.k.data_ptr<float>(), coarse.v.data_ptr<float>(), heads_, head_dim_,
                    coarse.k.size(1), group + 1, out);
      std::fill_n(sum, 3 * d, 0.0f);
    }
  }
}

torch::Tensor MultiScaleAttentionImpl::step(const torch::Tensor& x, std::span<AttentionCache* const> caches,
                                            std::span<const std::int64_t> positions) {
  const auto qkv_rows = affine_rows(qkv_->bias, qkv_->weight, x);
  if (qkv_rows.is_cpu() && qkv_rows.scalar_type() == torch::kFloat32) {
    auto mixed = torch::empty({x.size(0), hidden_}, x.options());
    step_rows_on_cpu(qkv_rows.contiguous(), caches, positions, mixed);
    return affine_rows(out_->bias, out_->weight, mixed);
  }
  std::vector<torch::Tensor> mixed_rows;
  mixed_rows.reserve(caches.size());
  for (std::size_t row = 0; row < caches.size(); ++row) {
    AttentionCache& cache = *caches[row];
    const std::int64_t position = positions[row];
    const auto qkv = qkv_rows[static_cast<std::int64_t>(row)];
    const auto q = qkv.narrow(0, 0, hidden_);
    cache.k.select(1, position).copy_(qkv.narrow(0, hidden_, hidden_).view({heads_, head_dim_}));
    cache.v.select(1, position).copy_(qkv.narrow(0, 2 * hidden_, hidden_).view({heads_, head_dim_}));
    auto mixed = attend_one(q, cache.k, cache.v, position + 1).mul_(scale_mix_[0]);

    for (std::size_t i = 0; i < cache.coarse.size(); ++i) {
      AttentionCache::Coarse& coarse = cache.coarse[i];
      mixed.addcmul_(coarse.out, scale_mix_[static_cast<std::int64_t>(i + 1)]);
      coarse.sum.add_(qkv);
      if ((position + 1) % coarse.scale != 0) continue;
      const std::int64_t group = position / coarse.scale;
      const auto pooled = coarse.sum / double(coarse.scale);
      coarse.k.select(1, group).copy_(pooled.narrow(0, hidden_, hidden_).view({heads_, head_dim_}));
      coarse.v.select(1, group).copy_(pooled.narrow(0, 2 * hidden_, hidden_).view({heads_, head_dim_}));
      coarse.out.copy_(attend_one(pooled.narrow(0, 0, hidden_), coarse.k, coarse.v, group + 1));
      coarse.sum.zero_();
    }
    mixed_rows.push_back(std::move(mixed));
  }
  return affine_rows(out_->bias, out_->weight, stack_rows(mixed_rows));
}

void MultiScaleAttentionImpl::fill_cache(const torch::Tensor& qkv, AttentionCache& cache) const {
  const auto rows = qkv.squeeze(0);  // (T, 3 D)
  const std::int64_t length = rows.size(0);
  const auto to_heads = [&](const torch::Tensor& x) {  // (N, D) -> (H, N, dh)
    return x.reshape({x.size(0), heads_, head_dim_}).permute({1, 0, 2});
  };
  cache.k.narrow(1, 0, length).copy_(to_heads(rows.narrow(1, hidden_, hidden_)));
  cache.v.narrow(1, 0, length).copy_(to_heads(rows.narrow(1, 2 * hidden_, hidden_)));
  for (AttentionCache::Coarse& coarse : cache.coarse) {
    const std::int64_t groups = length / coarse.scale;
    coarse.sum.copy_(rows.narrow(0, groups * coarse.scale, length - groups * coarse.scale).sum(0));
    if (groups == 0) continue;
    const auto pooled =
        rows.narrow(0, 0, groups * coarse.scale).reshape({groups, coarse.scale, 3 * hidden_}).mean(1);
    coarse.k.narrow(1, 0, groups).copy_(to_heads(pooled.narrow(1, hidden_, hidden_)));
    coarse.v.narrow(1, 0, groups).copy_(to_heads(pooled.narrow(1, 2 * hidden_, hidden_)));
    coarse.out.copy_(attend_one(pooled[groups - 1].narrow(0, 0, hidden_), coarse.k, coarse.v, groups));
  }
}

// ---------------------------------------------------------------- DiT block

DiTBlockImpl::DiTBlockImpl(const ModelConfig& config) : hidden_(config.hidden) {
  attention = register_module("attention", MultiScaleAttention(config.hidden, config.heads, config.scales));
  fc1_ = register_module("fc1", linear(config.hidden, config.hidden * config.mlp_ratio));
  fc2_ = register_module("fc2", linear(config.hidden * config.mlp_ratio, config.hidden));
  adaln_ = register_module("adaln", linear(config.hidden, 6 * config.hidden));
  torch::NoGradGuard no_grad;
  adaln_->weight.zero_();
  adaln_->bias.zero_();
}

torch::Tensor DiTBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& condition_silu,
                                    AttentionMode mode, torch::Tensor* qkv_out) {
  const auto m = adaln_(condition_silu).unsqueeze(1).chunk(6, -1);
  auto h = unit_norm(x) * (1 + m[1]) + m[0];
  auto out = x + m[2] * attention(h, mode, qkv_out);
  h = unit_norm(out) * (1 + m[4]) + m[3];
  return out + m[5] * fc2_(torch::gelu(fc1_(h)));
}

torch::Tensor DiTBlockImpl::step_modulation(const torch::Tensor& condition_silu) {
  auto m = adaln_(condition_silu).reshape({6, hidden_}).clone();
  m[1].add_(1.0);
  m[4].add_(1.0);
  return m;
}

torch::Tensor DiTBlockImpl::step(const torch::Tensor& x, const torch::Tensor& modulation,
                                 std::span<AttentionCache* const> caches,
                                 std::span<const std::int64_t> positions) {
  const auto m = modulation.unbind(1);
  auto h = torch::addcmul(m[0], unit_norm(x), m[1]);
  auto out = x.addcmul(m[2], attention->step(h, caches, positions));
  h = torch::addcmul(m[3], unit_norm(out), m[4]);
  const auto inner = torch::gelu(affine_rows(fc1_->bias, fc1_->weight, h));
  return out.addcmul_(m[5], affine_rows(fc2_->bias, fc2_->weight, inner));
}

// ---------------------------------------------------------------- network

TatumFlowNetImpl::TatumFlowNetImpl(const ModelConfig& config) : config_(config) {
  config_.validate();
  const std::int64_t d = config.hidden;
  token_embedding_ = register_module("token_embedding", torch::nn::Embedding(tokens::kVocabSize, d));
  positions_ = register_parameter("positions", torch::randn({config.max_positions, d}) * 0.02);
  roles_ = register_module("roles", torch::nn::Embedding(3, d));
  // No bias: a shared offset only pulls every latent toward the same point.
  latent_encoder_ = register_module(
      "latent_encoder", torch::nn::Linear(torch::nn::LinearOptions(d, config.latent).bias(false)));
  latent_decoder_ = register_module("latent_decoder", linear(config.latent, d));
  time_mlp_ = register_module("time_mlp",
                              torch::nn::Sequential(linear(d, 4 * d), torch::nn::SiLU(), linear(4 * d, d)));
  style_hidden_ = register_module("style_hidden", linear(d, config.style_hidden));
  style_mu_ = register_module("style_mu", linear(config.style_hidden, kStyleDim));
  style_logvar_ = register_module("style_logvar", linear(config.style_hidden, kStyleDim));
  style_projection_ = register_module("style_projection", linear(kStyleDim, d));
  style_null_ = register_parameter("style_null", torch::zeros({d}));
  for (int i = 0; i < 4; ++i) {
    theory_components_.push_back(register_module(
        "theory_component" + std::to_string(i),
        torch::nn::Sequential(linear(kTheoryFeatureDims[i], config.theory_component), torch::nn::GELU(),
                              linear(config.theory_component, config.theory_component))));
  }
  theory_fusion_ = register_module("theory_fusion", linear(4 * config.theory_component, config.theory_dim));
  theory_projection_ = register_module("theory_projection", linear(config.theory_dim, d));
  theory_null_ = register_parameter("theory_null", torch::zeros({d}));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < config.layers; ++i) blocks_->push_back(DiTBlock(config));
  final_adaln_ = register_module("final_adaln", linear(d, 2 * d));
  latent_head_ = register_module("latent_head", linear(d, config.latent));
  if (!config.tie_embeddings)
    token_head_ = register_module(
        "token_head", torch::nn::Linear(torch::nn::LinearOptions(d, tokens::kVocabSize).bias(false)));
  token_bias_ = register_parameter("token_bias", torch::zeros({tokens::kVocabSize}));

  torch::NoGradGuard no_grad;
  token_embedding_->weight.normal_(0.0, 0.02);
  roles_->weight.normal_(0.0, 0.02);
  final_adaln_->weight.zero_();
  final_adaln_->bias.zero_();
}

torch::Tensor TatumFlowNetImpl::encode_latent(const torch::Tensor& tokens) {
  return latent_norm(latent_encoder_(token_embedding_(tokens)));
}

StyleOutput TatumFlowNetImpl::encode_style(const torch::Tensor& reference_tokens) {
  const auto mask = reference_tokens.ne(tokens::kPad).unsqueeze(-1).to(torch::kFloat32);
  const auto pooled = (token_embedding_(reference_tokens) * mask).sum(1) / mask.sum(1).clamp_min(1.0);
  const auto hidden = torch::gelu(style_hidden_(pooled));
  return {style_mu_(hidden), style_logvar_(hidden).clamp(-10.0, 10.0)};
}

TheoryOutput TatumFlowNetImpl::encode_theory(const torch::Tensor& features) {
  std::vector<torch::Tensor> components;
  std::int64_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    components.push_back(theory_components_[i]->forward(features.narrow(1, offset, kTheoryFeatureDims[i])));
    offset += kTheoryFeatureDims[i];
  }
  return {theory_fusion_(torch::cat(components, 1)), torch::stack(components, 1)};
}

torch::Tensor TatumFlowNetImpl::time_condition(const torch::Tensor& time) {
  return time_mlp_->forward(timestep_embedding(time, config_.hidden));
}

torch::Tensor TatumFlowNetImpl::content_condition(const torch::Tensor& style, const torch::Tensor& theory,
                                                  const torch::Tensor& style_keep,
                                                  const torch::Tensor& theory_keep) {
  const auto part = [](const torch::Tensor& value, torch::nn::Linear& projection, const torch::Tensor& null,
                       const torch::Tensor& keep) {
    if (!value.defined()) return null.unsqueeze(0);
    const auto projected = projection(value);
    if (!keep.defined()) return projected;
    const auto k = keep.to(projected.dtype()).unsqueeze(1);
    return k * projected + (1 - k) * null;
  };
  return part(style, style_projection_, style_null_, style_keep) +
         part(theory, theory_projection_, theory_null_, theory_keep);
}

torch::Tensor TatumFlowNetImpl::stack_input(const torch::Tensor& latents, const torch::Tensor& roles) {
  const auto length = latents.size(1);
  TORCH_CHECK(length <= config_.max_positions, "sequence of ", length, " positions exceeds max_positions ",
              config_.max_positions);
  return latent_decoder_(latents) + positions_.narrow(0, 0, length) + roles_(roles);
}

torch::Tensor TatumFlowNetImpl::backbone(const torch::Tensor& latents, const torch::Tensor& roles,
                                         const torch::Tensor& condition, AttentionMode mode,
                                         std::vector<torch::Tensor>* qkv_out) {
  auto x = stack_input(latents, roles);
  const auto c = torch::silu(condition);
  for (std::size_t i = 0; i < blocks_->size(); ++i) {
    torch::Tensor qkv;
    x = blocks_[i]->as<DiTBlock>()->forward(x, c, mode, qkv_out != nullptr ? &qkv : nullptr);
    if (qkv_out != nullptr) qkv_out->push_back(qkv);
  }
  const auto m = final_adaln_(c).unsqueeze(1).chunk(2, -1);
  return unit_norm(x) * (1 + m[1]) + m[0];
}

torch::Tensor TatumFlowNetImpl::token_logits(const torch::Tensor& hidden) {
  const auto& weight = config_.tie_embeddings ? token_embedding_->weight : token_head_->weight;
  return torch::linear(hidden, weight, token_bias_);
}

torch::Tensor TatumFlowNetImpl::predict_latent(const torch::Tensor& hidden) { return latent_head_(hidden); }

torch::Tensor TatumFlowNetImpl::readout(const torch::Tensor& latent) {
  return token_logits(unit_norm(latent_decoder_(latent)));
}

torch::Tensor TatumFlowNetImpl::autoregressive_logits(const torch::Tensor& tokens,
                                                      const torch::Tensor& condition) {
  const auto roles = torch::full_like(tokens, kRoleAutoregressive);
  return token_logits(backbone(encode_latent(tokens), roles, condition, AttentionMode::kCausal));
}

DecodeCache TatumFlowNetImpl::make_cache(std::int64_t capacity, const torch::Tensor& condition) {
  TORCH_CHECK(capacity >= 1 && capacity <= config_.max_positions, "decode capacity ", capacity,
              " outside [1, max_positions ", config_.max_positions, "]");
  DecodeCache cache;
  cache.capacity = capacity;
  cache.condition = condition;
  const auto c = torch::silu(condition);
  for (std::size_t i = 0; i < blocks_->size(); ++i) {
    auto block = blocks_[i]->as<DiTBlock>();
    cache.layers.push_back(block->attention->make_cache(capacity));
    cache.modulation.push_back(block->step_modulation(c));
  }
  cache.final_modulation = final_adaln_(c).reshape({2, config_.hidden}).clone();
  cache.final_modulation[1].add_(1.0);
  return cache;
}

torch::Tensor TatumFlowNetImpl::prefill(const torch::Tensor& tokens, DecodeCache& cache) {
  const std::int64_t length = tokens.size(0);
  TORCH_CHECK(cache.length == 0, "prefill needs an empty decode cache");
  TORCH_CHECK(length >= 1 && length <= cache.capacity, "prefill of ", length, " tokens into a cache of ",
              cache.capacity);
  const auto batch = tokens.unsqueeze(0);
  std::vector<torch::Tensor> qkv;
  const auto hidden = backbone(encode_latent(batch), torch::full_like(batch, kRoleAutoregressive),
                               cache.condition, AttentionMode::kCausal, &qkv);
  for (std::size_t i = 0; i < blocks_->size(); ++i) {
    blocks_[i]->as<DiTBlock>()->attention->fill_cache(qkv[i], cache.layers[i]);
  }
  cache.length = length;
  return token_logits(hidden[0][length - 1]);
}

void TatumFlowNetImpl::prepare_inference() {
  const auto all = torch::arange(tokens::kVocabSize,
                                 torch::TensorOptions().dtype(torch::kInt64).device(positions_.device()));
  input_table_ = latent_decoder_(encode_latent(all)) + roles_->weight[kRoleAutoregressive];
}

torch::Tensor TatumFlowNetImpl::step(std::int64_t token, DecodeCache& cache) {
  DecodeCache* const caches[] = {&cache};
  return step_rows({&token, 1}, caches)[0];
}

torch::Tensor TatumFlowNetImpl::step_rows(std::span<const std::int64_t> tokens,
                                          std::span<DecodeCache* const> caches) {
  TORCH_CHECK(!tokens.empty() && tokens.size() == caches.size(), "step_rows: ", tokens.size(), " tokens for ",
              caches.size(), " caches");
  std::vector<std::int64_t> positions;
  std::vector<torch::Tensor> inputs, modulation_rows, final_rows;
  positions.reserve(caches.size());
  inputs.reserve(caches.size());
  for (std::size_t row = 0; row < caches.size(); ++row) {
    const std::int64_t token = tokens[row];
    const std::int64_t position = caches[row]->length;
    TORCH_CHECK(position < caches[row]->capacity, "decode cache full at ", caches[row]->capacity,
                " positions");
    TORCH_CHECK(token >= 0 && token < tokens::kVocabSize, "token ", token, " outside the vocabulary");
    positions.push_back(position);
    if (input_table_.defined()) {
      inputs.push_back(input_table_[token] + positions_[position]);
    } else {
      const auto one =
          torch::full({1}, token, torch::TensorOptions().dtype(torch::kInt64).device(positions_.device()));
      inputs.push_back(latent_decoder_(encode_latent(one))[0] + roles_->weight[kRoleAutoregressive] +
                       positions_[position]);
    }
  }
  auto x = stack_rows(inputs);
  std::vector<AttentionCache*> layer_caches(caches.size());
  for (std::size_t i = 0; i < blocks_->size(); ++i) {
    modulation_rows.clear();
    for (std::size_t row = 0; row < caches.size(); ++row) {
      layer_caches[row] = &caches[row]->layers[i];
      modulation_rows.push_back(caches[row]->modulation[i]);
    }
    x = blocks_[i]->as<DiTBlock>()->step(x, stack_rows(modulation_rows), layer_caches, positions);
  }
  for (DecodeCache* cache : caches) {
    ++cache->length;
    final_rows.push_back(cache->final_modulation);
  }
  const auto final_modulation = stack_rows(final_rows).unbind(1);
  const auto hidden = torch::addcmul(final_modulation[0], unit_norm(x), final_modulation[1]);
  const auto& weight = config_.tie_embeddings ? token_embedding_->weight : token_head_->weight;
  return affine_rows(token_bias_, weight, hidden);
}

std::vector<std::pair<std::string, std::int64_t>> TatumFlowNetImpl::parameter_groups() const {
  // Prefix of the parameter name -> component.
  static const std::vector<std::pair<std::string, std::string>> groups = {
      {"token_embedding", "token_embedding"},
      {"positions", "positional_embedding"},
      {"roles", "positional_embedding"},
      {"latent_encoder", "latent_encoder"},
      {"latent_decoder", "latent_decoder"},
      {"time_mlp", "time_embedding"},
      {"style_", "style_vae"},
      {"theory_", "theory_encoder"},
      {"blocks", "dit_blocks"},
      {"final_adaln", "output_heads"},
      {"latent_head", "output_heads"},
      {"token_head", "output_heads"},
      {"token_bias", "output_heads"},
  };
  std::vector<std::pair<std::string, std::int64_t>> counts;
  for (const auto& [prefix, group] : groups) {
    if (std::none_of(counts.begin(), counts.end(), [&](const auto& entry) { return entry.first == group; })) {
      counts.emplace_back(group, 0);
    }
  }
  std::int64_t attention = 0;
  std::int64_t mlp = 0;
  std::int64_t modulation = 0;
  std::int64_t total = 0;
  for (const auto& item : named_parameters()) {
    const std::string& name = item.key();
    const std::int64_t n = item.value().numel();
    total += n;
    for (const auto& [prefix, group] : groups) {
      if (name.rfind(prefix, 0) != 0) continue;
      for (auto& entry : counts) {
        if (entry.first == group) entry.second += n;
      }
      break;
    }
    if (name.rfind("blocks", 0) == 0) {
      if (name.find(".attention.") != std::string::npos) attention += n;
      if (name.find(".fc") != std::string::npos) mlp += n;
      if (name.find(".adaln.") != std::string::npos) modulation += n;
    }
  }
  counts.emplace_back("dit_blocks.attention", attention);
  counts.emplace_back("dit_blocks.mlp", mlp);
  counts.emplace_back("dit_blocks.adaln_modulation", modulation);
  counts.emplace_back("total", total);
  return counts;
}

}  // namespace tatumflow::model
