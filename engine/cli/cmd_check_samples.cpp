// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow check-samples: generates N samples (seeds 1..N), writes each as a
// MIDI file, reads it back and checks it is valid, has no hanging note, and
// plays inside the corpus's 5th-95th percentile of pitch range and note
// density over clips of the same length (sample_check.hpp has the criterion).
// Exits non-zero when the check fails.
#if TATUMFLOW_HAVE_MODEL
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "command.hpp"
#include "generation_options.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_modes.hpp"
#include "tatumflow/engine/progress.hpp"
#include "tatumflow/engine/sample_check.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

namespace fs = std::filesystem;
namespace check = sample_check;

struct Options {
  GenerationOptions common;
  std::string data;
  std::string performer;
  std::string mode = "ar";
  int count = 100;
  double seconds = 10.0;
  double chunk_seconds = 2.0;
  bool no_style = false;
};

// Removes a folder this command made for itself, unless --out named one.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& out) {
    if (!out.empty()) {
      path_ = out;
      fs::create_directories(path_);
      return;
    }
    path_ = fs::temp_directory_path() / ("tatumflow-samples-" + std::to_string(::getpid()));
    fs::create_directories(path_);
    owned_ = true;
  }
  ~ScratchDir() {
    std::error_code ignored;
    if (owned_) fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] bool owned() const { return owned_; }

 private:
  fs::path path_;
  bool owned_ = false;
};

// The corpus clips and what they came from: a token cache (its index.bin) or a MIDI folder.
std::pair<check::CorpusClips, std::string> corpus_of(const Options& options, std::int64_t clip_us) {
  const fs::path dir = options.data;
  if (!fs::is_directory(dir)) {
    throw std::runtime_error("--data " + dir.string() +
                             ": not a folder (a token cache from `tatumflow dataset build`, or MIDI files)");
  }
  if (fs::exists(dir / "index.bin"))
    return {check::cache_clips(dir, clip_us, options.performer), "token cache, training split"};
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && is_midi_file(entry.path()) &&
        dataset::performer_matches(fs::relative(entry.path(), dir).string(), options.performer)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());  // directory order is arbitrary
  return {check::file_clips(files, clip_us), "MIDI folder"};
}

nlohmann::json band_json(const check::Band& band) { return nlohmann::json::array({band.low, band.high}); }

nlohmann::json statistic_json(const check::StatisticSummary& statistic, const check::Band& band) {
  return {{"band", band_json(band)},
          {"median", statistic.median},
          {"median_inside", statistic.median_inside},
          {"inside_share", statistic.inside_share}};
}

