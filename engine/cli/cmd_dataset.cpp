// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow dataset: index the corpus and its split, build the token cache, describe a cache.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "command.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/progress.hpp"

namespace tatumflow::cli {
namespace {

namespace fs = std::filesystem;
using dataset::Split;

struct CorpusArgs {
  std::string data = dataset::default_data_dir().string();
  std::string transcription = "both";
  double validation_fraction = 0.1;
  std::string performer;
  std::string split;
  std::size_t max_files = 0;
  bool json = false;

  void add_to(CLI::App* cmd, bool with_split) {
    cmd->add_option("--data", data, "PiJAMA folder (env TATUMFLOW_DATA)")->capture_default_str();
    cmd->add_option("--transcription", transcription,
                    "Which transcription: kong (midi_kong/), midi (midi/) or both")
        ->check(CLI::IsMember({"kong", "midi", "both"}))
        ->capture_default_str();
    cmd->add_option("--val-fraction", validation_fraction, "Share of albums held out for validation")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    cmd->add_option("--performer", performer, "Only performers whose name contains this (case-insensitive)");
    if (with_split) {
      cmd->add_option("--split", split, "Only this side of the split")
          ->check(CLI::IsMember({"train", "validation"}));
    }
    cmd->add_option("--max-files", max_files, "At most this many files, in index order (0: all)");
    cmd->add_flag("--json", json, "Print the report as JSON");
  }

