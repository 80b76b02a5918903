// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow metrics: music-level metrics of generated clips against reference
// clips (and their prompts), paired by relative path.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "tatumflow/engine/music_metrics.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

namespace fs = std::filesystem;

struct Options {
  std::string reference;
  std::string generated;
  std::string prompt;
  bool json = false;
};

// Relative path without the extension, so "a/x.mid" pairs with "a/x.midi".
std::map<std::string, fs::path> midi_files_by_key(const std::string& dir, const char* role) {
  if (!fs::is_directory(dir)) throw std::runtime_error(std::string("--") + role + ": no such folder: " + dir);
  std::map<std::string, fs::path> files;
  for (const auto& item : fs::recursive_directory_iterator(dir)) {
    if (!item.is_regular_file() || !is_midi_file(item.path())) continue;
    // Lexically, so that links into another folder keep their own names.
    const std::string key = item.path().lexically_relative(dir).replace_extension().generic_string();
    if (const auto [it, inserted] = files.emplace(key, item.path()); !inserted) {
      throw std::runtime_error(std::string("--") + role + ": " + it->second.string() + " and " +
                               item.path().string() + " have the same name apart from the extension");
    }
  }
  return files;
}

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

void run(const Options& options) {
  const auto started = std::chrono::steady_clock::now();
  const auto reference_files = midi_files_by_key(options.reference, "reference");
  const auto generated_files = midi_files_by_key(options.generated, "generated");
  std::map<std::string, fs::path> prompt_files;
  if (!options.prompt.empty()) prompt_files = midi_files_by_key(options.prompt, "prompt");

  nlohmann::json failed = nlohmann::json::array();
  auto read = [&](const fs::path& path) -> std::optional<Performance> {
    try {
      return read_smf(path);
    } catch (const SmfError& e) {
      failed.push_back({{"path", path.string()}, {"error", e.what()}});
      return std::nullopt;
    }
  };

  nlohmann::json unpaired_reference = nlohmann::json::array();
  nlohmann::json unpaired_generated = nlohmann::json::array();
  nlohmann::json missing_prompt = nlohmann::json::array();
  nlohmann::json per_pair = nlohmann::json::array();
  std::vector<metrics::PairMetrics> pairs;
  std::vector<metrics::MgevalFeatures> reference_mgeval;
  std::vector<metrics::MgevalFeatures> generated_mgeval;
  for (const auto& [key, path] : generated_files) {
    if (!reference_files.contains(key)) unpaired_generated.push_back(path.string());
  }
  for (const auto& [key, reference_path] : reference_files) {
    const auto generated_path = generated_files.find(key);
    if (generated_path == generated_files.end()) {
      unpaired_reference.push_back(reference_path.string());
      continue;
    }
    const std::optional<Performance> reference = read(reference_path);
    const std::optional<Performance> generated = read(generated_path->second);
    std::optional<Performance> prompt;
    if (!options.prompt.empty()) {
      if (const auto prompt_path = prompt_files.find(key); prompt_path != prompt_files.end()) {
        prompt = read(prompt_path->second);
      } else {
        missing_prompt.push_back(key);
      }
    }
    if (!reference || !generated) continue;

    const metrics::ClipMeasures reference_measures = metrics::measure_clip(*reference);
    const metrics::ClipMeasures generated_measures = metrics::measure_clip(*generated);
    metrics::PairMetrics pair = metrics::compare_clips(reference_measures, generated_measures);
    if (prompt) {
      pair.copy_rate_generated = metrics::copy_rate(*generated, *prompt);
      pair.copy_rate_reference = metrics::copy_rate(*reference, *prompt);
    }
    nlohmann::json values = {{"name", key},
                             {"notes_reference", reference_measures.notes},
                             {"notes_generated", generated_measures.notes}};
    for (const metrics::NamedValue& value : metrics::named_values(pair))
      values[value.name] = optional_json(value.value);
    per_pair.push_back(std::move(values));
    pairs.push_back(pair);
    reference_mgeval.push_back(reference_measures.mgeval);
    generated_mgeval.push_back(generated_measures.mgeval);
  }

  nlohmann::json aggregate = nlohmann::json::object();
  for (const metrics::Aggregate& a : metrics::aggregate(pairs)) {
    aggregate[a.name] = {{"mean", a.mean}, {"std", a.std}, {"count", a.count}};
  }
  nlohmann::json mgeval = nlohmann::json::object();
  for (const metrics::MgevalOverlap& overlap : metrics::mgeval_overlaps(reference_mgeval, generated_mgeval)) {
    mgeval[overlap.feature] = {{"reference_intra_vs_inter", optional_json(overlap.reference_intra_vs_inter)},
                               {"generated_intra_vs_inter", optional_json(overlap.generated_intra_vs_inter)}};
  }
  const nlohmann::json report = {
      {"pairs", pairs.size()},
      {"aggregate", aggregate},
      {"mgeval_overlap", mgeval},
      {"per_pair", per_pair},
      {"unpaired_reference", unpaired_reference},
      {"unpaired_generated", unpaired_generated},
      {"missing_prompt", missing_prompt},
      {"failed", failed},
      {"wall_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()},
  };
  print_report(report, options.json);
  if (!failed.empty()) throw CLI::RuntimeError(2);
  if (pairs.empty()) {
    throw std::runtime_error("no file in " + options.generated + " has a counterpart in " +
                             options.reference + " (files pair by relative path without the extension)");
  }
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "metrics", "Music-level metrics of generated clips against reference clips, paired by relative path");
  cmd->add_option("--reference", options->reference, "Folder of real clips (searched recursively)")
      ->required();
  cmd->add_option("--generated", options->generated, "Folder of generated clips, same relative paths")
      ->required();
  cmd->add_option("--prompt", options->prompt,
                  "Folder of the prompts, same relative paths: adds the copy rates");
  cmd->add_flag("--json", options->json, "Print the report as JSON");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
