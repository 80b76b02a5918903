// SPDX-License-Identifier: GPL-3.0-or-later
// model_api.hpp: loading, chunked generation (AR with a KV cache, or DDIM
// latent diffusion), style encoding.
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "checkpoint.hpp"
#include "context.hpp"
#include "sampling.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/random.hpp"

namespace tatumflow::model {

using tokens::Token;

// One autoregressive pass over the window under one condition.
struct DecodeStream {
  DecodeCache cache;
  torch::Tensor condition;    // (1, D) the cache was built with; undefined: stream unused
  torch::Tensor next_logits;  // (V) after the last cached token
};

struct GenerationState::Impl {
  const ModelContext::Impl* owner = nullptr;
  bool has_cache = false;
  std::vector<Token> cached;  // window tokens fed into the caches
  DecodeStream styled;
  // Classifier-free guidance on the style: the same tokens without it.
  DecodeStream unstyled;
  TokenSampler sampler;
  std::vector<float> logits = std::vector<float>(tokens::kVocabSize);
  std::vector<float> unstyled_logits = std::vector<float>(tokens::kVocabSize);
  double seconds_per_denoise_step = 0.0;  // running estimate for deadline planning
};

namespace {

constexpr double kMaxTokensPerSecond = 120.0;  // bounds a chunk even if the model never advances time
constexpr std::int64_t kDiffusionWindow = 512;
constexpr int kMaxDiffusionBlocks = 4;
constexpr std::size_t kMaxCatchUpSteps = 64;  // beyond this many new context tokens a prefill is cheaper

void copy_logits(const torch::Tensor& logits, std::vector<float>& out) {
  const auto cpu = logits.to(torch::kCPU, torch::kFloat32).contiguous();
  std::memcpy(out.data(), cpu.data_ptr<float>(), out.size() * sizeof(float));
}

// The window start for a causal pass over `size` context tokens that must leave
// `room` free positions: 0 when all fits; otherwise a multiple of capacity / 4
// (so it changes rarely and the cache survives), moved on to the next <T> so
// the window opens like a training window.
std::size_t window_start(std::span<const Token> context, std::size_t room, std::size_t capacity) {
  if (context.size() + room <= capacity) return 0;
  const std::size_t quantum = std::max<std::size_t>(capacity / 4, 1);
  const std::size_t least = context.size() + room - capacity;
  std::size_t start = (least + quantum - 1) / quantum * quantum;
  for (std::size_t i = start; i < context.size() && i < start + quantum; ++i) {
    if (context[i] == tokens::kChunk) return i;
  }
  return std::min(start, context.size() - 1);
}

// The notes of `chunk`, timed from the clock at its start.
void decode_chunk(const TokenGrammar& before, std::span<const Token> chunk, GeneratedChunk& out) {
  const std::int64_t start_steps = before.now_us() / tokens::kStepUs;
  std::vector<Token> sequence(static_cast<std::size_t>(start_steps / tokens::kStepsPerChunk), tokens::kChunk);
  if (start_steps % tokens::kStepsPerChunk != 0) {
    sequence.push_back(static_cast<Token>(tokens::kTimeShiftBase + start_steps % tokens::kStepsPerChunk - 1));
  }
  if (before.velocity_bin() >= 0)
    sequence.push_back(static_cast<Token>(tokens::kVelocityBase + before.velocity_bin()));
  sequence.insert(sequence.end(), chunk.begin(), chunk.end());
  Performance performance = tokens::decode(sequence);
  for (Note& note : performance.notes) note.onset_us -= out.start_us;
  for (PedalChange& pedal : performance.pedals) pedal.time_us -= out.start_us;
  out.notes = std::move(performance.notes);
  out.pedals = std::move(performance.pedals);
}

struct Plan {
  std::int64_t end_us = 0;
  std::size_t max_tokens = 0;
  const std::atomic<bool>* cancel = nullptr;
  std::chrono::steady_clock::time_point deadline;
  SamplingOptions sampling;

