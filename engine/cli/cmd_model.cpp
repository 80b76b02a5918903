// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow model info: a model size's or checkpoint's configuration and real
// parameter counts per component.
#if TATUMFLOW_HAVE_MODEL
#include <memory>
#include <string>

#include "command.hpp"
#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/engine/model_train.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  std::string size;
  std::string config;
  std::string checkpoint;
  bool json = false;
};

nlohmann::json describe(const model::ModelConfig& config,
                        const std::vector<std::pair<std::string, std::int64_t>>& parameters) {
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [name, count] : parameters) counts[name] = count;
  return {{"name", config.name},
          {"hidden", config.hidden},
          {"latent", config.latent},
          {"layers", config.layers},
          {"heads", config.heads},
          {"max_positions", config.max_positions},
          {"scales", config.scales},
          {"prediction", model::to_string(config.prediction)},
          {"diffusion_steps", config.diffusion_steps},
          {"tie_embeddings", config.tie_embeddings},
          {"parameters", counts}};
}

void run_info(const Options& options) {
  const int given =
      int(!options.size.empty()) + int(!options.config.empty()) + int(!options.checkpoint.empty());
  if (given != 1) throw std::runtime_error("give exactly one of --size, --config or --checkpoint");
  if (!options.checkpoint.empty()) {
    const model::CheckpointSummary summary = model::inspect_checkpoint(options.checkpoint);
    nlohmann::json report = describe(summary.config, summary.parameters);
    report["checkpoint"] = {{"path", options.checkpoint},
                            {"kind", summary.kind},
                            {"step", summary.step},
                            {"window_tokens", summary.window_tokens}};
    print_report(report, options.json);
    return;
  }
  const std::filesystem::path path =
      options.size.empty() ? std::filesystem::path(options.config) : model::model_config_path(options.size);
  const model::ModelConfig config = model::load_model_config(path);
  nlohmann::json report = describe(config, model::parameter_counts(config));
  report["config"] = path.string();
  print_report(report, options.json);
}

const bool registered = register_command([](CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("model", "Inspect model sizes and checkpoints");
  cmd->require_subcommand(1);
  auto options = std::make_shared<Options>();
  CLI::App* info = cmd->add_subcommand("info", "Configuration and parameter counts per component");
  info->add_option("--size", options->size, "A size from configs/model (tiny, compact, small, base, large)");
  info->add_option("--config", options->config, "A model config TOML file");
  info->add_option("--checkpoint", options->checkpoint, "A checkpoint (.tfc); verifies it too");
  info->add_flag("--json", options->json, "Print the report as JSON");
  info->callback([options] { run_info(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
