// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow evaluate: the continuation report (docs/evaluation.md). Validation clips of
// one performer (20 s context -> 10 s) are continued by the model (with the
// context's style and without style), by the Markov baseline and by copying
// the prompt; every continuation is scored against the real one over several
// seeds, P(Art Tatum) comes from the performer classifier, the style latents of
// validation windows are mapped by performer, and OUT gets report.md,
// report.json, plot-data.json, the MIDI files and the pictures
// (scripts/plot-evaluation).
#if TATUMFLOW_HAVE_MODEL
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "generation_options.hpp"
#include "tatumflow/engine/continuation_eval.hpp"
#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/markov.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/music_metrics.hpp"
#include "tatumflow/engine/performer_classifier.hpp"
#include "tatumflow/engine/progress.hpp"
#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

namespace fs = std::filesystem;
using continuation::Clip;
using continuation::ClipOptions;
using continuation::Score;
using tokens::Token;

constexpr const char* kTatum = "Art Tatum";
// The Markov chain draws at most this many tokens per second of continuation
// (Art Tatum's densest passages need about 60).
constexpr double kMarkovTokensPerSecond = 400.0;

struct Options {
  std::string checkpoint;
  std::string data = dataset::default_data_dir().string();
  std::string cache;
  std::string out;
  std::string performer = kTatum;
  std::string transcription = "kong";
  std::string style;
  std::string classifier;
  std::string device = "cpu";
  std::string mode = "ar";
  std::size_t clips = 20;
  std::vector<std::uint64_t> seeds = {1, 2, 3};
  double context_seconds = 20.0;
  double continuation_seconds = 10.0;
  std::size_t model_context_tokens = 512;
  std::int64_t context_positions = 0;
  double chunk_seconds = 2.0;
  float temperature = 1.0f;
  float guidance = 1.0f;  // as the daemon answers
  int top_k = 50;
  float top_p = 0.95f;
  int steps = 50;
  int markov_order = 4;
  std::string markov_performer;
  std::size_t map_performers = 8;
  std::size_t map_windows = 24;
  std::size_t map_window_tokens = 256;
  std::size_t plot_clips = 3;
  int threads = 1;
  unsigned feature_threads = 2;
  bool plots = true;
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::int64_t to_us(double seconds, const char* option) {
  if (!(seconds > 0) || seconds > 600)
    throw std::runtime_error(std::string(option) + " must be in (0, 600] seconds");
  return static_cast<std::int64_t>(std::llround(seconds * 1e6));
}

// One way of continuing a clip: its scores by run (seed), and what the plots
// and the set-level metrics need.
struct System {
  std::string name;         // file and JSON key
  std::string description;  // table row
  bool reference = false;
  bool seeded = true;  // false: one run, the same for every seed
  std::vector<std::vector<Score>> runs;
  std::vector<metrics::MgevalFeatures> mgeval;
  std::vector<double> pitch_classes = std::vector<double>(12, 0.0);
  std::vector<double> ioi;
  std::vector<double> velocity;
  std::size_t measured = 0;
  std::size_t capped = 0;  // generations stopped before the end of the continuation

  void add(std::size_t run, Score score, const metrics::ClipMeasures& measures) {
    if (runs.size() <= run) runs.resize(run + 1);
    runs[run].push_back(std::move(score));
    mgeval.push_back(measures.mgeval);
    for (std::size_t k = 0; k < 12; ++k) pitch_classes[k] += measures.pitch_class_histogram[k];
    if (ioi.empty()) ioi.assign(measures.ioi_histogram.size(), 0.0);
    if (velocity.empty()) velocity.assign(measures.velocity_histogram.size(), 0.0);
    for (std::size_t k = 0; k < ioi.size(); ++k) ioi[k] += measures.ioi_histogram[k];
    for (std::size_t k = 0; k < velocity.size(); ++k) velocity[k] += measures.velocity_histogram[k];
    ++measured;
  }
};

nlohmann::json mean_histogram(const std::vector<double>& sum, std::size_t count) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : sum) out.push_back(count > 0 ? v / static_cast<double>(count) : 0.0);
  return out;
}

nlohmann::json notes_json(const Performance& performance) {
  nlohmann::json out = nlohmann::json::array();
  for (const Note& note : performance.notes) {
    out.push_back({1e-6 * double(note.onset_us), 1e-6 * double(note.duration_us), note.pitch, note.velocity});
  }
  return out;
}

nlohmann::json summary_json(const std::vector<continuation::MetricSummary>& summaries) {
  nlohmann::json out = nlohmann::json::object();
  for (const continuation::MetricSummary& s : summaries) {
    out[s.name] = {{"mean", s.mean},
                   {"seed_std", s.run_std},
                   {"clip_std", s.clip_std},
                   {"per_seed", s.per_run},
                   {"values", s.values}};
  }
  return out;
}

