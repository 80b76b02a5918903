// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow transfer: re-play a piece in another performer's style (SDEdit over
// the piece's latents, see model_modes.hpp).
#if TATUMFLOW_HAVE_MODEL
#include <memory>
#include <string>

#include "command.hpp"
#include "generation_options.hpp"
#include "tatumflow/engine/model_modes.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  GenerationOptions common;
  std::string content;
  std::string style;
  float strength = 0.5f;
  bool keep_dynamics = false;
  double seconds = 0.0;
};

void run(const Options& options) {
  const auto model = options.common.load_model();
  const auto content = read_midi_tokens(options.content, options.seconds);
  model::GenerationControls controls = options.common.controls();
  controls.use_style = true;
  model::Regeneration regeneration;
  regeneration.strength = options.strength;
  // Touch is part of a style: the dynamics follow the style's notes unless asked
  // not to (a .style file has none).
  const bool style_dynamics = !options.keep_dynamics && is_midi_file(options.style);
  if (style_dynamics) take_component_from(regeneration, options.style, model::TheoryComponent::kDynamics);
  nlohmann::json report = regenerate_to_midi(options.common.out, *model, content,
                                             style_of(*model, options.style), controls, regeneration);
  report.update({{"content", options.content},
                 {"style", options.style},
                 {"dynamics", style_dynamics ? "the style's" : "the content's"}});
  print_report(report, options.common.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "transfer",
      "Re-play a piece (--content) in the style of another (--style): the harmony, melody and rhythm "
      "stay, the playing changes");
  cmd->add_option("--content", options->content, "MIDI file to re-play")->required();
  cmd->add_option("--style", options->style,
                  "MIDI file whose playing style and touch to take, or a .style file (`tatumflow style "
                  "encode`, e.g. models/styles/tatum.style: the style only)")
      ->required();
  cmd->add_option("--strength", options->strength,
                  "How much to change: 0 keeps the notes, 1 keeps only the harmony, melody and rhythm "
                  "outline")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_flag("--keep-dynamics", options->keep_dynamics,
                "Keep the content's dynamics instead of the style file's touch");
  add_input_seconds_option(cmd, options->seconds);
  options->common.add_to(cmd, "MIDI file to write");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
