// SPDX-License-Identifier: GPL-3.0-or-later
#if TATUMFLOW_HAVE_MODEL
#include "generation_options.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "command.hpp"
#include "tatumflow/engine/style_file.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {

void GenerationOptions::add_to(CLI::App* cmd, const std::string& out_help) {
  model = bundled_model_path();
  cmd->add_option("--out", out, out_help)->required();
  cmd->add_option("--model", model, "Trained model (.tfc); default: the bundled CPU model")
      ->capture_default_str();
  cmd->add_option("--temperature", temperature,
                  "Randomness of each note choice: 0 always takes the likeliest, 1 plays as trained, "
                  "above 1 wilder")
      ->capture_default_str();
  cmd->add_option("--top-k", top_k, "Choose only among the K likeliest next events (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--top-p", top_p,
                  "Choose only among the likeliest next events that together have this probability "
                  "(1: no limit)")
      ->capture_default_str();
  cmd->add_option("--steps", steps, "Refinement steps of the diffusion model (more: slower, cleaner)")
      ->capture_default_str();
  cmd->add_option("--guidance", guidance,
                  "How strongly the model follows the style or the change asked for (1: no extra push; "
                  "above 1 costs a second decoding pass)")
      ->capture_default_str();
  cmd->add_option("--sampler", sampler, "ddim: calm, repeatable refinement; ddpm: fresh noise every step")
      ->check(CLI::IsMember({"ddim", "ddpm"}))
      ->capture_default_str();
  cmd->add_option("--seed", seed, "Random seed: the same seed and settings give the same file")
      ->capture_default_str();
  cmd->add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--threads", threads, "Torch threads (default: torch's choice)");
  cmd->add_flag("--json", json, "Print the report as JSON");
}

std::shared_ptr<const model::ModelContext> GenerationOptions::load_model() const {
  if (threads > 0) model::set_torch_threads(threads);
  return model::ModelContext::load(model, device);
}

model::GenerationControls GenerationOptions::controls() const {
  model::GenerationControls controls;
  controls.temperature = temperature;
  controls.top_k = top_k;
  controls.top_p = top_p;
  controls.guidance = guidance;
  controls.diffusion_steps = steps;
  controls.sampler = sampler == "ddpm" ? model::DiffusionSampler::kDdpm : model::DiffusionSampler::kDdim;
  controls.seed = seed;
  return controls;
}

void add_input_seconds_option(CLI::App* cmd, double& seconds) {
  cmd->add_option("--seconds", seconds, "Use only the first S seconds of the input (0: all of it)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

std::vector<tokens::Token> read_midi_tokens(const std::string& path, double seconds) {
  Performance performance = read_smf(path);
  if (seconds > 0.0) {
    const auto limit_us = static_cast<std::int64_t>(seconds * 1e6);
    std::erase_if(performance.notes, [&](const Note& note) { return note.onset_us >= limit_us; });
    for (Note& note : performance.notes)
      note.duration_us = std::min(note.duration_us, limit_us - note.onset_us);
    std::erase_if(performance.pedals, [&](const PedalChange& pedal) { return pedal.time_us >= limit_us; });
    performance.length_us = std::min(performance.length_us, limit_us);
  }
  if (performance.notes.empty()) throw std::runtime_error(path + ": no notes to work with");
  return tokens::encode(performance, {.add_sos = true, .add_eos = false});
}

model::StyleLatent style_of(const model::ModelContext& model, const std::string& path) {
  if (std::filesystem::path(path).extension() == ".style") return style::load_style_state(path).current;
  return model::encode_style(model, read_midi_tokens(path));
}

nlohmann::json write_midi(const std::string& path, const Performance& performance) {
  write_smf(path, performance);
  return {{"out", path}, {"notes", performance.notes.size()}, {"seconds", performance.seconds()}};
}

void take_component_from(model::Regeneration& regeneration, const std::string& path,
                         model::TheoryComponent component) {
  regeneration.edit.source = std::make_shared<TheoryFeatures>(model::theory_of(read_midi_tokens(path)));
  regeneration.edit.from_source[static_cast<std::size_t>(component)] = true;
}

nlohmann::json regenerate_to_midi(const std::string& out, const model::ModelContext& model,
                                  std::span<const tokens::Token> content, const model::StyleLatent& style,
                                  const model::GenerationControls& controls,
                                  const model::Regeneration& regeneration) {
  const auto started = std::chrono::steady_clock::now();
  const model::RegeneratedPiece piece = model::regenerate(model, content, style, controls, regeneration);
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // Both start with SOS: compare position by position after it.
  std::size_t kept = 0;
  const std::size_t compared = std::min(piece.tokens.size(), content.size()) - 1;
  for (std::size_t i = 1; i <= compared; ++i) kept += piece.tokens[i] == content[i] ? 1 : 0;
  nlohmann::json report = write_midi(out, piece.performance);
  report.update({{"input_notes", tokens::decode(content).notes.size()},
                 {"input_seconds", double(tokens::end_time_us(content)) * 1e-6},
                 {"tokens_kept", double(kept) / double(std::max<std::size_t>(compared, 1))},
                 {"strength", regeneration.strength},
                 {"blocks", piece.blocks},
                 {"denoising_steps", piece.denoising_steps},
                 {"wall_seconds", wall_seconds}});
  return report;
}

GenerationRun generate_seconds(const model::ModelContext& model, model::GenerationState& state,
                               std::vector<tokens::Token>& sequence, const model::StyleLatent& style,
                               const model::GenerationControls& controls, double seconds,
                               double chunk_seconds) {
  GenerationRun run;
  while (run.generated_us < seconds * 1e6) {
    const model::GeneratedChunk chunk =
        model::generate_chunk(model, state, sequence, style, controls, chunk_seconds);
    sequence.insert(sequence.end(), chunk.tokens.begin(), chunk.tokens.end());
    run.generated_us += double(chunk.length_us);
    ++run.chunks;
    if (chunk.tokens.empty() || chunk.length_us == 0)
      break;  // nothing moved the clock: stop rather than spin
  }
  return run;
}

}  // namespace tatumflow::cli
#endif
