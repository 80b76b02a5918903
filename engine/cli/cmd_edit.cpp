// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow edit: re-harmonise a piece over new chords, or give it the melody,
// rhythm, harmony or dynamics of another (SDEdit under edited theory
// conditioning, see model_modes.hpp).
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
  std::string input;
  std::string chords;
  double seconds_per_chord = 2.0;
  std::string component;
  std::string from;
  float strength = 0.6f;
  double seconds = 0.0;
};

void run(const Options& options) {
  const auto model = options.common.load_model();
  const auto input = read_midi_tokens(options.input, options.seconds);
  model::GenerationControls controls = options.common.controls();
  controls.use_style = true;
  model::Regeneration regeneration;
  regeneration.strength = options.strength;
  regeneration.guide_edit = true;
  nlohmann::json report = {{"input", options.input}};
  if (!options.chords.empty()) {
    regeneration.edit.chords = options.chords;
    regeneration.edit.seconds_per_chord = options.seconds_per_chord;
    report["chords"] = options.chords;
  } else {
    take_component_from(regeneration, options.from, model::parse_theory_component(options.component));
    report.update({{"component", options.component}, {"from", options.from}});
  }
  report.update(regenerate_to_midi(options.common.out, *model, input, model::encode_style(*model, input),
                                   controls, regeneration));
  print_report(report, options.common.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "edit",
      "Change one side of a piece: re-harmonise it over new chords (--chords), or give it the harmony, "
      "melody, rhythm or dynamics of another piece (--component with --from)");
  cmd->add_option("--input", options->input, "MIDI file to edit")->required();
  CLI::Option* chords =
      cmd->add_option("--chords", options->chords,
                      "New chord progression, repeated for the length of the piece, e.g. \"Dm7 G7 Cmaj7\"");
  cmd->add_option("--seconds-per-chord", options->seconds_per_chord, "Length of each --chords chord")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI::Option* component =
      cmd->add_option("--component", options->component,
                      "Which side to take from --from: harmony, melody, rhythm or dynamics")
          ->check(CLI::IsMember({"harmony", "melody", "rhythm", "dynamics"}));
  CLI::Option* from = cmd->add_option("--from", options->from, "MIDI file to take --component from");
  component->needs(from);
  from->needs(component);
  chords->excludes(component);
  cmd->add_option("--strength", options->strength,
                  "How much of the piece to re-play: 0 keeps the notes, 1 keeps nothing but what is asked")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  add_input_seconds_option(cmd, options->seconds);
  options->common.add_to(cmd, "MIDI file to write");
  cmd->callback([options, chords, component] {
    if (chords->count() == 0 && component->count() == 0) {
      throw std::runtime_error("edit: give --chords, or --component with --from");
    }
    run(*options);
  });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