void run(const Options& options) {
  if (options.count < 1) throw std::runtime_error("--count must be at least 1");
  if (!(options.seconds > 0.0 && options.seconds <= 600.0))
    throw std::runtime_error("--seconds must be in (0, 600]");
  const auto clip_us = static_cast<std::int64_t>(options.seconds * 1e6);

  const auto [corpus, corpus_kind] = corpus_of(options, clip_us);
  if (corpus.clips.empty()) {
    throw std::runtime_error("--data " + options.data + " (" + corpus_kind + "): no " +
                             std::to_string(options.seconds) + " s clip with notes" +
                             (options.performer.empty() ? "" : " by \"" + options.performer + "\""));
  }
  const check::CorpusBands bands = check::corpus_bands(corpus.clips);

  const model::GenerationMode mode = options.mode == "diffusion" ? model::GenerationMode::kDiffusion
                                                                 : model::GenerationMode::kAutoregressive;
  const ScratchDir out(options.common.out);
  const auto context = options.common.load_model();
  const auto started = std::chrono::steady_clock::now();
  std::vector<check::SampleCheck> checks;
  nlohmann::json samples = nlohmann::json::array();
  std::size_t notes_without_duration = 0;
  ProgressBar progress("samples", static_cast<std::uint64_t>(options.count), {.unit = "samples"});
  for (int i = 0; i < options.count; ++i) {
    model::GenerationControls controls = options.common.controls();
    controls.seed = options.common.seed + static_cast<std::uint64_t>(i);
    controls.mode = mode;
    controls.use_style = !options.no_style;
    // As `generate` without a prompt: a style drawn from the prior by the seed.
    const model::StyleLatent style = model::prior_style(controls.seed);
    model::GenerationState state;
    std::vector<tokens::Token> sequence = {tokens::kSos};
    const GenerationRun generated =
        generate_seconds(*context, state, sequence, style, controls, options.seconds, options.chunk_seconds);
    const Performance performance = tokens::decode(sequence);
    const std::size_t open = check::notes_without_duration(sequence);
    notes_without_duration += open;

    char name[32];
    std::snprintf(name, sizeof(name), "sample-%04llu.mid", static_cast<unsigned long long>(controls.seed));
    const fs::path file = out.path() / name;
    check::SampleCheck result;
    try {
      write_smf(file, performance);
      result = check::check_sample_file(file, performance, clip_us);
    } catch (const std::invalid_argument& e) {  // the writer refused the performance
      result.error = file.string() + ": not written: " + e.what();
    }
    nlohmann::json sample = {
        {"seed", controls.seed},
        {"file", file.string()},
        {"valid", result.valid},
        {"notes", result.notes},
        {"notes_in_clip", result.stats.notes},
        {"hanging_notes", result.hanging_notes},
        {"notes_without_duration", open},
        {"pitch_range", result.stats.pitch_range},
        {"notes_per_second", result.stats.notes_per_second},
        {"pitch_range_inside", bands.pitch_range.contains(result.stats.pitch_range)},
        {"notes_per_second_inside", bands.notes_per_second.contains(result.stats.notes_per_second)},
        {"generated_seconds", generated.generated_us * 1e-6}};
    if (!result.valid) sample["error"] = result.error;
    samples.push_back(sample);
    checks.push_back(std::move(result));
    progress.add();
  }
  progress.finish();
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const check::CheckSummary summary = check::summarize(checks, bands);
  nlohmann::json report = {
      {"model", options.common.model},
      {"mode", model::to_string(mode)},
      {"style", options.no_style ? "none" : "prior draw per seed"},
      {"count", summary.count},
      {"seeds", {options.common.seed, options.common.seed + static_cast<std::uint64_t>(options.count) - 1}},
      {"seconds", options.seconds},
      {"out", out.owned() ? "(temporary, removed)" : out.path().string()},
      {"wall_seconds", wall_seconds},
      {"corpus",
       {{"data", options.data},
        {"kind", corpus_kind},
        {"performer", options.performer.empty() ? "all" : options.performer},
        {"performances", corpus.performances},
        {"unreadable_files", corpus.unreadable_files},
        {"clips", corpus.clips.size()},
        {"clip_seconds", options.seconds},
        {"percentiles", {bands.low_percent, bands.high_percent}}}},
      {"valid", summary.valid},
      {"hanging_notes", summary.hanging_notes},
      {"samples_with_hanging_notes", summary.samples_with_hanging_notes},
      {"notes_without_duration", notes_without_duration},
      {"pitch_range", statistic_json(summary.pitch_range, bands.pitch_range)},
      {"notes_per_second", statistic_json(summary.notes_per_second, bands.notes_per_second)},
      {"criterion",
       "pass = every sample valid MIDI, no hanging note, and the median sample's pitch range and "
       "note density inside the corpus band; inside_share is the share of all samples inside"},
      {"pass", summary.pass},
      {"samples", samples}};
  print_report(report, options.common.json);
  if (!summary.pass) {
    throw std::runtime_error(
        "check-samples failed: " + std::to_string(summary.valid) + "/" + std::to_string(summary.count) +
        " valid, " + std::to_string(summary.hanging_notes) + " hanging notes, median pitch range " +
        (summary.pitch_range.median_inside ? "inside" : "outside") + " and median note density " +
        (summary.notes_per_second.median_inside ? "inside" : "outside") + " the corpus band");
  }
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "check-samples",
      "Generate N samples and check each is valid MIDI without hanging notes, with pitch range and "
      "note density inside the corpus's 5th-95th percentile");
  options->common.seed = 1;  // samples use seeds 1..N by default
  options->common.add_to(cmd, "Folder for the sample MIDI files (default: a temporary folder, removed)");
  cmd->get_option("--out")->required(false);
  cmd->get_option("--seed")->description("Seed of the first sample; sample i uses seed + i");
  options->data = (dataset::repo_dir() / "cache/pijama").string();
  cmd->add_option("--data", options->data,
                  "Corpus to compare with: a token cache (`tatumflow dataset build`; its training split) "
                  "or a folder of MIDI files")
      ->capture_default_str();
  cmd->add_option("--performer", options->performer,
                  "Only this performer's corpus clips (case-insensitive substring; default: all)");
  cmd->add_option("--count", options->count, "Samples to generate")->capture_default_str();
  cmd->add_option("--seconds", options->seconds, "Seconds per sample, and the corpus clip length")
      ->capture_default_str();
  cmd->add_option("--chunk-seconds", options->chunk_seconds, "Seconds generated per step")
      ->capture_default_str();
  cmd->add_option("--mode", options->mode, "ar or diffusion")
      ->check(CLI::IsMember({"ar", "diffusion"}))
      ->capture_default_str();
  cmd->add_flag("--no-style", options->no_style,
                "Generate in the model's neutral style instead of a random one per seed");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
