// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow classify: train, evaluate and apply the performer classifier.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "command.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/performer_classifier.hpp"
#include "tatumflow/engine/progress.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

namespace fs = std::filesystem;
using classify::PerformerClassifier;

constexpr const char* kTatum = "Art Tatum";
constexpr std::size_t kTopConfusions = 10;
constexpr std::size_t kTatumConfusions = 5;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct CorpusClips {
  std::vector<dataset::CorpusEntry> entries;
  classify::ClipSet clips;
  std::vector<dataset::FailedFile> failed;
  double seconds = 0;  // wall time of the extraction
};

CorpusClips extract(const std::string& data, const std::string& transcription, double validation_fraction,
                    std::int64_t clip_us, std::int64_t min_clip_us, unsigned threads) {
  const auto started = std::chrono::steady_clock::now();
  CorpusClips result;
  dataset::CorpusOptions corpus;
  corpus.data_dir = data;
  corpus.transcriptions = dataset::parse_transcription_set(transcription);
  corpus.validation_fraction = validation_fraction;
  result.entries = dataset::index_corpus(corpus);
  classify::ExtractOptions options;
  options.data_dir = data;
  options.clip_us = clip_us;
  options.min_clip_us = min_clip_us;
  options.threads = threads;
  ProgressBar progress("features", result.entries.size(), {.unit = "files"});
  result.clips = classify::extract_corpus_clips(result.entries, options, result.failed, &progress);
  progress.finish();
  for (const dataset::FailedFile& failure : result.failed) {
    std::cerr << "tatumflow classify: skipped " << failure.path << ": " << failure.message << '\n';
  }
  result.seconds = seconds_since(started);
  return result;
}

nlohmann::json failed_json(const std::vector<dataset::FailedFile>& failed) {
  nlohmann::json list = nlohmann::json::array();
  for (const dataset::FailedFile& f : failed) list.push_back({{"path", f.path}, {"error", f.message}});
  return list;
}

nlohmann::json evaluation_json(const classify::Evaluation& e, const std::vector<std::string>& performers) {
  nlohmann::json recall = nlohmann::json::object();
  for (std::size_t k = 0; k < performers.size(); ++k) {
    if (e.recall[k]) recall[performers[k]] = *e.recall[k];
  }
  struct Confusion {
    std::size_t actual, predicted;
    std::uint32_t count;
  };
  std::vector<Confusion> confusions;
  for (std::size_t a = 0; a < performers.size(); ++a) {
    for (std::size_t p = 0; p < performers.size(); ++p) {
      if (a != p && e.confusion[a][p] > 0) confusions.push_back({a, p, e.confusion[a][p]});
    }
  }
  std::stable_sort(confusions.begin(), confusions.end(),
                   [](const Confusion& x, const Confusion& y) { return x.count > y.count; });
  nlohmann::json top = nlohmann::json::array();
  for (std::size_t i = 0; i < std::min(kTopConfusions, confusions.size()); ++i) {
    top.push_back({{"actual", performers[confusions[i].actual]},
                   {"predicted", performers[confusions[i].predicted]},
                   {"clips", confusions[i].count}});
  }
  nlohmann::json report = {
      {"clips", e.clips},
      {"accuracy", e.accuracy},
      {"top3_accuracy", e.top3_accuracy},
      {"balanced_accuracy", e.balanced_accuracy},
      {"log_loss", e.log_loss},
      {"chance_accuracy", performers.empty() ? 0.0 : 1.0 / static_cast<double>(performers.size())},
      {"top_confusions", top},
      {"recall_by_performer", recall},
  };
  const auto tatum = std::find(performers.begin(), performers.end(), kTatum);
  if (tatum != performers.end()) {
    const auto k = static_cast<std::size_t>(std::distance(performers.begin(), tatum));
    nlohmann::json predicted_as = nlohmann::json::object();
    std::vector<std::size_t> order(performers.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t x, std::size_t y) { return e.confusion[k][x] > e.confusion[k][y]; });
    for (std::size_t i = 0; i < std::min(kTatumConfusions, order.size()) && e.confusion[k][order[i]] > 0;
         ++i) {
      predicted_as[performers[order[i]]] = e.confusion[k][order[i]];
    }
    std::uint32_t predicted_tatum = 0;
    for (std::size_t a = 0; a < performers.size(); ++a) predicted_tatum += e.confusion[a][k];
    report["art_tatum"] = {
        {"clips", e.clips_per_performer[k]},
        {"recall", e.recall[k] ? nlohmann::json(*e.recall[k]) : nlohmann::json(nullptr)},
        {"precision", predicted_tatum > 0
                          ? nlohmann::json(static_cast<double>(e.confusion[k][k]) / predicted_tatum)
                          : nlohmann::json(nullptr)},
        {"predicted_as", predicted_as},
    };
  }
  return report;
}

