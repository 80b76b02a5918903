// SPDX-License-Identifier: GPL-3.0-or-later
// What every generating command (generate, continue, transfer, improvise, edit)
// shares: the model and sampling options, declared once so that their names,
// defaults and help read the same everywhere, reading the MIDI input, and
// writing the MIDI output. Main thread of the CLI.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_modes.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::cli {

struct GenerationOptions {
  std::string model;
  std::string device = "cpu";
  std::string out;
  std::string sampler = "ddim";
  float temperature = 1.0f;
  int top_k = 50;
  float top_p = 0.95f;
  float guidance = 1.5f;
  int steps = 50;
  std::uint64_t seed = 0;
  int threads = 0;
  bool json = false;

  // Adds the options to `cmd`; `out_help` says what --out receives.
  void add_to(CLI::App* cmd, const std::string& out_help);
  // --model on --device, after applying --threads.
  [[nodiscard]] std::shared_ptr<const model::ModelContext> load_model() const;
  // The sampling controls and seed; mode, style and theory at their defaults.
  [[nodiscard]] model::GenerationControls controls() const;
};

// Adds --seconds to a command that re-plays an input: how much of it to use.
void add_input_seconds_option(CLI::App* cmd, double& seconds);

// A MIDI file's tokens, SOS first and no EOS; only its first `seconds` when > 0.
// Throws for a file without notes.
[[nodiscard]] std::vector<tokens::Token> read_midi_tokens(const std::string& path, double seconds = 0.0);

// A style file's current latent (`tatumflow style encode`, models/styles/*.style),
// or the style VAE's posterior of a MIDI file.
[[nodiscard]] model::StyleLatent style_of(const model::ModelContext& model, const std::string& path);

// Writes `performance` as a MIDI file and returns what to report of it.
nlohmann::json write_midi(const std::string& path, const Performance& performance);

// Makes `regeneration` follow `component` of the MIDI file at `path` (its theory features).
void take_component_from(model::Regeneration& regeneration, const std::string& path,
                         model::TheoryComponent component);

// Re-generates `content` (model_modes.hpp), writes the result to `out` and
// returns the report: write_midi's, the share of tokens left as they were,
// blocks, denoising steps and wall seconds.
nlohmann::json regenerate_to_midi(const std::string& out, const model::ModelContext& model,
                                  std::span<const tokens::Token> content, const model::StyleLatent& style,
                                  const model::GenerationControls& controls,
                                  const model::Regeneration& regeneration);

struct GenerationRun {
  std::size_t chunks = 0;
  double generated_us = 0.0;
};

// Appends chunks of chunk_seconds to `sequence` until `seconds` of music are
// generated, or stops early when a chunk does not move the clock.
GenerationRun generate_seconds(const model::ModelContext& model, model::GenerationState& state,
                               std::vector<tokens::Token>& sequence, const model::StyleLatent& style,
                               const model::GenerationControls& controls, double seconds,
                               double chunk_seconds);

}  // namespace tatumflow::cli
