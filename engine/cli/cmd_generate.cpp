// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow generate / continue: chunk-by-chunk generation with a trained model,
// through the same API the daemon uses, written to a MIDI file.
#if TATUMFLOW_HAVE_MODEL
#include <chrono>
#include <memory>
#include <string>

#include "command.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/theory_features.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  std::string model;
  std::string prompt;
  std::string style;
  std::string out;
  std::string mode = "ar";
  std::string sampler = "ddim";
  std::string device = "cpu";
  std::string chords;
  double seconds_per_chord = 2.0;
  double seconds = 20.0;
  double chunk_seconds = 2.0;
  float temperature = 1.0f;
  int top_k = 50;
  float top_p = 0.95f;
  float creativity = 0.0f;
  float guidance = 1.5f;
  int steps = 50;
  std::uint64_t seed = 0;
  int threads = 0;
  bool keep_prompt = true;
  bool json = false;
};

model::GenerationMode parse_mode(const std::string& mode) {
  if (mode == "ar" || mode == "autoregressive") return model::GenerationMode::kAutoregressive;
  if (mode == "diffusion") return model::GenerationMode::kDiffusion;
  throw std::runtime_error("--mode must be ar or diffusion, not \"" + mode + "\"");
}

void run(const Options& options) {
  if (options.threads > 0) model::set_torch_threads(options.threads);
  const auto loaded_at = std::chrono::steady_clock::now();
  const auto context = model::ModelContext::load(options.model, options.device);
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loaded_at).count();

  std::vector<tokens::Token> sequence;
  if (!options.prompt.empty()) {
    sequence = tokens::encode(read_smf(options.prompt), {.add_sos = true, .add_eos = false});
  } else {
    sequence.push_back(tokens::kSos);
  }
  const std::size_t prompt_tokens = sequence.size();

  model::GenerationControls controls;
  controls.mode = parse_mode(options.mode);
  controls.temperature = options.temperature;
  controls.top_k = options.top_k;
  controls.top_p = options.top_p;
  controls.creativity = options.creativity;
  controls.guidance = options.guidance;
  controls.diffusion_steps = options.steps;
  if (options.sampler != "ddim" && options.sampler != "ddpm") {
    throw std::runtime_error("--sampler must be ddim or ddpm, not \"" + options.sampler + "\"");
  }
  controls.sampler =
      options.sampler == "ddpm" ? model::DiffusionSampler::kDdpm : model::DiffusionSampler::kDdim;
  controls.seed = options.seed;
  model::StyleLatent style;
  if (!options.style.empty()) {
    style = model::encode_style(*context, tokens::encode(read_smf(options.style)));
    controls.use_style = true;
  } else if (!options.prompt.empty()) {
    style = model::encode_style(*context, sequence);
    controls.use_style = true;
  }
  if (!options.prompt.empty() || !options.chords.empty()) {
    auto theory = std::make_shared<TheoryFeatures>(model::theory_of(sequence));
    if (!options.chords.empty())
      theory->harmony = harmony_from_chords(options.chords, options.seconds_per_chord);
    controls.theory = theory;
  }

  model::GenerationState state;
  const auto started = std::chrono::steady_clock::now();
  std::size_t chunks = 0;
  double generated_us = 0;
  while (generated_us < options.seconds * 1e6) {
    const model::GeneratedChunk chunk =
        model::generate_chunk(*context, state, sequence, style, controls, options.chunk_seconds);
    sequence.insert(sequence.end(), chunk.tokens.begin(), chunk.tokens.end());
    generated_us += double(chunk.length_us);
    ++chunks;
    if (chunk.tokens.empty() || chunk.length_us == 0)
      break;  // nothing moved the clock: stop rather than spin
  }
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::span<const tokens::Token> written =
      options.keep_prompt ? std::span<const tokens::Token>(sequence)
                          : std::span<const tokens::Token>(sequence).subspan(prompt_tokens);
  const Performance performance = tokens::decode(written);
  write_smf(options.out, performance);

  const std::size_t new_tokens = sequence.size() - prompt_tokens;
  print_report({{"model", options.model},
                {"device", context->info().device},
                {"mode", model::to_string(controls.mode)},
                {"out", options.out},
                {"prompt_tokens", prompt_tokens},
                {"generated_tokens", new_tokens},
                {"generated_seconds", generated_us * 1e-6},
                {"chunks", chunks},
                {"notes_written", performance.notes.size()},
                {"load_seconds", load_seconds},
                {"wall_seconds", wall_seconds},
                {"tokens_per_second", double(new_tokens) / std::max(wall_seconds, 1e-9)},
                {"real_time_factor", generated_us * 1e-6 / std::max(wall_seconds, 1e-9)}},
               options.json);
}

void add_options(CLI::App* cmd, Options& options) {
  options.model = (dataset::repo_dir() / "models/tatumflow-tiny.tfc").string();
  cmd->add_option("--model", options.model, "Checkpoint (.tfc); default: the bundled CPU model")
      ->capture_default_str();
  cmd->add_option("--out", options.out, "MIDI file to write")->required();
  cmd->add_option("--style", options.style, "MIDI file whose style to use (default: the prompt's)");
  cmd->add_option("--mode", options.mode, "ar or diffusion")->capture_default_str();
  cmd->add_option("--device", options.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--seconds", options.seconds, "Seconds of music to generate")->capture_default_str();
  cmd->add_option("--chunk-seconds", options.chunk_seconds, "Seconds per generated chunk")
      ->capture_default_str();
  cmd->add_option("--temperature", options.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", options.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", options.top_p, "Nucleus probability (1: off)")->capture_default_str();
  cmd->add_option("--creativity", options.creativity, "Style sampling spread")->capture_default_str();
  cmd->add_option("--guidance", options.guidance, "Style guidance for diffusion (1: off)")
      ->capture_default_str();
  cmd->add_option("--steps", options.steps, "Denoising steps per diffusion block")->capture_default_str();
  cmd->add_option("--sampler", options.sampler, "ddim or ddpm (diffusion mode)")->capture_default_str();
  cmd->add_option("--chords", options.chords, "Replace the harmony with a chord list, e.g. \"Dm7 G7 Cmaj7\"");
  cmd->add_option("--seconds-per-chord", options.seconds_per_chord, "Duration of each --chords chord")
      ->capture_default_str();
  cmd->add_option("--seed", options.seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", options.threads, "Torch intra-op threads (default: torch's choice)");
  cmd->add_flag("--json", options.json, "Print the report as JSON");
}

const bool registered = register_command([](CLI::App& app) {
  auto generate = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("generate", "Generate music with a trained model (optionally from a prompt)");
  add_options(cmd, *generate);
  cmd->add_option("--prompt", generate->prompt, "MIDI file to continue");
  cmd->callback([generate] { run(*generate); });

  auto continuation = std::make_shared<Options>();
  CLI::App* cont = app.add_subcommand("continue", "Continue a MIDI file with a trained model");
  cont->add_option("prompt", continuation->prompt, "MIDI file to continue")->required();
  add_options(cont, *continuation);
  cont->add_flag("!--keep-prompt", continuation->keep_prompt, "Write only the continuation, not the prompt");
  cont->callback([continuation] { run(*continuation); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