// ---- classify train ----------------------------------------------------------

struct TrainArgs {
  std::string data = dataset::default_data_dir().string();
  std::string out;
  std::string transcription = "kong";
  double validation_fraction = 0.1;
  double clip_seconds = 25;
  double min_clip_seconds = 10;
  double min_minutes = 20;
  classify::TrainOptions train;
  unsigned threads = 0;
  bool json = false;
};

std::int64_t to_us(double seconds, const char* option) {
  if (!(seconds > 0) || seconds > 3600)
    throw std::runtime_error(std::string(option) + " must be in (0, 3600] seconds");
  return static_cast<std::int64_t>(std::llround(seconds * 1e6));
}

void run_train(const TrainArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  const std::int64_t clip_us = to_us(args.clip_seconds, "--clip-seconds");
  const std::int64_t min_clip_us = to_us(args.min_clip_seconds, "--min-clip-seconds");
  const CorpusClips corpus =
      extract(args.data, args.transcription, args.validation_fraction, clip_us, min_clip_us, args.threads);
  const std::vector<std::string> performers =
      classify::performers_with_train_minutes(corpus.clips, corpus.entries, args.min_minutes);
  if (performers.size() < 2) {
    throw std::runtime_error("only " + std::to_string(performers.size()) + " performers have " +
                             std::to_string(args.min_minutes) +
                             " minutes of training clips; lower --min-minutes");
  }
  const classify::LabelledClips train_clips =
      classify::select_clips(corpus.clips, corpus.entries, performers, dataset::Split::kTrain);
  const classify::LabelledClips validation_clips =
      classify::select_clips(corpus.clips, corpus.entries, performers, dataset::Split::kValidation);

  classify::ModelInfo info;
  info.clip_us = clip_us;
  info.min_clip_us = min_clip_us;
  info.transcription = args.transcription;
  info.validation_fraction = args.validation_fraction;
  info.min_train_minutes = args.min_minutes;
  info.train = args.train;
  const auto training_started = std::chrono::steady_clock::now();
  const PerformerClassifier model = PerformerClassifier::train(train_clips, performers, info);
  const double training_seconds = seconds_since(training_started);
  model.save(args.out);

  const classify::Evaluation on_train = classify::evaluate(model, train_clips);
  nlohmann::json report = {
      {"model", args.out},
      {"performers", performers.size()},
      {"features_per_clip", classify::kFeatureSize},
      {"clip_seconds", args.clip_seconds},
      {"train_clips", train_clips.size()},
      {"validation_clips", validation_clips.size()},
      {"final_train_loss", model.info().final_train_loss},
      {"train_accuracy", on_train.accuracy},
      {"validation", evaluation_json(classify::evaluate(model, validation_clips), performers)},
      {"files", corpus.entries.size()},
      {"failed", failed_json(corpus.failed)},
      {"feature_seconds", corpus.seconds},
      {"training_seconds", training_seconds},
      {"wall_seconds", seconds_since(started)},
  };
  print_report(report, args.json);
}

// ---- classify eval -------------------------------------------------------------

struct EvalArgs {
  std::string model;
  std::string data = dataset::default_data_dir().string();
  unsigned threads = 0;
  bool json = false;
};

void run_eval(const EvalArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  const PerformerClassifier model = PerformerClassifier::load(args.model);
  const classify::ModelInfo& info = model.info();
  const CorpusClips corpus = extract(args.data, info.transcription, info.validation_fraction, info.clip_us,
                                     info.min_clip_us, args.threads);
  const classify::LabelledClips validation_clips =
      classify::select_clips(corpus.clips, corpus.entries, model.performers(), dataset::Split::kValidation);
  nlohmann::json report = {
      {"model", args.model},
      {"performers", model.performers().size()},
      {"transcription", info.transcription},
      {"validation", evaluation_json(classify::evaluate(model, validation_clips), model.performers())},
      {"failed", failed_json(corpus.failed)},
      {"wall_seconds", seconds_since(started)},
  };
  print_report(report, args.json);
}

// ---- classify predict ----------------------------------------------------------

struct PredictArgs {
  std::string model;
  std::vector<std::string> files;
  std::size_t top = 5;
  bool json = false;
};

