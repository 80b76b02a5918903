// SPDX-License-Identifier: GPL-3.0-or-later
// model_bench.hpp: the engine's speed on seeded random weights, timing the same
// calls generate_chunk() makes (prefill, step with grammar mask and sampling,
// sample_latents) but with fixed lengths instead of seconds of music.
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>

#include "context.hpp"
#include "diffusion.hpp"
#include "network.hpp"
#include "sampling.hpp"
#include "tatumflow/engine/bench_stats.hpp"
#include "tatumflow/engine/model_bench.hpp"
#include "tatumflow/engine/random.hpp"

namespace tatumflow::model {

using tokens::Token;

namespace {

using Clock = std::chrono::steady_clock;

// A grammatical prompt of exactly `length` tokens: tokens::encode() of seeded
// random piano notes (chords now and then), cut to length.
std::vector<Token> bench_prompt(std::size_t length, std::uint64_t seed) {
  Rng rng(seed);
  Performance performance;
  std::int64_t onset_us = 0;
  // Every note takes at least two tokens, so `length` notes are plenty.
  for (std::size_t i = 0; i < length; ++i) {
    if (!rng.chance(0.25)) onset_us += 20'000 + static_cast<std::int64_t>(rng.below(280'000));
    performance.notes.push_back({onset_us, 100'000 + static_cast<std::int64_t>(rng.below(700'000)),
                                 static_cast<std::uint8_t>(36 + rng.below(60)),
                                 static_cast<std::uint8_t>(40 + rng.below(70)), 0});
  }
  performance.sort();
  std::vector<Token> prompt = tokens::encode(performance, {.add_sos = true, .add_eos = false});
  prompt.resize(length);
  return prompt;
}

// Runs `body` warmup times untimed, then repeats times timed.
std::vector<double> time_runs(const EngineBenchOptions& options, const std::function<void()>& body) {
  for (int i = 0; i < options.warmup; ++i) body();
  std::vector<double> runs_ms;
  for (int i = 0; i < options.repeats; ++i) {
    const auto started = Clock::now();
    body();
    runs_ms.push_back(ms_since(started));
  }
  return runs_ms;
}

void check_options(const ModelConfig& config, const EngineBenchOptions& options) {
  const bool lengths_ok =
      options.forward_tokens >= 1 && options.decode_tokens >= 1 && options.diffusion_positions >= 2 &&
      options.diffusion_steps >= 1 && !options.prompt_tokens.empty() &&
      std::all_of(options.prompt_tokens.begin(), options.prompt_tokens.end(), [](int n) { return n >= 1; });
  if (options.repeats < 1 || options.warmup < 0 || !lengths_ok) {
    throw ModelError(
        "bench_engine: repeats >= 1, warmup >= 0, forward, prompt and decode tokens >= 1, diffusion "
        "positions >= 2 and diffusion steps >= 1 needed");
  }
  if (std::max(options.forward_tokens, options.diffusion_positions) > config.max_positions) {
    throw ModelError("bench_engine: a forward of " + std::to_string(options.forward_tokens) +
                     " tokens or a diffusion window of " + std::to_string(options.diffusion_positions) +
                     " positions does not fit max_positions " + std::to_string(config.max_positions) +
                     " of model \"" + config.name + "\"");
  }
}

}  // namespace

