// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow eval: token-level numbers on the validation split for the model and
// for the variable-order Markov baseline trained on the same training split.
#include <chrono>
#include <cmath>

#include "command.hpp"
#include "tatumflow/engine/evaluation.hpp"
#include "tatumflow/engine/markov.hpp"
#include "tatumflow/engine/progress.hpp"
#ifdef TATUMFLOW_HAVE_MODEL
#include "tatumflow/engine/model_eval.hpp"
#endif

namespace tatumflow::cli {
namespace {

struct Options {
  std::string checkpoint;
  std::string cache = "cache/pijama";
  std::string performer;
  std::string transcription = "kong";
  std::size_t max_files = 0;
  std::size_t window_tokens = 513;  // the bundled model's training window plus its target
  std::size_t context_tokens = 256;
  std::size_t reference_tokens = 128;  // the bundled model's training reference
  int markov_order = 4;
  bool skip_markov = false;
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

nlohmann::json markov_report(const dataset::TokenCache& cache, const EvalWindows& windows, int order) {
  const auto started = std::chrono::steady_clock::now();
  MarkovModel markov(order);
  const auto sequences = training_sequences(cache);
  {
    ProgressBar progress("markov train", sequences.size(), {.unit = "files"});
    for (const auto& sequence : sequences) {
      markov.train(sequence);
      progress.add();
    }
  }
  const double train_seconds = seconds_since(started);
  const TokenScore result = evaluate(markov, windows.windows, windows.seconds_of_music);
  return {{"order", order},
          {"contexts", markov.contexts()},
          {"tokens", result.tokens},
          {"nll_per_token", result.nll_per_token},
          {"perplexity", result.perplexity},
          {"token_accuracy", result.token_accuracy},
          {"bits_per_second_of_music", result.bits_per_second_of_music},
          {"train_seconds", train_seconds},
          {"eval_seconds", seconds_since(started) - train_seconds}};
}

nlohmann::json model_report(const std::string& checkpoint, const EvalWindows& windows,
                            [[maybe_unused]] std::size_t reference_tokens) {
#ifdef TATUMFLOW_HAVE_MODEL
  const auto started = std::chrono::steady_clock::now();
  const double noise_levels[] = {0.1, 0.5, 0.9};
  const auto result = model::evaluate_checkpoint(checkpoint, windows.windows, windows.seconds_of_music,
                                                 noise_levels, reference_tokens, 1);
  nlohmann::json reconstruction = nlohmann::json::object();
  for (const auto& level : result.reconstruction) {
    reconstruction["noise_" + std::to_string(level.noise_level).substr(0, 3)] = {
        {"token_accuracy", level.token_accuracy}, {"tokens", level.tokens}};
  }
  const auto& ar = result.autoregressive;
  return {{"checkpoint", checkpoint},
          {"trained_steps", result.trained_steps},
          {"parameters", result.parameters},
          {"reference_tokens", reference_tokens},
          {"tokens", ar.tokens},
          {"nll_per_token", ar.nll_per_token},
          {"perplexity", ar.perplexity},
          {"token_accuracy", ar.token_accuracy},
          {"bits_per_second_of_music", ar.bits_per_second_of_music},
          {"diffusion_reconstruction", reconstruction},
          {"eval_seconds", seconds_since(started)}};
#else
  throw std::runtime_error("this tatumflow was built without the model; cannot evaluate " + checkpoint);
#endif
}

void run(const Options& options) {
  const dataset::TokenCache cache = dataset::TokenCache::open(options.cache);
  EvalSelection selection;
  selection.window_tokens = options.window_tokens;
  selection.context_tokens = options.context_tokens;
  selection.max_files = options.max_files;
  selection.performer = options.performer;
  selection.transcription = std::nullopt;
  const auto set = dataset::parse_transcription_set(options.transcription);
  if (set == dataset::TranscriptionSet::kKong) selection.transcription = dataset::Transcription::kKong;
  if (set == dataset::TranscriptionSet::kMidi) selection.transcription = dataset::Transcription::kMidi;
  const EvalWindows windows = validation_windows(cache, selection);
  if (windows.windows.empty()) throw std::runtime_error("no validation performance matches the filters");

  nlohmann::json report = {{"cache", options.cache},
                           {"validation_files", windows.performances},
                           {"windows", windows.windows.size()},
                           {"window_tokens", options.window_tokens},
                           {"context_tokens", options.context_tokens},
                           {"seconds_of_music", windows.seconds_of_music}};
  if (!options.checkpoint.empty())
    report["model"] = model_report(options.checkpoint, windows, options.reference_tokens);
  if (!options.skip_markov) report["markov"] = markov_report(cache, windows, options.markov_order);
  if (report.contains("model") && report.contains("markov")) {
    const double model_nll = report["model"]["nll_per_token"];
    const double markov_nll = report["markov"]["nll_per_token"];
    report["model_nll_below_markov_fraction"] = 1.0 - model_nll / markov_nll;
  }
  print_report(report, options.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Token-level evaluation on the validation split (model and Markov baseline)");
  cmd->add_option("--checkpoint", options->checkpoint,
                  "Model checkpoint (omit to evaluate only the baseline)");
  cmd->add_option("--cache", options->cache, "Token cache built by `tatumflow dataset build`")
      ->capture_default_str();
  cmd->add_option("--performer", options->performer,
                  "Only validation performances by this performer (substring)");
  cmd->add_option("--transcription", options->transcription, "kong, midi or both")->capture_default_str();
  cmd->add_option("--max-files", options->max_files, "At most this many validation performances (0: all)");
  cmd->add_option("--window-tokens", options->window_tokens, "Tokens per window")->capture_default_str();
  cmd->add_option(
         "--context-tokens", options->context_tokens,
         "Overlap of consecutive windows: tokens every scored token after the first window sees at least "
         "(0: consecutive windows)")
      ->capture_default_str();
  cmd->add_option("--reference-tokens", options->reference_tokens,
                  "Condition each window's style and theory on this many tokens before it, as training does "
                  "(0: the null conditions)")
      ->capture_default_str();
  cmd->add_option("--markov-order", options->markov_order, "Longest Markov context")->capture_default_str();
  cmd->add_flag("--no-markov", options->skip_markov, "Skip the Markov baseline");
  cmd->add_flag("--json", options->json, "Print the report as JSON");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