void run_predict(const PredictArgs& args) {
  const PerformerClassifier model = PerformerClassifier::load(args.model);
  const std::optional<std::size_t> tatum = model.performer_index(kTatum);
  nlohmann::json results = nlohmann::json::array();
  nlohmann::json failed = nlohmann::json::array();
  for (const std::string& file : args.files) {
    Performance performance;
    try {
      performance = read_smf(file);
    } catch (const SmfError& e) {
      failed.push_back({{"path", file}, {"error", e.what()}});
      continue;
    }
    std::size_t clips = 0;
    const std::optional<std::vector<double>> p = model.performance_probabilities(performance, &clips);
    nlohmann::json result = {{"path", file}, {"clips", clips}};
    if (!p) {
      result["p_art_tatum"] = nullptr;
      result["top"] = nlohmann::json::array();
    } else {
      result["p_art_tatum"] = tatum ? nlohmann::json((*p)[*tatum]) : nlohmann::json(nullptr);
      std::vector<std::size_t> order(p->size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t x, std::size_t y) { return (*p)[x] > (*p)[y]; });
      nlohmann::json top = nlohmann::json::array();
      for (std::size_t i = 0; i < std::min(args.top, order.size()); ++i) {
        top.push_back({{"performer", model.performers()[order[i]]}, {"p", (*p)[order[i]]}});
      }
      result["top"] = top;
    }
    results.push_back(std::move(result));
  }
  print_report({{"model", args.model}, {"files", results}, {"failed", failed}}, args.json);
  if (!failed.empty()) throw CLI::RuntimeError(2);
}

const bool registered = register_command([](CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("classify", "Performer classifier: train, evaluate, predict");
  cmd->require_subcommand(1);

  auto train = std::make_shared<TrainArgs>();
  CLI::App* train_cmd = cmd->add_subcommand(
      "train", "Train on the train split's clips, report accuracy on the validation split");
  train_cmd->add_option("--data", train->data, "PiJAMA folder (env TATUMFLOW_DATA)")->capture_default_str();
  train_cmd->add_option("--out", train->out, "Model file to write")->required();
  train_cmd->add_option("--transcription", train->transcription, "kong (midi_kong/), midi (midi/) or both")
      ->check(CLI::IsMember({"kong", "midi", "both"}))
      ->capture_default_str();
  train_cmd
      ->add_option("--val-fraction", train->validation_fraction, "Share of albums held out for validation")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  train_cmd->add_option("--clip-seconds", train->clip_seconds, "Clip length")->capture_default_str();
  train_cmd
      ->add_option("--min-clip-seconds", train->min_clip_seconds,
                   "Shortest clip kept (a performance's last one)")
      ->capture_default_str();
  train_cmd
      ->add_option("--min-minutes", train->min_minutes, "Performers with at least this much training music")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train_cmd->add_option("--epochs", train->train.epochs, "Passes over the training clips")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train_cmd->add_option("--batch", train->train.batch_size, "Clips per Adam step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train_cmd->add_option("--lr", train->train.learning_rate, "Adam learning rate (cosine decay to 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train_cmd->add_option("--l2", train->train.l2, "L2 weight on the weights")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train_cmd->add_option("--seed", train->train.seed, "Shuffle seed")->capture_default_str();
  train_cmd->add_flag(
      "!--no-balance", train->train.balance_classes,
      "Weight clips by their share of the data instead of giving every performer equal weight");
  train_cmd->add_option("--threads", train->threads, "Feature extraction threads (default: all cores)");
  train_cmd->add_flag("--json", train->json, "Print the report as JSON");
  train_cmd->callback([train] { run_train(*train); });

  auto eval = std::make_shared<EvalArgs>();
  CLI::App* eval_cmd = cmd->add_subcommand("eval", "Evaluate a model on the validation split");
  eval_cmd->add_option("--model", eval->model, "Model file")->required();
  eval_cmd->add_option("--data", eval->data, "PiJAMA folder (env TATUMFLOW_DATA)")->capture_default_str();
  eval_cmd->add_option("--threads", eval->threads, "Feature extraction threads (default: all cores)");
  eval_cmd->add_flag("--json", eval->json, "Print the report as JSON");
  eval_cmd->callback([eval] { run_eval(*eval); });

  auto predict = std::make_shared<PredictArgs>();
  CLI::App* predict_cmd =
      cmd->add_subcommand("predict", "P(Art Tatum) and the likeliest performers of MIDI files");
  predict_cmd->add_option("--model", predict->model, "Model file")->required();
  predict_cmd->add_option("files", predict->files, "MIDI files")->required();
  predict_cmd->add_option("--top", predict->top, "How many performers to list")->capture_default_str();
  predict_cmd->add_flag("--json", predict->json, "Print the report as JSON");
  predict_cmd->callback([predict] { run_predict(*predict); });
});

}  // namespace
}  // namespace tatumflow::cli