EngineBenchResult bench_engine(const ModelConfig& config, const EngineBenchOptions& options) {
  check_options(config, options);
  return translate_errors("bench_engine", [&] {
    retain_freed_memory();
    const int longest_prompt = *std::max_element(options.prompt_tokens.begin(), options.prompt_tokens.end());
    ModelConfig benched = config;
    benched.max_positions = std::max(config.max_positions, longest_prompt + options.decode_tokens);

    const torch::Device device(options.device);
    torch::manual_seed(options.seed);
    TatumFlowNet net(benched);
    {
      // Every weight non-zero (the constructor zeroes the AdaLN layers), as after training.
      torch::NoGradGuard no_grad;
      for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.02);
      net->eval();
      net->to(device);
      net->prepare_inference();
    }
    c10::InferenceMode inference;  // after building: the weights stay ordinary tensors, as when loaded
    EngineBenchResult result;
    result.max_positions = benched.max_positions;
    result.torch_threads = torch::get_num_threads();
    for (const auto& parameter : net->parameters()) result.parameters += parameter.numel();

    const std::vector<Token> prompt =
        bench_prompt(static_cast<std::size_t>(
                         std::max({options.forward_tokens, longest_prompt, options.diffusion_positions})),
                     options.seed);
    const std::span<const Token> prompt_span(prompt);
    const auto content = net->content_condition({}, {});
    const auto condition = net->time_condition(torch::zeros({1}, content.options())) + content;

    const auto forward_ids =
        token_tensor(prompt_span.first(static_cast<std::size_t>(options.forward_tokens)), device)
            .unsqueeze(0);
    // Each timed body ends by copying a result to the CPU, which waits for a GPU to finish.
    result.forward_ms = time_runs(options, [&] {
      (void)net->autoregressive_logits(forward_ids, condition).select(1, -1).to(torch::kCPU);
    });

    // As generate_chunk's defaults: temperature 1, top-k 50, top-p 0.95.
    const SamplingOptions sampling{1.0f, 50, 0.95f};
    for (const int prompt_tokens : options.prompt_tokens) {
      DecodeTimings timings;
      timings.prompt_tokens = prompt_tokens;
      timings.fits_config = prompt_tokens + options.decode_tokens <= config.max_positions;
      const auto context = prompt_span.first(static_cast<std::size_t>(prompt_tokens));
      const auto ids = token_tensor(context, device);
      TokenSampler sampler;
      std::vector<float> logits(tokens::kVocabSize);
      for (int run = -options.warmup; run < options.repeats; ++run) {
        const auto prefill_started = Clock::now();
        DecodeCache cache = net->make_cache(prompt_tokens + options.decode_tokens, condition);
        torch::Tensor next = net->prefill(ids, cache);
        const double prefill_ms = ms_since(prefill_started);

        TokenGrammar grammar(context);
        Rng rng(mix64(options.seed) ^ static_cast<std::uint64_t>(prompt_tokens));
        const auto decode_started = Clock::now();
        for (int i = 0; i < options.decode_tokens; ++i) {
          const auto host = next.to(torch::kCPU).contiguous();
          std::memcpy(logits.data(), host.data_ptr<float>(), logits.size() * sizeof(float));
          grammar.mask(logits);
          const Token token = sampler.sample(logits, sampling, rng);
          grammar.push(token);
          next = net->step(token, cache);
        }
        const double decode_ms = ms_since(decode_started);
        if (run < 0) continue;
        timings.prefill_ms.push_back(prefill_ms);
        timings.tokens_per_second.push_back(1000.0 * options.decode_tokens / decode_ms);
      }
      result.decode.push_back(std::move(timings));
    }

    const NoiseSchedule schedule(benched);
    const auto window = static_cast<std::size_t>(options.diffusion_positions);
    LatentSampling request;
    request.clean = net->encode_latent(token_tensor(prompt_span.first(window), device).unsqueeze(0));
    request.noised =
        torch::arange(options.diffusion_positions, torch::TensorOptions(torch::kInt64).device(device))
            .ge(options.diffusion_positions / 2)
            .unsqueeze(0);
    request.content = content;
    request.steps = options.diffusion_steps;
    request.sampler = Sampler::kDdim;
    int steps_run = 0;
    const std::vector<double> runs_ms = time_runs(options, [&] {
      auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
      const SampledLatents sampled = sample_latents(net, schedule, request, generator);
      (void)sampled.x0.to(torch::kCPU);
      steps_run = sampled.steps_run;
    });
    for (const double ms : runs_ms) result.ddim_step_ms.push_back(ms / std::max(steps_run, 1));
    return result;
  });
}

}  // namespace tatumflow::model
