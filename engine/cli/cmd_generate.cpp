// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow generate / continue: chunk-by-chunk generation with a trained model,
// through the same API the daemon uses, written to a MIDI file.
#if TATUMFLOW_HAVE_MODEL
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "generation_options.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_modes.hpp"
#include "tatumflow/engine/theory_features.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  GenerationOptions common;
  std::string prompt;
  std::vector<std::string> styles;
  std::optional<float> mix;
  bool no_style = false;
  std::string mode = "ar";
  std::string chords;
  double seconds_per_chord = 2.0;
  double seconds = 20.0;
  double chunk_seconds = 2.0;
  float creativity = 0.0f;
  bool continuation_only = false;
};

// The style to play in and its report label: the --style file(s), else the
// prompt's own, else the neutral one or a random draw.
std::pair<model::StyleLatent, std::string> choose_style(const Options& options,
                                                        const model::ModelContext& model,
                                                        std::span<const tokens::Token> prompt,
                                                        model::GenerationControls& controls) {
  if (options.mix && options.styles.size() != 2) {
    throw std::runtime_error("--mix blends two styles: give --style twice");
  }
  if (options.styles.size() > 2) throw std::runtime_error("at most two --style files can be blended");
  controls.use_style = !options.no_style;
  if (options.styles.size() == 2) {
    const float mix = options.mix.value_or(0.5f);
    return {
        model::StyleLatent::mix(style_of(model, options.styles[0]), style_of(model, options.styles[1]), mix),
        "blend " + std::to_string(mix) + " of " + options.styles[0] + " and " + options.styles[1]};
  }
  if (options.styles.size() == 1) return {style_of(model, options.styles[0]), options.styles[0]};
  if (options.no_style) return {{}, "none"};
  if (!prompt.empty()) return {model::encode_style(model, prompt), "the prompt's"};
  return {model::prior_style(options.common.seed),
          "random (seed " + std::to_string(options.common.seed) + ")"};
}

void run(const Options& options) {
  const auto loaded_at = std::chrono::steady_clock::now();
  const auto context = options.common.load_model();
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loaded_at).count();

  std::vector<tokens::Token> sequence = {tokens::kSos};
  if (!options.prompt.empty()) sequence = read_midi_tokens(options.prompt);
  const std::size_t prompt_tokens = sequence.size();

  model::GenerationControls controls = options.common.controls();
  controls.mode = options.mode == "diffusion" ? model::GenerationMode::kDiffusion
                                              : model::GenerationMode::kAutoregressive;
  controls.creativity = options.creativity;
  const auto [style, style_label] = choose_style(
      options, *context,
      options.prompt.empty() ? std::span<const tokens::Token>() : std::span<const tokens::Token>(sequence),
      controls);
  if (!options.prompt.empty() || !options.chords.empty()) {
    auto theory = std::make_shared<TheoryFeatures>(model::theory_of(sequence));
    if (!options.chords.empty())
      theory->harmony = harmony_from_chords(options.chords, options.seconds_per_chord);
    controls.theory = theory;
  }

  model::GenerationState state;
  const auto started = std::chrono::steady_clock::now();
  const GenerationRun generated =
      generate_seconds(*context, state, sequence, style, controls, options.seconds, options.chunk_seconds);
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::span<const tokens::Token> written =
      options.continuation_only ? std::span<const tokens::Token>(sequence).subspan(prompt_tokens)
                                : std::span<const tokens::Token>(sequence);
  nlohmann::json report = write_midi(options.common.out, tokens::decode(written));
  const std::size_t new_tokens = sequence.size() - prompt_tokens;
  report.update({{"model", options.common.model},
                 {"device", context->info().device},
                 {"mode", model::to_string(controls.mode)},
                 {"style", style_label},
                 {"prompt_tokens", prompt_tokens},
                 {"generated_tokens", new_tokens},
                 {"generated_seconds", generated.generated_us * 1e-6},
                 {"chunks", generated.chunks},
                 {"load_seconds", load_seconds},
                 {"wall_seconds", wall_seconds},
                 {"tokens_per_second", double(new_tokens) / std::max(wall_seconds, 1e-9)},
                 {"real_time_factor", generated.generated_us * 1e-6 / std::max(wall_seconds, 1e-9)}});
  print_report(report, options.common.json);
}

void add_options(CLI::App* cmd, Options& options) {
  options.common.add_to(cmd, "MIDI file to write");
  CLI::Option* style =
      cmd->add_option("--style", options.styles,
                      "MIDI file or .style file (e.g. models/styles/tatum.style) whose playing style to "
                      "imitate; give it twice to blend two styles "
                      "(default: the prompt's style, or without a prompt a random one)");
  cmd->add_option("--mix", options.mix,
                  "Blend of two --style files: 0 plays like the first, 1 like the second (default 0.5)")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_flag("--no-style", options.no_style,
                "Play in the model's neutral style instead of the prompt's or a random one")
      ->excludes(style);
  cmd->add_option("--mode", options.mode,
                  "ar: note by note, following the music closely; diffusion: a phrase at a time, "
                  "sketched and then refined")
      ->check(CLI::IsMember({"ar", "diffusion"}))
      ->capture_default_str();
  cmd->add_option("--seconds", options.seconds, "Seconds of new music")->capture_default_str();
  cmd->add_option("--chunk-seconds", options.chunk_seconds, "Seconds generated per step")
      ->capture_default_str();
  cmd->add_option("--creativity", options.creativity,
                  "How far to stray from the style: 0 sticks to it, 1 wanders as far as the style "
                  "itself varies")
      ->capture_default_str();
  cmd->add_option("--chords", options.chords, "Chord progression to play over, e.g. \"Dm7 G7 Cmaj7\"");
  cmd->add_option("--seconds-per-chord", options.seconds_per_chord, "Length of each --chords chord")
      ->capture_default_str();
}

const bool registered = register_command([](CLI::App& app) {
  auto generate = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "generate",
      "Play new music: from nothing or a prompt, in the style of a MIDI file, a blend of two, "
      "or a random one");
  add_options(cmd, *generate);
  cmd->add_option("--prompt", generate->prompt, "MIDI file to start from");
  cmd->callback([generate] { run(*generate); });

  auto continuation = std::make_shared<Options>();
  CLI::App* cont =
      app.add_subcommand("continue", "Continue a MIDI file: the model keeps playing where the file stops");
  cont->add_option("prompt,--prompt", continuation->prompt, "MIDI file to continue")->required();
  add_options(cont, *continuation);
  cont->add_flag("--continuation-only", continuation->continuation_only,
                 "Write only the new music, not the prompt before it");
  cont->callback([continuation] { run(*continuation); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
