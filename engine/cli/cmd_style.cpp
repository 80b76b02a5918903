// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow style: make and inspect .style files (engine/style_file.hpp), the
// style latents tatumflowd sessions load ("tatum" is models/styles/tatum.style).
//   style encode: a performer's style, the Gaussian that matches the mixture of
//                 the style VAE's posteriors over their windows in a token cache;
//   style show:   what a .style file holds.
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "tatumflow/engine/style_file.hpp"
#if TATUMFLOW_HAVE_MODEL
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/model_api.hpp"
#endif

namespace tatumflow::cli {
namespace {

// Per dimension, over all dimensions: the mean |mean| and the mean sigma.
nlohmann::json describe_latent(const model::StyleLatent& latent) {
  double abs_mean = 0.0;
  double sigma = 0.0;
  for (std::size_t d = 0; d < latent.mean.size(); ++d) {
    abs_mean += std::abs(latent.mean[d]);
    sigma += std::exp(0.5 * latent.log_variance[d]);
  }
  const auto dims = static_cast<double>(latent.mean.size());
  return {{"mean_abs_mean", abs_mean / dims}, {"mean_sigma", sigma / dims}};
}

void run_show(const std::string& path, bool json) {
  const style::StyleState state = style::load_style_state(path);
  nlohmann::json report = {{"file", path},
                           {"source", state.source},
                           {"mode", style::to_string(state.mode)},
                           {"current", describe_latent(state.current)},
                           {"learned_calls", state.learned_calls},
                           {"slots", state.slots.size()}};
  print_report(report, json);
}

#if TATUMFLOW_HAVE_MODEL

struct EncodeOptions {
  std::string model;
  std::string cache = "cache/pijama";
  std::string performer;
  std::string split = "train";
  std::string out;
  std::string device = "cpu";
  std::size_t window_tokens = 128;
  std::size_t max_windows = 0;
  int threads = 0;
  bool json = false;
};

// Consecutive windows of `size` tokens, each opening at a chunk boundary (the
// SOS or a <T>) like the references the style encoder was trained on; a tail
// shorter than half a window is left out.
std::vector<std::span<const tokens::Token>> windows_of(std::span<const tokens::Token> sequence,
                                                       std::size_t size) {
  std::vector<std::span<const tokens::Token>> out;
  std::size_t start = 0;
  while (start < sequence.size()) {
    const std::size_t length = std::min(size, sequence.size() - start);
    if (length < size / 2) break;
    out.push_back(sequence.subspan(start, length));
    std::size_t next = start + size;
    while (next < sequence.size() && sequence[next] != tokens::kChunk) ++next;
    start = next;
  }
  return out;
}

void run_encode(const EncodeOptions& options) {
  if (options.window_tokens < 8) throw std::runtime_error("--window-tokens must be at least 8");
  if (options.split != "train" && options.split != "validation" && options.split != "all")
    throw std::runtime_error("--split must be train, validation or all, not \"" + options.split + "\"");
  if (options.threads > 0) model::set_torch_threads(options.threads);
  const auto started = std::chrono::steady_clock::now();
  const auto context = model::ModelContext::load(options.model, options.device);
  const dataset::TokenCache cache = dataset::TokenCache::open(options.cache);

  // Sums for the mixture's moments per dimension: E[mu], E[mu^2] and E[sigma^2].
  std::vector<double> sum_mean(model::kStyleDim, 0.0);
  std::vector<double> sum_mean_squared(model::kStyleDim, 0.0);
  std::vector<double> sum_variance(model::kStyleDim, 0.0);
  std::size_t windows = 0;
  std::size_t performances = 0;
  std::uint64_t tokens_read = 0;
  for (std::size_t i = 0; i < cache.performances().size(); ++i) {
    const dataset::CachedPerformance& record = cache.performances()[i];
    if (!dataset::performer_matches(record.performer, options.performer)) continue;
    if (options.split != "all" && options.split != dataset::to_string(record.split)) continue;
    ++performances;
    for (const std::span<const tokens::Token> window : windows_of(cache.tokens(i), options.window_tokens)) {
      if (options.max_windows > 0 && windows >= options.max_windows) break;
      const model::StyleLatent posterior = model::encode_style(*context, window);
      for (std::size_t d = 0; d < sum_mean.size(); ++d) {
        const double mu = posterior.mean[d];
        sum_mean[d] += mu;
        sum_mean_squared[d] += mu * mu;
        sum_variance[d] += std::exp(static_cast<double>(posterior.log_variance[d]));
      }
      ++windows;
      tokens_read += window.size();
    }
  }
  if (windows == 0) {
    throw std::runtime_error("no " + (options.split == "all" ? std::string() : options.split + " ") +
                             "window of a performer matching \"" + options.performer + "\" in " +
                             options.cache);
  }

  // The mixture's variance is the posteriors' mean variance plus the variance
  // of their means: creativity then explores the performer's range, not one window's.
  style::StyleState state;
  const auto count = static_cast<double>(windows);
  double between_sd = 0.0;
  for (std::size_t d = 0; d < sum_mean.size(); ++d) {
    const double mean = sum_mean[d] / count;
    const double between = std::max(sum_mean_squared[d] / count - mean * mean, 0.0);
    state.current.mean[d] = static_cast<float>(mean);
    state.current.log_variance[d] =
        static_cast<float>(std::log(std::max(sum_variance[d] / count + between, 1e-12)));
    between_sd += std::sqrt(between);
  }
  const model::ModelInfo& info = context->info();
  state.source = options.performer + " (" + std::to_string(windows) + " " + options.split + " windows of " +
                 std::to_string(options.window_tokens) + " tokens, " + info.path.filename().string() +
                 " step " + std::to_string(info.trained_steps) + ")";
  style::save_style_state(options.out, state);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::json report = {{"out", options.out},
                           {"model", options.model},
                           {"model_step", info.trained_steps},
                           {"performer", options.performer},
                           {"split", options.split},
                           {"performances", performances},
                           {"windows", windows},
                           {"tokens", tokens_read},
                           {"style", describe_latent(state.current)},
                           {"between_window_sd", between_sd / static_cast<double>(sum_mean.size())},
                           {"seconds", seconds}};
  print_report(report, options.json);
}

#endif

const bool registered = register_command([](CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("style", "Make and inspect .style files (the daemon's session styles)");
  cmd->require_subcommand(1);

  auto show_path = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* show = cmd->add_subcommand("show", "What a .style file holds");
  show->add_option("file", *show_path, "A .style file")->required();
  show->add_flag("--json", *show_json, "Print the report as JSON");
  show->callback([show_path, show_json] { run_show(*show_path, *show_json); });

#if TATUMFLOW_HAVE_MODEL
  auto options = std::make_shared<EncodeOptions>();
  options->model = bundled_model_path();
  CLI::App* encode = cmd->add_subcommand(
      "encode",
      "A performer's style from a token cache: the Gaussian matching the mixture of the style "
      "VAE's posteriors over their windows");
  encode->add_option("--model", options->model, "Checkpoint (.tfc); default: the bundled CPU model")
      ->capture_default_str();
  encode->add_option("--cache", options->cache, "Token cache built by `tatumflow dataset build`")
      ->capture_default_str();
  encode
      ->add_option("--performer", options->performer,
                   "Performer name (substring, any case), e.g. \"Art Tatum\"")
      ->required();
  encode->add_option("--split", options->split, "train, validation or all")->capture_default_str();
  encode
      ->add_option("--window-tokens", options->window_tokens,
                   "Tokens per window (the CPU models' style references are 128)")
      ->capture_default_str();
  encode->add_option("--max-windows", options->max_windows, "Stop after this many windows; 0: all")
      ->capture_default_str();
  encode->add_option("--out", options->out, ".style file to write")->required();
  encode->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  encode->add_option("--threads", options->threads, "Torch threads; 0: torch's default")
      ->capture_default_str();
  encode->add_flag("--json", options->json, "Print the report as JSON");
  encode->callback([options] { run_encode(*options); });
#endif
});

}  // namespace
}  // namespace tatumflow::cli
