// SPDX-License-Identifier: GPL-3.0-or-later
// model_bench.hpp, bench_realtime(): the live answer path on a trained model.
// The single-session numbers time generate_chunk() itself, as the daemon's
// inference worker calls it; the batched numbers time the denoising and
// readout of several sessions' windows in one pass; the concurrent numbers run
// generate_chunk() on several threads at once, as the daemon's pool does.
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <numeric>
#include <thread>

#include "context.hpp"
#include "tatumflow/engine/bench_stats.hpp"
#include "tatumflow/engine/model_bench.hpp"
#include "tatumflow/engine/random.hpp"

namespace tatumflow::model {

using tokens::Token;

namespace {

using Clock = std::chrono::steady_clock;

// Times `runs` cold first chunks (a fresh state each, as for a new call) in `mode`.
std::vector<double> time_first_chunks(const ModelContext& model, std::span<const Token> call,
                                      GenerationControls controls, const RealtimeBenchOptions& options,
                                      double& music_seconds) {
  std::vector<double> runs_ms;
  std::vector<double> seconds;
  for (int run = -options.warmup; run < options.repeats; ++run) {
    GenerationState state;
    controls.seed = options.seed + static_cast<std::uint64_t>(run + options.warmup);
    const auto started = Clock::now();
    const GeneratedChunk chunk =
        generate_chunk(model, state, call, StyleLatent{}, controls, options.chunk_seconds);
    const double elapsed_ms = ms_since(started);
    if (run < 0) continue;
    runs_ms.push_back(elapsed_ms);
    seconds.push_back(double(chunk.length_us) * 1e-6);
  }
  std::nth_element(seconds.begin(), seconds.begin() + static_cast<std::ptrdiff_t>(seconds.size() / 2),
                   seconds.end());
  music_seconds = seconds[seconds.size() / 2];
  return runs_ms;
}

// `sessions` threads, each generating one chunk from a cold state (seeds
// `seed` + session), started together. Returns the milliseconds until the last
// one finished and sets `music_seconds` to the chunks' mean length.
double time_concurrent_chunks(const ModelContext& model, std::span<const Token> call,
                              const GenerationControls& controls, int sessions, double chunk_seconds,
                              std::uint64_t seed, double& music_seconds) {
  std::vector<double> lengths(static_cast<std::size_t>(sessions));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(sessions));
  std::vector<std::thread> threads;
  const auto started = Clock::now();
  for (int session = 0; session < sessions; ++session) {
    threads.emplace_back([&, session] {
      const auto i = static_cast<std::size_t>(session);
      try {
        GenerationState state;
        GenerationControls own = controls;
        own.seed = seed + i;
        lengths[i] =
            double(generate_chunk(model, state, call, StyleLatent{}, own, chunk_seconds).length_us) * 1e-6;
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double elapsed_ms = ms_since(started);
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
  music_seconds = std::accumulate(lengths.begin(), lengths.end(), 0.0) / sessions;
  return elapsed_ms;
}

}  // namespace

RealtimeBenchResult bench_realtime(const std::filesystem::path& checkpoint, std::span<const Token> call,
                                   const RealtimeBenchOptions& options) {
  if (options.repeats < 1 || options.warmup < 0 || !(options.chunk_seconds > 0.0) ||
      options.diffusion_steps < 1 || options.fresh_positions < 1 || options.sessions.empty() ||
      std::any_of(options.sessions.begin(), options.sessions.end(), [](int n) { return n < 1; })) {
    throw ModelError(
        "bench_realtime: repeats >= 1, warmup >= 0, chunk_seconds > 0, diffusion steps >= 1, fresh "
        "positions >= 1 and session counts >= 1 needed");
  }
  if (call.size() < 16)
    throw ModelError("bench_realtime: the call has " + std::to_string(call.size()) +
                     " tokens; at least 16 needed");
  check_tokens(call, "bench_realtime: call");
  const std::shared_ptr<const ModelContext> model = ModelContext::load(checkpoint, options.device);
  RealtimeBenchResult result;
  result.device = model->info().device;
  result.parameters = model->info().parameters;
  result.call_tokens = static_cast<int>(call.size());
  result.call_seconds = double(tokens::end_time_us(call)) * 1e-6;
  result.tokens_per_music_second = double(call.size()) / std::max(result.call_seconds, 1e-3);

  GenerationControls controls;
  controls.mode = GenerationMode::kDiffusion;
  controls.diffusion_steps = options.diffusion_steps;
  controls.guidance = options.guidance;
  controls.use_style = true;
  result.first_chunk_ms = time_first_chunks(*model, call, controls, options, result.chunk_music_seconds);
  controls.mode = GenerationMode::kAutoregressive;
  result.first_chunk_ar_ms =
      time_first_chunks(*model, call, controls, options, result.chunk_music_seconds_ar);

  const std::shared_ptr<const ModelContext> shared =
      ModelContext::load(checkpoint, options.device, {.step_sharing = StepSharing::kShared});
  const std::shared_ptr<const ModelContext> separate =
      ModelContext::load(checkpoint, options.device, {.step_sharing = StepSharing::kSeparate});
  for (const int sessions : options.sessions) {
    ConcurrentTimings timings;
    timings.sessions = sessions;
    const DecodeStats before = shared->decode_stats();
    for (int run = -options.warmup; run < options.repeats; ++run) {
      const std::uint64_t seed = options.seed + 1000 * static_cast<std::uint64_t>(run + options.warmup);
      double music_seconds = 0.0;
      double ignored = 0.0;
      const double shared_ms = time_concurrent_chunks(*shared, call, controls, sessions,
                                                      options.chunk_seconds, seed, music_seconds);
      const double separate_ms =
          time_concurrent_chunks(*separate, call, controls, sessions, options.chunk_seconds, seed, ignored);
      if (run < 0) continue;
      timings.shared_ms.push_back(shared_ms);
      timings.separate_ms.push_back(separate_ms);
      timings.music_seconds.push_back(music_seconds);
    }
    const DecodeStats after = shared->decode_stats();
    timings.steps_per_pass =
        DecodeStats{after.steps - before.steps, after.passes - before.passes, after.widest_pass}
            .steps_per_pass();
    result.concurrent.push_back(std::move(timings));
  }

  translate_errors("bench_realtime", [&] {
    c10::InferenceMode inference;
    const ModelContext::Impl& impl = model->impl();
    TatumFlowNet net = impl.net;
    const std::int64_t window = std::min<std::int64_t>(impl.info.config.max_positions, 512);
    const std::int64_t fresh = std::min<std::int64_t>(options.fresh_positions, window / 2);
    const auto context_length =
        std::min<std::int64_t>(static_cast<std::int64_t>(call.size()), window - fresh);
    result.window_positions = static_cast<int>(context_length + fresh);
    std::vector<Token> positions(call.end() - context_length, call.end());
    positions.resize(static_cast<std::size_t>(context_length + fresh), tokens::kPad);
    const auto ids = token_tensor(positions, impl.device).unsqueeze(0);

    GenerationControls styled;
    styled.use_style = true;
    const auto content = net->content_condition(style_vector(StyleLatent{}, styled, impl.device), {});
    const auto unguided = net->content_condition({}, {});
    const auto noised = torch::arange(context_length + fresh, ids.options()).ge(context_length).unsqueeze(0);
    for (const int sessions : options.sessions) {
      BatchedTimings timings;
      timings.sessions = sessions;
      for (int run = -options.warmup; run < options.repeats; ++run) {
        const auto started = Clock::now();
        LatentSampling request;
        request.clean = net->encode_latent(ids.expand({sessions, ids.size(1)}));
        request.noised = noised.expand({sessions, noised.size(1)});
        request.content = content.expand({sessions, content.size(1)});
        request.unguided = unguided;
        request.guidance = options.guidance;
        request.steps = options.diffusion_steps;
        request.bf16 = options.bf16;
        auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
        const SampledLatents sampled = sample_latents(net, impl.schedule, request, generator);
        // The copy to the CPU waits for the device, as the decoding of real tokens would.
        (void)net->readout(sampled.x0.narrow(1, context_length, fresh)).to(torch::kCPU);
        const double elapsed_ms = ms_since(started);
        if (run >= 0) timings.window_ms.push_back(elapsed_ms);
      }
      result.batched.push_back(std::move(timings));
    }
  });
  return result;
}

}  // namespace tatumflow::model