// ---- the performer classifier ---------------------------------------------------

struct Classifier {
  std::optional<classify::PerformerClassifier> model;
  std::optional<std::size_t> tatum;
  nlohmann::json report = nlohmann::json::object();

  std::optional<double> p_art_tatum(const Performance& performance) const {
    if (!model || !tatum) return std::nullopt;
    const auto p = model->performance_probabilities(performance);
    return p ? std::optional<double>((*p)[*tatum]) : std::nullopt;
  }
};

Classifier load_classifier(const Options& options) {
  Classifier result;
  if (options.classifier.empty()) {
    result.report["skipped"] =
        "no --classifier given: train one with `tatumflow classify train --out FILE` and pass it to "
        "add P(Art Tatum)";
    return result;
  }
  result.model = classify::PerformerClassifier::load(options.classifier);
  result.tatum = result.model->performer_index(kTatum);
  const classify::ModelInfo& info = result.model->info();
  result.report = {{"model", options.classifier},
                   {"performers", result.model->performers().size()},
                   {"transcription", info.transcription},
                   {"clip_seconds", 1e-6 * double(info.clip_us)}};
  if (!result.tatum) result.report["note"] = "the classifier does not know Art Tatum: no P(Art Tatum)";
  if (!fs::is_directory(options.data)) {
    result.report["validation"] = "not measured: no data folder " + options.data;
    return result;
  }
  // Only the validation albums of the classifier's performers need features.
  dataset::CorpusOptions corpus;
  corpus.data_dir = options.data;
  corpus.transcriptions = dataset::parse_transcription_set(info.transcription);
  corpus.validation_fraction = info.validation_fraction;
  std::vector<dataset::CorpusEntry> entries;
  for (dataset::CorpusEntry& entry : dataset::index_corpus(corpus)) {
    if (entry.split == dataset::Split::kValidation && result.model->performer_index(entry.performer))
      entries.push_back(std::move(entry));
  }
  classify::ExtractOptions extract;
  extract.data_dir = options.data;
  extract.clip_us = info.clip_us;
  extract.min_clip_us = info.min_clip_us;
  extract.threads = options.feature_threads;
  std::vector<dataset::FailedFile> failed;
  ProgressBar progress("classifier validation", entries.size(), {.unit = "files"});
  const classify::ClipSet clips = classify::extract_corpus_clips(entries, extract, failed, &progress);
  progress.finish();
  const classify::LabelledClips labelled =
      classify::select_clips(clips, entries, result.model->performers(), dataset::Split::kValidation);
  if (labelled.size() == 0) {
    result.report["validation"] = "not measured: no validation clips of the classifier's performers";
    return result;
  }
  const classify::Evaluation evaluation = classify::evaluate(*result.model, labelled);
  result.report["validation"] = {
      {"clips", evaluation.clips},
      {"accuracy", evaluation.accuracy},
      {"balanced_accuracy", evaluation.balanced_accuracy},
      {"top3_accuracy", evaluation.top3_accuracy},
      {"chance_accuracy", 1.0 / static_cast<double>(result.model->performers().size())},
      {"failed_files", failed.size()},
  };
  if (result.tatum && evaluation.recall[*result.tatum])
    result.report["validation"]["art_tatum_recall"] = *evaluation.recall[*result.tatum];
  return result;
}

// ---- clips, baselines --------------------------------------------------------------

struct ClipSource {
  Clip clip;
  std::string path;
  std::string title;
};

std::vector<ClipSource> select_clips(const dataset::TokenCache& cache, const Options& options,
                                     const ClipOptions& clip_options, std::size_t& performances,
                                     std::size_t& candidate_count) {
  const auto set = dataset::parse_transcription_set(options.transcription);
  std::vector<ClipSource> candidates;
  performances = 0;
  for (std::size_t i = 0; i < cache.performances().size(); ++i) {
    const dataset::CachedPerformance& record = cache.performances()[i];
    if (record.split != dataset::Split::kValidation) continue;
    if (!dataset::performer_matches(record.performer, options.performer)) continue;
    if (set == dataset::TranscriptionSet::kKong && record.transcription != dataset::Transcription::kKong)
      continue;
    if (set == dataset::TranscriptionSet::kMidi && record.transcription != dataset::Transcription::kMidi)
      continue;
    ++performances;
    for (Clip& clip : continuation::cut_clips(tokens::decode(cache.tokens(i)), clip_options))
      candidates.push_back({std::move(clip), record.path, record.title});
  }
  candidate_count = candidates.size();
  std::vector<ClipSource> chosen;
  for (std::size_t index : continuation::spread_evenly(candidates.size(), options.clips))
    chosen.push_back(std::move(candidates[index]));
  return chosen;
}

struct MarkovSetup {
  MarkovModel model;
  nlohmann::json report;
};