  [[nodiscard]] std::vector<dataset::CorpusEntry> entries() const {
    dataset::CorpusOptions options;
    options.data_dir = data;
    options.transcriptions = dataset::parse_transcription_set(transcription);
    options.validation_fraction = validation_fraction;
    dataset::CorpusFilter filter;
    filter.performer = performer;
    if (!split.empty()) filter.split = dataset::parse_split(split);
    filter.max_files = max_files;
    return dataset::filter_corpus(dataset::index_corpus(options), filter);
  }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- dataset index -------------------------------------------------------

struct IndexArgs : CorpusArgs {
  bool albums = false;
};

void run_index(const IndexArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  const std::vector<dataset::CorpusEntry> entries = args.entries();
  struct Totals {
    std::uint64_t files = 0;
    std::uint64_t albums = 0;
    std::int64_t notes = 0;
    double seconds = 0.0;
  };
  struct Album {
    Split split = Split::kTrain;
    Totals totals;
  };
  std::map<std::pair<std::string, std::string>, Album> albums;
  std::set<std::string> performers;
  std::set<std::string> validation_performers;
  Totals sides[2];
  for (const dataset::CorpusEntry& entry : entries) {
    Album& album = albums[{entry.performer, entry.album}];
    album.split = entry.split;
    for (Totals* totals : {&album.totals, &sides[static_cast<int>(entry.split)]}) {
      ++totals->files;
      totals->notes += entry.notes;
      totals->seconds += entry.seconds;
    }
    performers.insert(entry.performer);
    if (entry.split == Split::kValidation) validation_performers.insert(entry.performer);
  }
  nlohmann::json album_list = nlohmann::json::array();
  for (const auto& [key, album] : albums) {
    ++sides[static_cast<int>(album.split)].albums;
    album_list.push_back({{"performer", key.first},
                          {"album", key.second},
                          {"split", dataset::to_string(album.split)},
                          {"files", album.totals.files},
                          {"seconds", album.totals.seconds}});
  }
  const auto side_json = [](const Totals& totals) {
    return nlohmann::json{{"files", totals.files},
                          {"albums", totals.albums},
                          {"notes", totals.notes},
                          {"seconds", totals.seconds}};
  };
  nlohmann::json report = {
      {"data", args.data},
      {"transcription", args.transcription},
      {"validation_fraction", args.validation_fraction},
      {"files", entries.size()},
      {"albums", albums.size()},
      {"performers", performers.size()},
      {"performers_in_validation", validation_performers.size()},
      {"train", side_json(sides[static_cast<int>(Split::kTrain)])},
      {"validation", side_json(sides[static_cast<int>(Split::kValidation)])},
      {"wall_seconds", seconds_since(started)},
  };
  if (args.albums) report["album_list"] = album_list;
  print_report(report, args.json);
}

// ---- dataset build -------------------------------------------------------

struct BuildArgs : CorpusArgs {
  std::string out;
  unsigned threads = 0;
  bool force = false;
};

// Everything the cache's content depends on besides the tokenizer version
// (checked separately), so a changed option triggers a rebuild.
std::string source_of(const BuildArgs& args) {
  std::error_code error;
  const fs::path data = fs::weakly_canonical(args.data, error);
  return "data=" + (error ? args.data : data.string()) + ";transcription=" + args.transcription +
         ";val_fraction=" + std::to_string(args.validation_fraction) + ";performer=" + args.performer +
         ";max_files=" + std::to_string(args.max_files);
}

nlohmann::json split_json(const dataset::SplitTotals& totals) {
  return {{"files", totals.files}, {"tokens", totals.tokens}, {"seconds", totals.seconds}};
}

// The same numbers a build reports, counted from a cache on disk.
dataset::CacheBuildReport summarize(const dataset::TokenCache& cache, const fs::path& dir) {
  dataset::CacheBuildReport report;
  std::set<std::string> performers;
  for (const dataset::CachedPerformance& record : cache.performances()) {
    report.count(record);
    performers.insert(record.performer);
  }
  report.performers = performers.size();
  report.shards = cache.header().shard_tokens.size();
  for (const auto& item : fs::directory_iterator(dir)) {
    if (item.is_regular_file()) report.bytes += item.file_size();
  }
  return report;
}

nlohmann::json report_json(const dataset::CacheBuildReport& report) {
  return {
      {"files", report.files},
      {"notes", report.notes},
      {"tokens", report.tokens},
      {"train", split_json(report.train)},
      {"validation", split_json(report.validation)},
      {"performers", report.performers},
      {"seconds", report.seconds},
      {"hours", report.seconds / 3600.0},
      {"shards", report.shards},
      {"bytes", report.bytes},
  };
}

void run_build(const BuildArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  const std::string source = source_of(args);
  const std::string staleness = args.force ? "--force" : dataset::cache_staleness(args.out, source);
  nlohmann::json report;
  if (staleness.empty()) {
    report = report_json(summarize(dataset::TokenCache::open(args.out), args.out));
    report["status"] = "up to date";
  } else {
    const std::vector<dataset::CorpusEntry> entries = args.entries();
    dataset::CacheBuildOptions options;
    options.data_dir = args.data;
    options.out_dir = args.out;
    options.source = source;
    options.threads = args.threads > 0 ? args.threads : std::max(1U, std::thread::hardware_concurrency());
    ProgressBar progress("tokenize", entries.size(), {.unit = "files"});
    const dataset::CacheBuildReport built = dataset::build_token_cache(entries, options, &progress);
    progress.finish();
    for (const dataset::FailedFile& failure : built.failed) {
      std::cerr << "tatumflow dataset build: skipped " << failure.path << ": " << failure.message << '\n';
    }
    report = report_json(built);
    report["status"] = "built";
    report["rebuilt_because"] = staleness;
    report["failed"] = built.failed.size();
    nlohmann::json failures = nlohmann::json::array();
    for (const dataset::FailedFile& failure : built.failed) {
      failures.push_back({{"path", failure.path}, {"message", failure.message}});
    }
    report["failures"] = failures;
    report["threads"] = options.threads;
  }
  report["out"] = args.out;
  report["tokenizer_version"] = tokens::kTokenizerVersion;
  report["vocab_size"] = tokens::kVocabSize;
  report["wall_seconds"] = seconds_since(started);
  print_report(report, args.json);
}

// ---- dataset info --------------------------------------------------------

struct InfoArgs {
  std::string cache;
  bool json = false;
};

void run_info(const InfoArgs& args) {
  const dataset::TokenCache cache = dataset::TokenCache::open(args.cache);
  nlohmann::json report = report_json(summarize(cache, args.cache));
  report["cache"] = args.cache;
  report["source"] = cache.header().source;
  report["format_version"] = cache.header().format_version;
  report["tokenizer_version"] = cache.header().tokenizer_version;
  report["vocab_size"] = cache.header().vocab_size;
  print_report(report, args.json);
}

const bool registered = register_command([](CLI::App& app) {
  CLI::App* cmd =
      app.add_subcommand("dataset", "Index the PiJAMA corpus and build the tokenized training cache");
  cmd->require_subcommand(1);

  auto index = std::make_shared<IndexArgs>();
  CLI::App* index_cmd =
      cmd->add_subcommand("index", "List the corpus and its train/validation split by album");
  index->add_to(index_cmd, true);
  index_cmd->add_flag("--albums", index->albums, "List every album with its split");
  index_cmd->callback([index] { run_index(*index); });

  auto build = std::make_shared<BuildArgs>();
  CLI::App* build_cmd =
      cmd->add_subcommand("build", "Tokenize the corpus into a cache (skipped when the cache is up to date)");
  build->add_to(build_cmd, false);
  build_cmd->add_option("--out", build->out, "Cache folder")->required();
  build_cmd->add_option("--threads", build->threads, "Worker threads (default: all cores)");
  build_cmd->add_flag("--force", build->force, "Rebuild even when the cache is up to date");
  build_cmd->callback([build] { run_build(*build); });

  auto info = std::make_shared<InfoArgs>();
  CLI::App* info_cmd = cmd->add_subcommand("info", "Verify a token cache and describe what it holds");
  info_cmd->add_option("cache", info->cache, "Cache folder")->required();
  info_cmd->add_flag("--json", info->json, "Print the report as JSON");
  info_cmd->callback([info] { run_info(*info); });
});

}  // namespace
}  // namespace tatumflow::cli
