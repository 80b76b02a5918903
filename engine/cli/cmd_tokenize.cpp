// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow tokenize: print a file's tokens, or measure the round trip over a corpus.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "command.hpp"
#include "tatumflow/engine/token_stats.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> midi_files_under(const std::vector<std::string>& paths) {
  std::vector<fs::path> files;
  for (const std::string& path : paths) {
    if (fs::is_directory(path)) {
      for (const auto& entry : fs::recursive_directory_iterator(path)) {
        if (entry.is_regular_file() && is_midi_file(entry.path())) files.push_back(entry.path());
      }
    } else if (fs::exists(path)) {
      files.emplace_back(path);
    } else {
      throw std::runtime_error("no such file or folder: " + path);
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Options {
  std::vector<std::string> paths;
  bool stats = false;
  bool json = false;
  unsigned threads = 0;
};

void run_stats(const Options& options) {
  const auto started = std::chrono::steady_clock::now();
  const std::vector<fs::path> files = midi_files_under(options.paths);
  const unsigned threads =
      options.threads > 0 ? options.threads : std::max(1U, std::thread::hardware_concurrency());

  std::atomic<std::size_t> next{0};
  std::mutex merge_mutex;
  tokens::RoundTripStats total;
  std::vector<std::string> failures;
  auto worker = [&] {
    tokens::RoundTripStats local;
    std::vector<std::string> local_failures;
    for (std::size_t i = next++; i < files.size(); i = next++) {
      try {
        local.merge(tokens::measure_round_trip(read_smf(files[i])));
      } catch (const SmfError& e) {
        local_failures.push_back(files[i].string() + ": " + e.what());
      }
    }
    std::lock_guard lock(merge_mutex);
    total.merge(local);
    failures.insert(failures.end(), local_failures.begin(), local_failures.end());
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& thread : pool) thread.join();
  for (const std::string& failure : failures) std::cerr << "tatumflow tokenize: skipped " << failure << '\n';

  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto notes = static_cast<double>(std::max<std::int64_t>(total.notes, 1));
  nlohmann::json report = {
      {"files", total.files},
      {"files_failed", failures.size()},
      {"notes", total.notes},
      {"notes_lost", total.notes_lost},
      {"notes_folded_into_range", total.notes_folded},
      {"notes_over_duration_cap", total.notes_over_cap},
      {"tokens", total.tokens},
      {"tokens_per_note", static_cast<double>(total.tokens) / notes},
      {"onset_error_ms_max", total.onset_error_ms_max},
      {"duration_error_ms_p50", total.duration_error_ms_percentile(50)},
      {"duration_error_ms_p99", total.duration_error_ms_percentile(99)},
      {"duration_error_ms_max", total.duration_error_ms_percentile(100)},
      {"velocity_bin_exact_fraction", static_cast<double>(total.velocity_bin_exact) / notes},
      {"seconds_of_music", total.seconds_of_music},
      {"tokenizer_version", tokens::kTokenizerVersion},
      {"threads", threads},
      {"wall_seconds", wall_seconds},
  };
  print_report(report, options.json);
  if (!failures.empty()) throw CLI::RuntimeError(2);
}

void run_print(const Options& options) {
  if (options.paths.size() != 1) throw std::runtime_error("without --stats, give exactly one MIDI file");
  const std::vector<tokens::Token> sequence = tokens::encode(read_smf(options.paths.front()));
  if (options.json) {
    nlohmann::json names = nlohmann::json::array();
    for (tokens::Token token : sequence) names.push_back(tokens::to_string(token));
    print_report({{"tokens", sequence}, {"names", names}}, true);
    return;
  }
  for (tokens::Token token : sequence) std::cout << token << '\t' << tokens::to_string(token) << '\n';
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd =
      app.add_subcommand("tokenize", "Print a MIDI file's tokens, or measure the tokenizer round trip");
  cmd->add_option("paths", options->paths, "MIDI files or folders (searched recursively)")->required();
  cmd->add_flag("--stats", options->stats,
                "Encode and decode every file and report what the round trip keeps");
  cmd->add_flag("--json", options->json, "Print the report as JSON");
  cmd->add_option("--threads", options->threads, "Worker threads (default: all cores)");
  cmd->callback([options] { options->stats ? run_stats(*options) : run_print(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