  // Sets the flag that stops generation, if any.
  bool should_stop(GeneratedChunk& chunk) const {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) chunk.cancelled = true;
    if (std::chrono::steady_clock::now() >= deadline) chunk.deadline_missed = true;
    return chunk.cancelled || chunk.deadline_missed;
  }
};

bool same_condition(const torch::Tensor& a, const torch::Tensor& b) {
  return a.defined() == b.defined() && (!a.defined() || torch::equal(a, b));
}

// Feeds `token` to every stream in use.
void step_streams(const ModelContext::Impl& model, GenerationState::Impl& state, Token token) {
  TatumFlowNet net = model.net;  // a handle; in eval mode the parameters are only read
  for (DecodeStream* stream : {&state.styled, &state.unstyled}) {
    if (stream->condition.defined()) stream->next_logits = model.steps.step(net, token, stream->cache);
  }
  state.cached.push_back(token);
}

// unstyled_condition: undefined unless classifier-free guidance is on.
void ensure_cache(const ModelContext::Impl& model, GenerationState::Impl& state,
                  std::span<const Token> window, const torch::Tensor& condition,
                  const torch::Tensor& unstyled_condition) {
  const bool reusable = state.has_cache && state.owner == &model && state.cached.size() <= window.size() &&
                        window.size() - state.cached.size() <= kMaxCatchUpSteps &&
                        std::equal(state.cached.begin(), state.cached.end(), window.begin()) &&
                        same_condition(state.styled.condition, condition) &&
                        same_condition(state.unstyled.condition, unstyled_condition) && !state.cached.empty();
  if (reusable) {
    for (std::size_t i = state.cached.size(); i < window.size(); ++i) step_streams(model, state, window[i]);
    return;
  }
  TatumFlowNet net = model.net;
  const auto tokens = token_tensor(window, model.device);
  state.styled.condition = condition;
  state.unstyled.condition = unstyled_condition;
  for (DecodeStream* stream : {&state.styled, &state.unstyled}) {
    if (!stream->condition.defined()) continue;
    stream->cache = net->make_cache(model.info.context_positions, stream->condition);
    stream->next_logits = net->prefill(tokens, stream->cache);
  }
  state.cached.assign(window.begin(), window.end());
  state.owner = &model;
  state.has_cache = true;
}

// The next token's logits; with guidance g, unstyled + g * (styled - unstyled).
void next_logits(GenerationState::Impl& state, float guidance) {
  copy_logits(state.styled.next_logits, state.logits);
  if (!state.unstyled.condition.defined()) return;
  copy_logits(state.unstyled.next_logits, state.unstyled_logits);
  for (std::size_t i = 0; i < state.logits.size(); ++i)
    state.logits[i] = state.unstyled_logits[i] + guidance * (state.logits[i] - state.unstyled_logits[i]);
}

void generate_autoregressive(const ModelContext::Impl& model, GenerationState::Impl& state,
                             std::span<const Token> context, const torch::Tensor& content,
                             const torch::Tensor& unstyled, float guidance, const Plan& plan,
                             TokenGrammar& grammar, Rng& rng, GeneratedChunk& chunk) {
  TatumFlowNet net = model.net;
  const auto capacity = static_cast<std::size_t>(model.info.context_positions);
  const auto clean = net->time_condition(torch::zeros({1}, content.options()));
  const auto condition = clean + content;
  const auto unstyled_condition = unstyled.defined() ? clean + unstyled : torch::Tensor();
  std::vector<Token> sequence(context.begin(), context.end());
  if (sequence.empty()) sequence.push_back(tokens::kSos);
  const std::size_t room = std::min(plan.max_tokens, capacity / 2);

  while (chunk.tokens.size() < plan.max_tokens) {
    const std::size_t start = window_start(sequence, room, capacity);
    ensure_cache(model, state, std::span(sequence).subspan(start), condition, unstyled_condition);
    const StepCombiner::Decoding decoding(model.steps);
    // Decode until the cache is full; then slide the window and prefill again.
    while (chunk.tokens.size() < plan.max_tokens) {
      if (plan.should_stop(chunk)) return;
      next_logits(state, guidance);
      grammar.mask(state.logits);
      const Token token = state.sampler.sample(state.logits, plan.sampling, rng);
      chunk.tokens.push_back(token);
      sequence.push_back(token);
      grammar.push(token);
      if (grammar.now_us() >= plan.end_us) return;
      if (state.styled.cache.length >= state.styled.cache.capacity) break;
      step_streams(model, state, token);
    }
  }
}

void generate_diffusion(const ModelContext::Impl& model, GenerationState& public_state,
                        std::span<const Token> context, const torch::Tensor& content,
                        const torch::Tensor& unguided, const GenerationControls& controls, const Plan& plan,
                        TokenGrammar& grammar, Rng& rng, GeneratedChunk& chunk) {
  GenerationState::Impl& state = public_state.impl();
  TatumFlowNet net = model.net;
  const std::int64_t window = std::min<std::int64_t>(model.info.context_positions, kDiffusionWindow);
  std::vector<Token> sequence(context.begin(), context.end());
  if (sequence.empty()) sequence.push_back(tokens::kSos);

  // Tokens per second of the recent context sets how many positions a block needs.
  const std::size_t tail = std::min<std::size_t>(context.size(), 256);
  const double tail_seconds =
      double(tokens::end_time_us(context) - tokens::end_time_us(context.first(context.size() - tail))) * 1e-6;
  const double density =
      tail_seconds > 0.5 ? std::clamp(double(tail) / tail_seconds, 8.0, kMaxTokensPerSecond) : 40.0;

  for (int block = 0; block < kMaxDiffusionBlocks; ++block) {
    if (plan.should_stop(chunk)) return;
    const double remaining_seconds = double(plan.end_us - grammar.now_us()) * 1e-6;
    const auto wanted = static_cast<std::int64_t>(std::ceil(density * remaining_seconds * 1.25));
    const std::int64_t fresh = std::clamp<std::int64_t>(wanted, 16, window / 2);
    const auto context_length =
        std::min<std::int64_t>(static_cast<std::int64_t>(sequence.size()), window - fresh);
    std::vector<Token> positions(sequence.end() - context_length, sequence.end());
    positions.resize(static_cast<std::size_t>(context_length + fresh), tokens::kPad);

    LatentSampling request;
    const auto ids = token_tensor(positions, model.device).unsqueeze(0);
    request.clean = net->encode_latent(ids);
    request.noised = torch::arange(context_length + fresh,
                                   torch::TensorOptions().dtype(torch::kInt64).device(model.device))
                         .ge(context_length)
                         .unsqueeze(0);
    request.content = content;
    request.unguided = unguided;
    request.guidance = controls.guidance;
    request.steps = controls.diffusion_steps;
    request.sampler = controls.sampler == DiffusionSampler::kDdpm ? Sampler::kDdpm : Sampler::kDdim;
    // Fewer steps when the deadline cannot fit them all, judged by earlier steps' cost.
    if (state.seconds_per_denoise_step > 0.0 &&
        plan.deadline != std::chrono::steady_clock::time_point::max()) {
      const double left =
          std::chrono::duration<double>(plan.deadline - std::chrono::steady_clock::now()).count();
      request.steps = std::clamp(static_cast<int>(left / state.seconds_per_denoise_step), 1, request.steps);
    }
    const auto started = std::chrono::steady_clock::now();
    request.keep_going = [&](int) { return !plan.should_stop(chunk); };
    auto generator = at::make_generator<at::CPUGeneratorImpl>(rng.next());
    const SampledLatents sampled = sample_latents(net, model.schedule, request, generator);
    chunk.diffusion_steps_run = sampled.steps_run;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    state.seconds_per_denoise_step = seconds / std::max(sampled.steps_run, 1);
    if (chunk.cancelled) return;

    const auto logits =
        net->readout(sampled.x0[0].narrow(0, context_length, fresh)).to(torch::kCPU).contiguous();
    for (std::int64_t i = 0; i < fresh && chunk.tokens.size() < plan.max_tokens; ++i) {
      std::memcpy(state.logits.data(), logits[i].data_ptr<float>(), state.logits.size() * sizeof(float));
      grammar.mask(state.logits);
      const Token token = state.sampler.sample(state.logits, plan.sampling, rng);
      chunk.tokens.push_back(token);
      sequence.push_back(token);
      grammar.push(token);
      if (grammar.now_us() >= plan.end_us) return;
    }
    if (chunk.deadline_missed || chunk.tokens.size() >= plan.max_tokens) return;
  }
}

}  // namespace

