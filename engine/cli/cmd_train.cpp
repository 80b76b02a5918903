// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow train: pre-train or fine-tune the model from a train config. Runs
// data-parallel over processes when WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT are set.
#if TATUMFLOW_HAVE_MODEL
#include <memory>
#include <string>

#include "command.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/engine/model_train.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  std::string config;
  std::string size;
  std::string cache;
  std::string out;
  std::string init_from;
  std::int64_t steps = 0;
  std::int64_t stop_after = 0;
  int threads = 0;
  std::string device = "cpu";
  bool no_bf16 = false;
  bool resume = false;
  bool no_progress = false;
  bool no_plot = false;
  bool json = false;
};

void run(const Options& options) {
  model::TrainConfig config = model::load_train_config(options.config);
  if (!options.size.empty()) {
    config.model_config = model::model_config_path(options.size);
    config.model = model::load_model_config(config.model_config);
  }
  if (!options.init_from.empty()) config.init_from = options.init_from;
  model::TrainOptions train_options;
  if (!options.cache.empty()) train_options.cache_dir = options.cache;
  if (!options.out.empty()) train_options.out_dir = options.out;
  if (options.steps > 0) train_options.steps = options.steps;
  train_options.resume = options.resume;
  train_options.stop_after = options.stop_after;
  train_options.device = options.device;
  train_options.bf16 = !options.no_bf16;
  train_options.progress = !options.no_progress;
  train_options.plot = !options.no_plot;
  if (options.threads > 0) model::set_torch_threads(options.threads);

  const model::TrainSummary summary = model::train(config, train_options);
  nlohmann::json report = {
      {"rank", summary.rank},
      {"world_size", summary.world_size},
      {"model", config.model.name},
      {"device", options.device},
      {"bf16", !options.no_bf16 && options.device != "cpu"},
      {"first_step", summary.first_step},
      {"last_step", summary.last_step},
      {"last_loss", summary.last_loss},
      {"tokens_per_second", summary.tokens_per_second},
      {"seconds", summary.seconds},
      {"checkpoint", summary.checkpoint.string()},
      {"exported_model", summary.model.string()},
      {"metrics", summary.metrics.string()},
      {"plot", summary.plot.string()},
      {"weights_digest", summary.weights_digest},
  };
  if (summary.validation_nll) report["validation_nll"] = *summary.validation_nll;
  print_report(report, options.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train the model (pre-training or fine-tuning) from a train config");
  cmd->add_option("--config", options->config, "Train config, e.g. configs/train/pretrain.toml")->required();
  cmd->add_option("--size", options->size, "Replace the config's model with configs/model/<size>.toml");
  cmd->add_option("--cache", options->cache, "Token cache folder (tatumflow dataset build)");
  cmd->add_option("--out", options->out, "Output folder for checkpoints, metrics and plot");
  cmd->add_option("--init-from", options->init_from, "Start from this checkpoint's weights (fine-tuning)");
  cmd->add_option("--steps", options->steps, "Total optimizer steps (overrides the config)");
  cmd->add_option("--stop-after", options->stop_after,
                  "Stop after this many steps in this run; the schedule still spans --steps");
  cmd->add_option("--threads", options->threads, "Torch intra-op threads (default: torch's choice)");
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N (CUDA needs a -DTATUMFLOW_CUDA=ON build)")
      ->capture_default_str();
  cmd->add_flag("--no-bf16", options->no_bf16, "On a CUDA device, train in float32 instead of bf16 autocast");
  cmd->add_flag("--resume", options->resume, "Continue from <out>/checkpoint.tfc if it exists");
  cmd->add_flag("--no-progress", options->no_progress, "No progress bar");
  cmd->add_flag("--no-plot", options->no_plot, "Do not draw loss.png at the end");
  cmd->add_flag("--json", options->json, "Print the summary as JSON");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
