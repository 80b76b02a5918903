// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow improvise: variations on a piece (SDEdit over its latents, with the
// style drawn around its own, see model_modes.hpp).
#if TATUMFLOW_HAVE_MODEL
#include <filesystem>
#include <memory>
#include <string>

#include "command.hpp"
#include "generation_options.hpp"
#include "tatumflow/engine/model_modes.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  GenerationOptions common;
  std::string base;
  float creativity = 0.5f;
  int variations = 3;
  double seconds = 0.0;
};

// OUT_i with OUT's extension: out.mid -> out_1.mid.
std::string variation_path(const std::string& out, int i) {
  const std::filesystem::path path(out);
  return (path.parent_path() / (path.stem().string() + "_" + std::to_string(i) + path.extension().string()))
      .string();
}

void run(const Options& options) {
  const auto model = options.common.load_model();
  const auto base = read_midi_tokens(options.base, options.seconds);
  const model::StyleLatent style = model::encode_style(*model, base);
  model::GenerationControls controls = options.common.controls();
  controls.use_style = true;
  // Creativity loosens both the notes (how much is re-played) and the style
  // (how far from the base's it is drawn, in its own standard deviations).
  controls.creativity = options.creativity;
  model::Regeneration regeneration;
  regeneration.strength = 0.1f + 0.8f * options.creativity;

  nlohmann::json report = {{"base", options.base}, {"creativity", options.creativity}};
  for (int i = 1; i <= options.variations; ++i) {
    controls.seed = options.common.seed + std::uint64_t(i - 1);
    report["variations"].push_back(regenerate_to_midi(variation_path(options.common.out, i), *model, base,
                                                      style, controls, regeneration));
  }
  print_report(report, options.common.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("improvise", "Improvise variations on a piece (--base)");
  cmd->add_option("--base", options->base, "MIDI file to vary")->required();
  cmd->add_option("--creativity", options->creativity,
                  "0 stays close to the base, 1 departs freely from its notes and its style")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--variations", options->variations, "How many variations; variation i uses seed + i - 1")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  add_input_seconds_option(cmd, options->seconds);
  options->common.add_to(cmd, "Name for the variations: out.mid gives out_1.mid, out_2.mid, ...");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