MarkovSetup train_markov(const dataset::TokenCache& cache, const Options& options) {
  const auto started = std::chrono::steady_clock::now();
  MarkovSetup setup{MarkovModel(options.markov_order), {}};
  std::vector<std::size_t> files;
  for (std::size_t i = 0; i < cache.performances().size(); ++i) {
    const dataset::CachedPerformance& record = cache.performances()[i];
    if (record.split == dataset::Split::kTrain &&
        dataset::performer_matches(record.performer, options.markov_performer))
      files.push_back(i);
  }
  if (files.empty())
    throw std::runtime_error("no training performance matches --markov-performer " +
                             options.markov_performer);
  ProgressBar progress("markov train", files.size(), {.unit = "files"});
  for (std::size_t i : files) {
    setup.model.train(cache.tokens(i));
    progress.add();
  }
  progress.finish();
  setup.report = {{"order", options.markov_order},
                  {"training_files", files.size()},
                  {"training_performer", options.markov_performer.empty() ? "all" : options.markov_performer},
                  {"contexts", setup.model.contexts()},
                  {"train_seconds", seconds_since(started)}};
  return setup;
}

// ---- style latents by performer -------------------------------------------------------

nlohmann::json style_map(const model::ModelContext& model, const dataset::TokenCache& cache,
                         const Options& options) {
  const auto set = dataset::parse_transcription_set(options.transcription);
  std::optional<dataset::Transcription> transcription;
  if (set == dataset::TranscriptionSet::kKong) transcription = dataset::Transcription::kKong;
  if (set == dataset::TranscriptionSet::kMidi) transcription = dataset::Transcription::kMidi;
  std::map<std::string, double> seconds;
  for (const dataset::CachedPerformance& record : cache.performances()) {
    if (record.split != dataset::Split::kValidation) continue;
    if (transcription && record.transcription != *transcription) continue;
    seconds[record.performer] += record.seconds;
  }
  std::vector<std::pair<std::string, double>> ranked(seconds.begin(), seconds.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> performers;
  for (const auto& [name, s] : ranked) {
    if (performers.size() == options.map_performers) break;
    performers.push_back(name);
  }
  for (const auto& [name, s] : ranked) {  // the evaluated performer always appears
    if (dataset::performer_matches(name, options.performer) &&
        std::find(performers.begin(), performers.end(), name) == performers.end()) {
      performers.push_back(name);
      break;
    }
  }

  std::vector<std::vector<double>> points;
  std::vector<std::size_t> labels;
  ProgressBar progress("style map", performers.size() * options.map_windows, {.unit = "windows"});
  for (std::size_t k = 0; k < performers.size(); ++k) {
    const dataset::WindowSampler sampler(cache, options.map_window_tokens,
                                         {dataset::Split::kValidation, performers[k], transcription});
    Rng rng(mix64(k + 1));
    for (std::size_t w = 0; w < options.map_windows; ++w) {
      const model::StyleLatent latent = model::encode_style(model, sampler.sample_window(rng).tokens);
      points.emplace_back(latent.mean.begin(), latent.mean.end());
      labels.push_back(k);
      progress.add();
    }
  }
  progress.finish();
  const std::optional<double> accuracy = continuation::nearest_centroid_accuracy(points, labels);
  return {{"performers", performers},
          {"windows_per_performer", options.map_windows},
          {"window_tokens", options.map_window_tokens},
          {"nearest_centroid_accuracy", accuracy ? nlohmann::json(*accuracy) : nlohmann::json(nullptr)},
          {"chance_accuracy", performers.empty() ? 0.0 : 1.0 / static_cast<double>(performers.size())},
          {"points", points},
          {"labels", labels}};
}

// ---- plots ---------------------------------------------------------------------------

// Runs `program args...` without a shell, its output on our stderr (stdout may
// carry the JSON report); returns why it failed, or "" on success.
std::string run_program(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::cout.flush();
  const pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    dup2(STDERR_FILENO, STDOUT_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return "waitpid failed";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return argv[0] + " could not be run";
  return argv[0] + " failed (status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
}

// ---- report ----------------------------------------------------------------------------

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

// Which of the targets the model meets and where it beats each baseline.
std::string verdict(const continuation::SystemSummary& model,
                    const std::vector<continuation::SystemSummary>& systems) {
  std::string text;
  for (const continuation::Target& target : continuation::kTargets) {
    const continuation::MetricSummary* metric = continuation::find_metric(model.metrics, target.metric);
    if (metric == nullptr) continue;
    const continuation::TargetCheck result = continuation::check(target, metric->mean);
    text += std::string("- ") + target.label + " " + continuation::describe_limit(target) + ": " +
            (target.bound == continuation::Bound::kWithin ? fixed(100 * metric->mean, 1) + "%"
                                                          : fixed(metric->mean, 3)) +
            ", " + continuation::describe_check(target, result);
    for (const continuation::SystemSummary& other : systems) {
      if (other.reference || other.name == model.name || other.name == "model_nostyle") continue;
      const continuation::MetricSummary* theirs = continuation::find_metric(other.metrics, target.metric);
      if (theirs == nullptr) continue;
      // Lower for an upper bound, higher for a lower bound, nearer 0 for a band.
      auto distance = [&](double v) {
        switch (target.bound) {
          case continuation::Bound::kAtMost:
            return v;
          case continuation::Bound::kAtLeast:
            return -v;
          case continuation::Bound::kWithin:
            return std::abs(v);
        }
        return v;
      };
      // Compared as printed (3 decimals; a percentage to 0.1 points is the
      // same 1e-3): a difference the table does not show is a tie.
      const double ours = std::round(distance(metric->mean) * 1e3);
      const double rival = std::round(distance(theirs->mean) * 1e3);
      text += std::string("; ") +
              (ours < rival   ? "better than "
               : ours > rival ? "worse than "
                              : "level with ") +
              other.name;
    }
    text += "\n";
  }
  return text;
}

void run(const Options& options) {
  const auto started = std::chrono::steady_clock::now();
  ClipOptions clip_options;
  clip_options.context_us = to_us(options.context_seconds, "--context-seconds");
  clip_options.continuation_us = to_us(options.continuation_seconds, "--continuation-seconds");
  clip_options.validate();
  if (options.seeds.empty()) throw std::runtime_error("--seeds: give at least one seed");
  if (options.threads > 0) model::set_torch_threads(options.threads);
  const fs::path out = options.out;
  fs::create_directories(out / "midi");

  const auto model = model::ModelContext::load(options.checkpoint, options.device,
                                               {.context_positions = options.context_positions});
  const dataset::TokenCache cache = dataset::TokenCache::open(options.cache);
  std::size_t performances = 0;
  std::size_t candidate_clips = 0;
  std::vector<ClipSource> sources = select_clips(cache, options, clip_options, performances, candidate_clips);
  if (sources.empty()) {
    throw std::runtime_error("no validation clip of " +
                             fixed(options.context_seconds + options.continuation_seconds, 0) + " s by \"" +
                             options.performer + "\" (" + options.transcription + ") in " + options.cache);
  }
  model::GenerationControls controls;
  controls.mode =
      options.mode == "ar" ? model::GenerationMode::kAutoregressive : model::GenerationMode::kDiffusion;
  controls.temperature = options.temperature;
  controls.guidance = options.guidance;
  controls.top_k = options.top_k;
  controls.top_p = options.top_p;
  controls.diffusion_steps = options.steps;
  std::optional<model::StyleLatent> fixed_style;
  if (!options.style.empty()) fixed_style = style_of(*model, options.style);
  const std::string model_style =
      fixed_style ? "style of " + fs::path(options.style).filename().string() : "style of the context";

  Classifier classifier = load_classifier(options);
  MarkovSetup markov = train_markov(cache, options);

  auto make_system = [](std::string name, std::string description, bool reference, bool seeded) {
    System system;
    system.name = std::move(name);
    system.description = std::move(description);
    system.reference = reference;
    system.seeded = seeded;
    return system;
  };
  std::vector<System> systems;
  systems.push_back(make_system("real", "real continuation (reference)", true, false));
  systems.push_back(make_system("model", "TatumFlow, " + model_style, false, true));
  systems.push_back(make_system("model_nostyle", "TatumFlow, no style (use_style=false)", false, true));
  systems.push_back(make_system("markov", "Markov, order " + std::to_string(options.markov_order) + " tokens",
                                false, true));
  systems.push_back(make_system(
      "copy", "copy the prompt's last " + fixed(options.continuation_seconds, 0) + " s", false, false));

  nlohmann::json plot_clips = nlohmann::json::array();
  nlohmann::json clip_list = nlohmann::json::array();
  const auto generation_started = std::chrono::steady_clock::now();
  double model_seconds = 0;
  ProgressBar progress("evaluate", sources.size(), {.unit = "clips"});
  for (std::size_t c = 0; c < sources.size(); ++c) {
    const Clip& clip = sources[c].clip;
    char name[32];
    std::snprintf(name, sizeof name, "clip-%02zu", c);
    const fs::path clip_dir = out / "midi" / name;
    fs::create_directories(clip_dir);
    write_smf(clip_dir / "context.mid", clip.context);
    const metrics::ClipMeasures real = metrics::measure_clip(clip.continuation);
    nlohmann::json plot = {
        {"name", name}, {"context", notes_json(clip.context)}, {"continuations", nlohmann::json::object()}};

    auto record = [&](System& system, std::size_t run, const Performance& generated, std::uint64_t seed) {
      const metrics::ClipMeasures measures = metrics::measure_clip(generated);
      Score score = continuation::score_continuation(clip, real, generated, measures);
      score.p_art_tatum = classifier.p_art_tatum(generated);
      system.add(run, score, measures);
      const std::string file =
          system.seeded ? system.name + "-seed" + std::to_string(seed) + ".mid" : system.name + ".mid";
      write_smf(clip_dir / file, continuation::join_parts(clip.context, generated));
      if (c < options.plot_clips && run == 0) plot["continuations"][system.name] = notes_json(generated);
    };

    record(systems[0], 0, clip.continuation, 0);
    record(systems[4], 0, continuation::copy_baseline(clip.context, clip_options), 0);

    const std::vector<Token> context = continuation::context_tokens(clip.context, clip_options.context_us);
    const std::vector<Token> window = continuation::context_window(context, options.model_context_tokens);
    const model::StyleLatent style = fixed_style ? *fixed_style : model::encode_style(*model, window);
    controls.theory = std::make_shared<TheoryFeatures>(model::theory_of(window));
    for (std::size_t run = 0; run < options.seeds.size(); ++run) {
      const std::uint64_t seed = options.seeds[run];
      const std::uint64_t clip_seed = mix64(seed ^ mix64(c + 1));
      for (System* system : {&systems[1], &systems[2]}) {
        controls.use_style = system == &systems[1];
        controls.seed = clip_seed;
        const auto model_started = std::chrono::steady_clock::now();
        model::GenerationState state;
        std::vector<Token> sequence(window.begin(), window.end());
        const GenerationRun generated = generate_seconds(*model, state, sequence, style, controls,
                                                         options.continuation_seconds, options.chunk_seconds);
        const bool stalled = generated.generated_us < double(clip_options.continuation_us);
        model_seconds += seconds_since(model_started);
        system->capped += stalled ? 1 : 0;
        std::vector<Token> whole = context;
        whole.insert(whole.end(), sequence.begin() + static_cast<std::ptrdiff_t>(window.size()),
                     sequence.end());
        record(*system, run, continuation::continuation_of(whole, clip_options), seed);
      }
      const auto max_tokens = static_cast<std::size_t>(kMarkovTokensPerSecond * options.continuation_seconds);
      continuation::MarkovContinuation drawn = continuation::markov_continuation(
          markov.model, context, clip_options.clip_us(), clip_seed, max_tokens);
      systems[3].capped += drawn.capped ? 1 : 0;
      std::vector<Token> whole = context;
      whole.insert(whole.end(), drawn.tokens.begin(), drawn.tokens.end());
      record(systems[3], run, continuation::continuation_of(whole, clip_options), seed);
    }
    if (c < options.plot_clips) plot_clips.push_back(std::move(plot));
    clip_list.push_back({{"name", name},
                         {"path", sources[c].path},
                         {"start_seconds", 1e-6 * double(clip.start_us)},
                         {"context_notes", clip.context.notes.size()},
                         {"continuation_notes", clip.continuation.notes.size()},
                         {"context_tokens", context.size()},
                         {"model_context_tokens", window.size()}});
    progress.add();
  }
  progress.finish();
  const double generation_seconds = seconds_since(generation_started);

  // Seed-independent systems ran once; their one run stands for every seed.
  std::vector<continuation::SystemSummary> summaries;
  std::vector<metrics::MgevalFeatures> real_mgeval = systems[0].mgeval;
  nlohmann::json systems_json = nlohmann::json::object();
  nlohmann::json histograms = nlohmann::json::object();
  for (const System& system : systems) {
    continuation::SystemSummary summary{system.name, system.description, system.reference,
                                        continuation::summarize(system.runs)};
    nlohmann::json targets = nlohmann::json::object();
    for (const continuation::Target& target : continuation::kTargets) {
      const continuation::MetricSummary* metric = continuation::find_metric(summary.metrics, target.metric);
      if (metric == nullptr) continue;
      const continuation::TargetCheck result = continuation::check(target, metric->mean);
      targets[target.metric] = {{"value", metric->mean},
                                {"limit", target.limit},
                                {"pass", result.pass},
                                {"shortfall", result.shortfall},
                                {"text", continuation::describe_check(target, result)}};
    }
    nlohmann::json mgeval = nlohmann::json::object();
    for (const metrics::MgevalOverlap& overlap : metrics::mgeval_overlaps(real_mgeval, system.mgeval)) {
      mgeval[overlap.feature] = overlap.reference_intra_vs_inter
                                    ? nlohmann::json(*overlap.reference_intra_vs_inter)
                                    : nlohmann::json(nullptr);
    }
    systems_json[system.name] = {{"description", system.description},
                                 {"runs", system.runs.size()},
                                 {"continuations", system.measured},
                                 {"stopped_early", system.capped},
                                 {"metrics", summary_json(summary.metrics)},
                                 {"targets", system.reference ? nlohmann::json::object() : targets},
                                 {"mgeval_overlap_reference_intra_vs_inter", mgeval}};
    histograms[system.name] = {{"pitch_class", mean_histogram(system.pitch_classes, system.measured)},
                               {"ioi", mean_histogram(system.ioi, system.measured)},
                               {"velocity", mean_histogram(system.velocity, system.measured)}};
    summaries.push_back(std::move(summary));
  }

  const auto map_started = std::chrono::steady_clock::now();
  nlohmann::json map = options.map_windows > 0 && options.map_performers > 0
                           ? style_map(*model, cache, options)
                           : nlohmann::json(nullptr);
  const double map_seconds = seconds_since(map_started);

  auto p_of = [&](const std::string& system) -> std::optional<double> {
    for (const continuation::SystemSummary& s : summaries) {
      if (s.name != system) continue;
      if (const continuation::MetricSummary* m = continuation::find_metric(s.metrics, "p_art_tatum"))
        return m->mean;
    }
    return std::nullopt;
  };
  const std::optional<double> p_styled = p_of("model");
  const std::optional<double> p_plain = p_of("model_nostyle");

  const model::ModelInfo& info = model->info();
  nlohmann::json report = {
      {"checkpoint", options.checkpoint},
      {"trained_steps", info.trained_steps},
      {"context_positions", info.context_positions},
      {"parameters", info.parameters},
      {"device", info.device},
      {"cache", options.cache},
      {"data", options.data},
      {"performer", options.performer},
      {"transcription", options.transcription},
      {"validation_performances", performances},
      {"candidate_clips", candidate_clips},
      {"clips", sources.size()},
      {"seeds", options.seeds},
      {"context_seconds", options.context_seconds},
      {"continuation_seconds", options.continuation_seconds},
      {"model_context_tokens", options.model_context_tokens},
      {"generation",
       {{"mode", options.mode},
        {"temperature", options.temperature},
        {"guidance", options.guidance},
        {"top_k", options.top_k},
        {"top_p", options.top_p},
        {"diffusion_steps", options.steps},
        {"chunk_seconds", options.chunk_seconds},
        {"style", options.style.empty() ? "context" : options.style}}},
      {"markov", markov.report},
      {"classifier", classifier.report},
      {"p_art_tatum_styled_minus_unstyled",
       p_styled && p_plain ? nlohmann::json(*p_styled - *p_plain) : nlohmann::json(nullptr)},
      {"systems", systems_json},
      {"clip_list", clip_list},
  };
  if (!map.is_null()) {
    nlohmann::json summary = map;
    summary.erase("points");
    summary.erase("labels");
    report["style_map"] = summary;
  }

  {
    std::ofstream plot_data(out / "plot-data.json");
    plot_data << nlohmann::json{
        {"context_seconds", options.context_seconds},
        {"continuation_seconds", options.continuation_seconds},
        {"systems", nlohmann::json::array({"real", "model", "model_nostyle", "markov", "copy"})},
        {"descriptions", nlohmann::json::object({{"real", systems[0].description},
                                                 {"model", systems[1].description},
                                                 {"model_nostyle", systems[2].description},
                                                 {"markov", systems[3].description},
                                                 {"copy", systems[4].description}})},
        {"clips", plot_clips},
        {"histograms", histograms},
        {"style_map",
         map}}.dump();
    if (!plot_data) throw std::runtime_error("cannot write " + (out / "plot-data.json").string());
  }
  std::string plot_problem;
  std::vector<std::string> pictures;
  if (options.plots) {
    const fs::path script = dataset::repo_dir() / "scripts" / "plot-evaluation";
    plot_problem = fs::exists(script)
                       ? run_program({script.string(), out.string()})
                       : "no " + script.string() + " (run scripts/plot-evaluation OUT by hand)";
    for (const char* picture : {"piano-rolls.png", "histograms.png", "style-latents.png"}) {
      if (fs::exists(out / picture)) pictures.push_back(picture);
    }
    if (plot_problem.empty() && pictures.empty()) plot_problem = "the plot script wrote no picture";
  } else {
    plot_problem = "skipped (--no-plots)";
  }
  report["pictures"] = pictures;
  if (!plot_problem.empty()) report["pictures_problem"] = plot_problem;
  report["timing_seconds"] = {{"generation_loop", generation_seconds},
                              {"model_generation", model_seconds},
                              {"style_map", map_seconds},
                              {"total", seconds_since(started)}};

  // report.md
  std::string md = "# TatumFlow continuation evaluation\n\n";
  md += "Checkpoint `" + options.checkpoint + "` (" + std::to_string(info.trained_steps) + " steps, " +
        std::to_string(info.parameters) + " parameters). " + std::to_string(sources.size()) + " of the " +
        std::to_string(candidate_clips) + " validation clips of \"" + options.performer + "\" (" +
        options.transcription + " transcription, " + std::to_string(performances) +
        " validation performances, albums never trained on; clips tiled from the first note, spread evenly), "
        "each " +
        fixed(options.context_seconds, 0) + " s of context continued for " +
        fixed(options.continuation_seconds, 0) + " s; seeds";
  for (std::uint64_t seed : options.seeds) md += " " + std::to_string(seed);
  md += ". Model: " + options.mode + " mode" +
        (options.mode == "diffusion" ? " (" + std::to_string(options.steps) + " steps per block)" : "") +
        ", temperature " + fixed(options.temperature, 2) + ", style guidance " + fixed(options.guidance, 2) +
        ", top-k " + std::to_string(options.top_k) + ", top-p " + fixed(options.top_p, 2) + ", the last " +
        std::to_string(options.model_context_tokens) + " context tokens (0 = all). Markov: order " +
        std::to_string(options.markov_order) + " over tokens, trained on " +
        markov.report["training_files"].dump() + " training-split files (" +
        markov.report["training_performer"].get<std::string>() + ").\n\n";
  md +=
      "Values are means over clips, ± the standard deviation of the per-seed means; the real continuation "
      "and "
      "the copy baseline do not depend on the seed. PC-KL and PCTM cosine follow ImprovNet; the density gap "
      "is "
      "the mean generated density over the mean real density, minus 1; the copy rate is the share of the "
      "continuation's pitch 4-grams found in the context (the real row gives the real continuation's own "
      "rate).\n\n";
  md += continuation::markdown_table(summaries) + "\n";
  md += "Model (" + model_style + ") against the issue's targets and the baselines:\n\n" +
        verdict(summaries[1], summaries) + "\n";
  std::string stopped;
  for (const System& system : systems) {
    if (system.capped > 0)
      stopped += (stopped.empty() ? "" : ", ") + system.name + " " + std::to_string(system.capped);
  }
  if (!stopped.empty()) {
    md += "Continuations that stopped before the end of the " + fixed(options.continuation_seconds, 0) +
          " s (counted as they are): " + stopped + ".\n\n";
  }
  md += "## Style\n\n";
  if (p_styled && p_plain) {
    md += "P(Art Tatum) from the performer classifier: " + fixed(*p_styled, 3) + " with the " + model_style +
          ", " + fixed(*p_plain, 3) + " without style (difference " + fixed(*p_styled - *p_plain, 3) + "; " +
          (*p_styled > *p_plain ? "higher with style" : "not higher with style") + ").";
  } else if (classifier.report.contains("skipped")) {
    md += "P(Art Tatum): skipped: " + classifier.report["skipped"].get<std::string>() + ".";
  } else {
    md += "P(Art Tatum): not available (" + classifier.report.dump() + ").";
  }
  if (classifier.report.contains("validation")) {
    const nlohmann::json& v = classifier.report["validation"];
    if (v.is_object()) {
      md += " The classifier (" + classifier.report["performers"].dump() + " performers) scores " +
            fixed(v["accuracy"].get<double>(), 3) + " accuracy (balanced " +
            fixed(v["balanced_accuracy"].get<double>(), 3) + ", chance " +
            fixed(v["chance_accuracy"].get<double>(), 3) + ") on " + v["clips"].dump() + " validation clips" +
            (v.contains("art_tatum_recall")
                 ? ", Art Tatum recall " + fixed(v["art_tatum_recall"].get<double>(), 3)
                 : "") +
            ".";
    } else {
      md += " Classifier validation accuracy " + v.get<std::string>() + ".";
    }
  }
  md += "\n\n";
  if (!map.is_null()) {
    const nlohmann::json& accuracy = map["nearest_centroid_accuracy"];
    md += "Style latents (posterior means) of " + std::to_string(options.map_windows) +
          " validation windows of " + std::to_string(options.map_window_tokens) + " tokens for each of " +
          std::to_string(map["performers"].size()) + " performers: leave-one-out nearest-centroid accuracy " +
          (accuracy.is_null() ? std::string("n/a") : fixed(accuracy.get<double>(), 3)) + " (chance " +
          fixed(map["chance_accuracy"].get<double>(), 3) + ").\n\n";
  }
  md +=
      "## Other metrics\n\nGenerated values (the real row is the reference); histogram overlaps are against "
      "the "
      "real continuation (1 = identical).\n\n" +
      continuation::markdown_secondary_table(summaries) + "\n";
  md += "## Pictures\n\n";
  for (const std::string& picture : pictures) md += "![" + picture + "](" + picture + ")\n\n";
  if (!plot_problem.empty()) md += "Pictures: " + plot_problem + ".\n\n";
  md +=
      "## Files\n\n`midi/clip-NN/`: `context.mid`, and per system the context followed by its continuation "
      "(`real.mid`, `copy.mid`, `model-seedS.mid`, `model_nostyle-seedS.mid`, `markov-seedS.mid`; the "
      "hand-over is at " +
      fixed(options.context_seconds, 0) +
      " s). `scripts/render-audio IN.mid OUT.wav` renders one for listening. All numbers: `report.json`.\n";
  {
    std::ofstream file(out / "report.md");
    file << md;
    std::ofstream json_file(out / "report.json");
    json_file << report.dump(2) << '\n';
    if (!file || !json_file) throw std::runtime_error("cannot write the report into " + out.string());
  }

  nlohmann::json printed = {{"out", out.string()}, {"clips", sources.size()}, {"seeds", options.seeds}};
  for (const auto& [name, system] : systems_json.items()) printed[name] = system["targets"];
  printed["p_art_tatum_styled_minus_unstyled"] = report["p_art_tatum_styled_minus_unstyled"];
  printed["wall_seconds"] = seconds_since(started);
  print_report(printed, options.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  options->checkpoint = bundled_model_path();
  options->cache = (dataset::repo_dir() / "cache/pijama").string();
  CLI::App* cmd = app.add_subcommand(
      "evaluate", "Continuation report: model vs Markov vs copy-the-prompt on validation clips");
  cmd->add_option("--checkpoint", options->checkpoint, "Model checkpoint (.tfc); default: the bundled model")
      ->capture_default_str();
  cmd->add_option("--data", options->data, "PiJAMA folder, for the classifier's validation accuracy")
      ->capture_default_str();
  cmd->add_option("--cache", options->cache,
                  "Token cache (`tatumflow dataset build`): clips, Markov, style map")
      ->capture_default_str();
  cmd->add_option("--out", options->out, "Folder for report.md, report.json, MIDI and pictures")->required();
  cmd->add_option("--performer", options->performer, "Validation clips of this performer (substring)")
      ->capture_default_str();
  cmd->add_option("--transcription", options->transcription, "kong, midi or both")
      ->check(CLI::IsMember({"kong", "midi", "both"}))
      ->capture_default_str();
  cmd->add_option("--clips", options->clips, "Clips, spread evenly over the validation performances")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seeds", options->seeds, "Comma-separated seeds, one run each")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--context-seconds", options->context_seconds, "Context per clip")->capture_default_str();
  cmd->add_option("--continuation-seconds", options->continuation_seconds, "Continuation per clip")
      ->capture_default_str();
  cmd->add_option("--model-context-tokens", options->model_context_tokens,
                  "Context tokens the model sees, cut where time moves (its training window; 0: all)")
      ->capture_default_str();
  cmd->add_option("--context-positions", options->context_positions,
                  "Positions the model may be fed (0: its training window, as recorded in the checkpoint; "
                  "for experiments: later positions were never trained)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option(
      "--style", options->style,
      "Style for the model: a .style file (`tatumflow style encode`) or a MIDI file (default: each "
      "context's posterior)");
  cmd->add_option("--classifier", options->classifier,
                  "Performer classifier (`tatumflow classify train --out`)");
  cmd->add_option("--mode", options->mode, "ar or diffusion")
      ->check(CLI::IsMember({"ar", "diffusion"}))
      ->capture_default_str();
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--chunk-seconds", options->chunk_seconds, "Seconds per generate_chunk call")
      ->capture_default_str();
  cmd->add_option("--temperature", options->temperature, "Model sampling temperature")->capture_default_str();
  cmd->add_option("--guidance", options->guidance,
                  "Classifier-free guidance on the style of the styled model runs (1: off)")
      ->capture_default_str();
  cmd->add_option("--top-k", options->top_k, "Model top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", options->top_p, "Model nucleus probability (1: off)")->capture_default_str();
  cmd->add_option("--steps", options->steps, "Denoising steps per block in diffusion mode")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--markov-order", options->markov_order, "Longest Markov context in tokens")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option(
      "--markov-performer", options->markov_performer,
      "Train the Markov chain on this performer's training files only (default: the whole training split)");
  cmd->add_option("--map-performers", options->map_performers, "Performers in the style-latent map")
      ->capture_default_str();
  cmd->add_option("--map-windows", options->map_windows,
                  "Validation windows per performer in the map (0: no map)")
      ->capture_default_str();
  cmd->add_option("--plot-clips", options->plot_clips, "Clips drawn as piano rolls")->capture_default_str();
  cmd->add_option("--threads", options->threads, "Torch intra-op threads")->capture_default_str();
  cmd->add_option("--feature-threads", options->feature_threads, "Classifier feature threads")
      ->capture_default_str();
  cmd->add_flag("!--no-plots", options->plots, "Do not run scripts/plot-evaluation");
  cmd->add_flag("--json", options->json, "Print the summary as JSON");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
#endif