torch::Tensor token_tensor(std::span<const Token> sequence, const torch::Device& device) {
  std::vector<std::int64_t> values(sequence.begin(), sequence.end());
  return torch::tensor(values, torch::kInt64).to(device);
}

torch::Tensor style_vector(const StyleLatent& style, const GenerationControls& controls,
                           const torch::Device& device) {
  if (!controls.use_style) return {};
  Rng style_rng(mix64(controls.seed ^ 0x5354594c45ULL));
  std::vector<float> values(kStyleDim);
  for (std::size_t i = 0; i < values.size(); ++i) {
    // Box-Muller from the seeded generator: the same on every platform.
    const double u1 = 1.0 - style_rng.uniform();
    const double u2 = style_rng.uniform();
    const double normal = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
    values[i] = style.mean[i] + controls.creativity * std::exp(0.5f * style.log_variance[i]) * float(normal);
  }
  return torch::tensor(values).view({1, kStyleDim}).to(device);
}

void check_controls(const GenerationControls& controls, const std::string& what) {
  if (!(controls.temperature >= 0.0f) || !(controls.top_p > 0.0f && controls.top_p <= 1.0f) ||
      controls.top_k < 0 || controls.diffusion_steps < 1 || !(controls.guidance >= 0.0f) ||
      !(controls.creativity >= 0.0f)) {
    throw ModelError(what +
                     ": controls out of range (temperature >= 0, top_k >= 0, 0 < top_p <= 1, "
                     "diffusion_steps >= 1, guidance >= 0, creativity >= 0)");
  }
}

