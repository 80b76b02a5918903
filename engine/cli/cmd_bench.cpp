// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow bench engine: the model engine's CPU speed per model size on
// seeded random weights (model_bench.hpp), set against the seed document's
// reference numbers for the small size and the speed-up targets.
#if TATUMFLOW_HAVE_MODEL
#include <array>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "command.hpp"
#include "tatumflow/engine/bench_stats.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_bench.hpp"
#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  std::vector<std::string> sizes = {"tiny", "small"};
  int repeats = 5;
  int warmup = 1;
  int threads = 1;
  std::string device = "cpu";
  std::uint64_t seed = 1;
  bool json = false;
};

// The seed document's numbers, measured on the 2-core development VM class
// with OpenBLAS, for the small size; the targets are speed-ups over them.
constexpr const char* kReferenceSize = "small";
struct Target {
  const char* name;
  double reference;
  const char* unit;
  bool higher_is_better;
  double speedup;  // at least
};
constexpr std::array<Target, 4> kTargets = {{
    {"forward_512", 277.0, "ms", false, 10.0},
    {"ar_prompt_256", 11.4, "tokens/s", true, 50.0},
    {"ar_prompt_1024", 1.13, "tokens/s", true, 50.0},
    {"ddim_step_512", 202.0, "ms", false, 10.0},
}};

nlohmann::json stats_json(const std::vector<double>& runs) {
  const OrderStats stats = order_stats(runs);
  return {{"median", stats.median}, {"min", stats.min}, {"p90", stats.p90}, {"runs", runs}};
}