void check_tokens(std::span<const Token> sequence, const std::string& what) {
  for (Token token : sequence) {
    if (token >= tokens::kVocabSize) {
      throw ModelError(what + " token " + std::to_string(token) + " outside the vocabulary");
    }
  }
}

const char* to_string(StepSharing sharing) {
  switch (sharing) {
    case StepSharing::kShared:
      return "shared";
    case StepSharing::kSeparate:
      return "separate";
    case StepSharing::kAuto:
      break;
  }
  return "auto";
}

const char* to_string(GenerationMode mode) {
  return mode == GenerationMode::kDiffusion ? "diffusion" : "autoregressive";
}

StyleLatent StyleLatent::mix(const StyleLatent& a, const StyleLatent& b, float alpha) {
  StyleLatent out;
  for (std::size_t i = 0; i < out.mean.size(); ++i) {
    out.mean[i] = (1.0f - alpha) * a.mean[i] + alpha * b.mean[i];
    out.log_variance[i] = (1.0f - alpha) * a.log_variance[i] + alpha * b.log_variance[i];
  }
  return out;
}

ModelContext::ModelContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelContext::~ModelContext() = default;
const ModelInfo& ModelContext::info() const { return impl_->info; }

DecodeStats ModelContext::decode_stats() const { return impl_->steps.stats(); }

std::shared_ptr<const ModelContext> ModelContext::load(const std::filesystem::path& path,
                                                       const std::string& device,
                                                       const LoadOptions& options) {
  torch::Device target(torch::kCPU);
  try {
    target = torch::Device(device);
  } catch (const c10::Error&) {
    throw ModelError("unknown device \"" + device + "\" (use cpu, cuda or cuda:N)");
  }
  if (target.is_cuda() && !torch::cuda::is_available()) {
    throw ModelError("device \"" + device + "\" requested, but this build or machine has no CUDA");
  }
  retain_freed_memory();
  LoadedCheckpoint loaded = read_checkpoint(path);
  if (options.context_positions < 0 || options.context_positions > loaded.header.config.max_positions) {
    throw ModelError("context positions " + std::to_string(options.context_positions) + " outside [0, " +
                     std::to_string(loaded.header.config.max_positions) + "], the model's position table");
  }
  auto impl = translate_errors<CheckpointError>("checkpoint " + path.string(), [&] {
    const bool share = options.step_sharing == StepSharing::kShared ||
                       (options.step_sharing == StepSharing::kAuto && !target.is_cpu());
    auto made = std::make_unique<Impl>(loaded.header.config, share);
    auto parameters = made->net->named_parameters();
    read_tensors(loaded.archive, loaded.header.kind == "training" ? "ema" : "model", parameters, path);
    made->net->eval();
    made->net->to(target);
    made->device = target;
    {
      torch::NoGradGuard no_grad;
      made->net->prepare_inference();
    }
    made->info.config = loaded.header.config;
    made->info.device = target.str();
    made->info.trained_steps = loaded.header.step;
    made->info.context_positions =
        options.context_positions > 0
            ? options.context_positions
            : (loaded.header.window_tokens > 0
                   ? std::min<std::int64_t>(loaded.header.window_tokens, loaded.header.config.max_positions)
                   : loaded.header.config.max_positions);
    made->info.path = path;
    for (const auto& parameter : made->net->parameters()) made->info.parameters += parameter.numel();
    return made;
  });
  return std::shared_ptr<const ModelContext>(new ModelContext(std::move(impl)));
}

GenerationState::GenerationState() : impl_(std::make_unique<Impl>()) {}
GenerationState::~GenerationState() = default;
GenerationState::GenerationState(GenerationState&&) noexcept = default;
GenerationState& GenerationState::operator=(GenerationState&&) noexcept = default;
void GenerationState::reset() { *impl_ = Impl(); }

GeneratedChunk generate_chunk(const ModelContext& model, GenerationState& state,
                              std::span<const Token> context, const StyleLatent& style,
                              const GenerationControls& controls, double chunk_seconds,
                              const std::atomic<bool>* cancel,
                              std::chrono::steady_clock::time_point deadline) {
  if (!(chunk_seconds > 0.0 && chunk_seconds <= 600.0)) {
    throw ModelError("generate_chunk: chunk_seconds must be in (0, 600], got " +
                     std::to_string(chunk_seconds));
  }
  check_controls(controls, "generate_chunk");
  check_tokens(context, "generate_chunk: context");
  return translate_errors("generate_chunk", [&] {
    c10::InferenceMode inference;
    const ModelContext::Impl& impl = model.impl();
    TatumFlowNet net = impl.net;

    GeneratedChunk chunk;
    TokenGrammar grammar(context);
    chunk.start_us = grammar.now_us();
    const TokenGrammar at_start = grammar;
    Plan plan;
    plan.end_us = chunk.start_us + static_cast<std::int64_t>(std::llround(chunk_seconds * 1e6));
    plan.max_tokens = static_cast<std::size_t>(std::ceil(chunk_seconds * kMaxTokensPerSecond));
    plan.cancel = cancel;
    plan.deadline = deadline;
    plan.sampling = {controls.temperature, controls.top_k, controls.top_p};

    const torch::Tensor z = style_vector(style, controls, impl.device);
    torch::Tensor theory;
    if (controls.theory) theory = net->encode_theory(theory_tensor(*controls.theory).to(impl.device)).fused;
    const auto content = net->content_condition(z, theory);

    Rng rng(mix64(controls.seed) ^ mix64(context.size() + 0x746f6b656eULL));
    const auto unguided = controls.use_style ? net->content_condition({}, theory) : torch::Tensor();
    if (controls.mode == GenerationMode::kAutoregressive) {
      // Guidance 1 would decode the unstyled stream for nothing.
      const auto unstyled = controls.guidance != 1.0f ? unguided : torch::Tensor();
      generate_autoregressive(impl, state.impl(), context, content, unstyled, controls.guidance, plan,
                              grammar, rng, chunk);
    } else {
      generate_diffusion(impl, state, context, content, unguided, controls, plan, grammar, rng, chunk);
    }
    chunk.length_us = grammar.now_us() - chunk.start_us;
    decode_chunk(at_start, chunk.tokens, chunk);
    return chunk;
  });
}

StyleLatent encode_style(const ModelContext& model, std::span<const Token> sequence) {
  if (sequence.empty()) throw ModelError("encode_style: empty token sequence");
  return translate_errors("encode_style", [&] {
    c10::InferenceMode inference;
    const ModelContext::Impl& impl = model.impl();
    TatumFlowNet net = impl.net;
    const StyleOutput out = net->encode_style(token_tensor(sequence, impl.device).unsqueeze(0));
    const auto mu = out.mu.to(torch::kCPU).contiguous();
    const auto logvar = out.logvar.to(torch::kCPU).contiguous();
    StyleLatent latent;
    std::memcpy(latent.mean.data(), mu.data_ptr<float>(), sizeof(float) * kStyleDim);
    std::memcpy(latent.log_variance.data(), logvar.data_ptr<float>(), sizeof(float) * kStyleDim);
    return latent;
  });
}

void set_torch_threads(int threads) {
  if (threads < 1) throw ModelError("torch threads must be at least 1, got " + std::to_string(threads));
  torch::set_num_threads(threads);
}

TheoryFeatures theory_of(std::span<const Token> sequence) {
  return compute_theory_features(tokens::decode(sequence));
}

}  // namespace tatumflow::model