// The medians kTargets compares, in its order.
std::array<double, 4> target_medians(const model::EngineBenchResult& result) {
  std::array<double, 4> medians{};
  medians[0] = percentile(result.forward_ms, 50.0);
  for (const model::DecodeTimings& timings : result.decode) {
    if (timings.prompt_tokens == 256) medians[1] = percentile(timings.tokens_per_second, 50.0);
    if (timings.prompt_tokens == 1024) medians[2] = percentile(timings.tokens_per_second, 50.0);
  }
  medians[3] = percentile(result.ddim_step_ms, 50.0);
  return medians;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// The 1, 5 and 15 minute load averages: how busy the shared machine was.
nlohmann::json load_average() {
  std::ifstream in("/proc/loadavg");
  std::array<double, 3> load{};
  if (!(in >> load[0] >> load[1] >> load[2])) return nullptr;
  return load;
}

void run(const Options& options) {
  model::set_torch_threads(options.threads);
  model::EngineBenchOptions bench;
  bench.seed = options.seed;
  bench.repeats = options.repeats;
  bench.warmup = options.warmup;
  bench.device = options.device;

  nlohmann::json machine = {{"device", options.device},
                            {"cpu", cpu_model()},
                            {"cores", std::thread::hardware_concurrency()},
                            {"openblas_num_threads", env_or("OPENBLAS_NUM_THREADS", "unset")},
                            {"omp_num_threads", env_or("OMP_NUM_THREADS", "unset")},
                            {"load_average_before", load_average()}};
  nlohmann::json sizes = nlohmann::json::object();
  nlohmann::json warnings = nlohmann::json::array();
  nlohmann::json targets = nlohmann::json::object();
  bool all_pass = true;
  for (const std::string& size : options.sizes) {
    const auto path = model::model_config_path(size);
    const model::ModelConfig config = model::load_model_config(path);
    const model::EngineBenchResult result = model::bench_engine(config, bench);
    machine["torch_threads"] = result.torch_threads;

    nlohmann::json decode = nlohmann::json::array();
    for (const model::DecodeTimings& timings : result.decode) {
      const int needed = timings.prompt_tokens + bench.decode_tokens;
      decode.push_back({{"prompt_tokens", timings.prompt_tokens},
                        {"decode_tokens", bench.decode_tokens},
                        {"positions_needed", needed},
                        {"fits_config_max_positions", timings.fits_config},
                        {"prefill_ms", stats_json(timings.prefill_ms)},
                        {"tokens_per_second", stats_json(timings.tokens_per_second)}});
      if (!timings.fits_config) {
        const std::string warning =
            size + ": " + path.string() + " has max_positions " + std::to_string(config.max_positions) +
            ", below the " + std::to_string(needed) + " positions of a " +
            std::to_string(timings.prompt_tokens) + "-token prompt plus " +
            std::to_string(bench.decode_tokens) +
            " decoded tokens; generate_chunk would slide its window instead. Measured with the "
            "positional table extended to " +
            std::to_string(result.max_positions) + " rows (random weights: same speed).";
        std::cerr << "bench engine: warning: " << warning << '\n';
        warnings.push_back(warning);
      }
    }
    sizes[size] = {
        {"config", path.string()},
        {"parameters", result.parameters},
        {"max_positions", {{"config", config.max_positions}, {"benchmarked", result.max_positions}}},
        {"forward_ms", stats_json(result.forward_ms)},
        {"autoregressive", decode},
        {"ddim_step_ms", stats_json(result.ddim_step_ms)}};

    if (size != kReferenceSize) continue;
    const std::array<double, 4> medians = target_medians(result);
    for (std::size_t i = 0; i < kTargets.size(); ++i) {
      const Target& target = kTargets[i];
      const double speedup =
          target.higher_is_better ? medians[i] / target.reference : target.reference / medians[i];
      const bool pass = speedup >= target.speedup;
      all_pass = all_pass && pass;
      targets[target.name] = {
          {"unit", target.unit}, {"reference", target.reference},    {"median", medians[i]},
          {"speedup", speedup},  {"target_speedup", target.speedup}, {"pass", pass}};
    }
  }
  machine["load_average_after"] = load_average();

  nlohmann::json report = {{"benchmark", "engine"},
                           {"machine", machine},
                           {"settings",
                            {{"seed", bench.seed},
                             {"repeats", bench.repeats},
                             {"warmup", bench.warmup},
                             {"forward_tokens", bench.forward_tokens},
                             {"prompt_tokens", bench.prompt_tokens},
                             {"decode_tokens", bench.decode_tokens},
                             {"sampling", "temperature 1, top-k 50, top-p 0.95, grammar mask"},
                             {"diffusion_positions", bench.diffusion_positions},
                             {"diffusion_context_positions", bench.diffusion_positions / 2},
                             {"ddim_steps_per_run", bench.diffusion_steps},
                             {"guidance", "off (batch 1)"}}},
                           {"sizes", sizes},
                           {"reference",
                            {{"size", kReferenceSize},
                             {"source", "seed document, 2 cores with OpenBLAS"},
                             {"forward_512_ms", kTargets[0].reference},
                             {"ar_prompt_256_tokens_per_second", kTargets[1].reference},
                             {"ar_prompt_1024_tokens_per_second", kTargets[2].reference},
                             {"ddim_step_512_ms", kTargets[3].reference}}},
                           {"targets", targets},
                           {"warnings", warnings}};
  if (!targets.empty()) report["pass"] = all_pass;
  print_report(report, options.json);
}

struct RealtimeOptions {
  std::string checkpoint = bundled_model_path();
  std::string call = (dataset::repo_dir() / "configs/demo/call.mid").string();
  model::RealtimeBenchOptions bench;
  bool no_bf16 = false;
  bool json = false;
};

void run_realtime(RealtimeOptions options) {
  options.bench.bf16 = !options.no_bf16;
  const std::vector<tokens::Token> call =
      tokens::encode(read_smf(options.call), {.add_sos = true, .add_eos = false});
  const model::RealtimeBenchResult result = model::bench_realtime(options.checkpoint, call, options.bench);
  const auto median_s = [](const std::vector<double>& runs_ms) { return percentile(runs_ms, 50.0) / 1000.0; };
  // Music per window in the batched runs, at the call's density of tokens.
  const int fresh = std::min(options.bench.fresh_positions, result.window_positions / 2);
  const double window_music_seconds = fresh / result.tokens_per_music_second;
  nlohmann::json batched = nlohmann::json::array();
  for (const model::BatchedTimings& timings : result.batched) {
    const double per_session_rtf = window_music_seconds / median_s(timings.window_ms);
    batched.push_back({{"sessions", timings.sessions},
                       {"window_ms", stats_json(timings.window_ms)},
                       {"music_seconds_per_session", window_music_seconds},
                       {"real_time_factor_per_session", per_session_rtf},
                       {"real_time_factor_total", per_session_rtf * timings.sessions}});
  }
  nlohmann::json concurrent = nlohmann::json::array();
  for (const model::ConcurrentTimings& timings : result.concurrent) {
    const double music_seconds = percentile(timings.music_seconds, 50.0);
    concurrent.push_back(
        {{"sessions", timings.sessions},
         {"shared_ms", stats_json(timings.shared_ms)},
         {"separate_ms", stats_json(timings.separate_ms)},
         {"music_seconds_per_session", music_seconds},
         {"real_time_factor_per_session",
          {{"shared", music_seconds / median_s(timings.shared_ms)},
           {"separate", music_seconds / median_s(timings.separate_ms)}}},
         {"separate_over_shared", median_s(timings.separate_ms) / median_s(timings.shared_ms)},
         {"steps_per_pass", timings.steps_per_pass}});
  }
  nlohmann::json report = {
      {"benchmark", "realtime"},
      {"device", result.device},
      {"checkpoint", options.checkpoint},
      {"parameters", result.parameters},
      {"machine",
       {{"cpu", cpu_model()},
        {"cores", std::thread::hardware_concurrency()},
        {"load_average", load_average()}}},
      {"call",
       {{"file", options.call},
        {"tokens", result.call_tokens},
        {"seconds", result.call_seconds},
        {"tokens_per_second", result.tokens_per_music_second}}},
      {"settings",
       {{"repeats", options.bench.repeats},
        {"warmup", options.bench.warmup},
        {"chunk_seconds", options.bench.chunk_seconds},
        {"diffusion_steps", options.bench.diffusion_steps},
        {"guidance", options.bench.guidance},
        {"bf16_autocast", options.bench.bf16 && result.device != "cpu"},
        {"window_positions", result.window_positions},
        {"fresh_positions", fresh}}},
      {"first_chunk_ms",
       {{"diffusion", stats_json(result.first_chunk_ms)},
        {"autoregressive", stats_json(result.first_chunk_ar_ms)}}},
      {"chunk_music_seconds",
       {{"diffusion", result.chunk_music_seconds}, {"autoregressive", result.chunk_music_seconds_ar}}},
      {"real_time_factor_one_session",
       {{"diffusion", result.chunk_music_seconds / median_s(result.first_chunk_ms)},
        {"autoregressive", result.chunk_music_seconds_ar / median_s(result.first_chunk_ar_ms)}}},
      {"batched_denoising", batched},
      {"concurrent_autoregressive", concurrent}};
  print_report(report, options.json);
}

const bool registered = register_command([](CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  auto options = std::make_shared<Options>();
  CLI::App* cmd = bench->add_subcommand(
      "engine",
      "Model engine speed on random weights: forward, KV-cached decoding and DDIM steps, against "
      "the seed document's CPU numbers");
  cmd->add_option("--sizes", options->sizes, "Model sizes (configs/model/<size>.toml), comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--repeats", options->repeats, "Timed runs of each measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--warmup", options->warmup, "Untimed runs before them")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--threads", options->threads, "Torch intra-op threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the random weights, prompts and sampling")
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print the report as JSON");
  cmd->callback([options] { run(*options); });

  auto realtime = std::make_shared<RealtimeOptions>();
  CLI::App* rt = bench->add_subcommand(
      "realtime",
      "The live answer path on a trained model: first chunk after the call, real-time factor of one "
      "session, of batched sessions and of sessions decoding at once (steps shared and not)");
  rt->add_option("--checkpoint", realtime->checkpoint, "Model checkpoint")->capture_default_str();
  rt->add_option("--call", realtime->call, "The player's call phrase (MIDI file)")->capture_default_str();
  rt->add_option("--device", realtime->bench.device, "cpu, cuda or cuda:N")->capture_default_str();
  rt->add_option("--repeats", realtime->bench.repeats, "Timed runs of each measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  rt->add_option("--warmup", realtime->bench.warmup, "Untimed runs before them")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  rt->add_option("--chunk-seconds", realtime->bench.chunk_seconds, "Music per answer chunk")
      ->capture_default_str();
  rt->add_option("--steps", realtime->bench.diffusion_steps, "DDIM steps per block")->capture_default_str();
  rt->add_option("--guidance", realtime->bench.guidance, "Classifier-free guidance (1 = off)")
      ->capture_default_str();
  rt->add_option("--sessions", realtime->bench.sessions,
                 "Session counts for batched denoising and concurrent decoding, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  rt->add_option("--fresh-positions", realtime->bench.fresh_positions,
                 "Positions generated per batched window")
      ->capture_default_str();
  rt->add_flag("--no-bf16", realtime->no_bf16, "Denoise in float32 on a CUDA device");
  rt->add_flag("--json", realtime->json, "Print the report as JSON");
  rt->callback([realtime] { run_realtime(*realtime); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
