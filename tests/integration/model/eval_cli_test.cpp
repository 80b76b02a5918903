// SPDX-License-Identifier: GPL-3.0-or-later
// `tatumflow eval` on the bundled model and a synthetic token cache: the model
// and the Markov baseline score the same tokens, overlapping (strided) windows
// score every token once as consecutive ones do, a style taken from the tokens
// before a window changes its score, and a window that leaves
// nothing to score fails with a message that says what.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../../support/bundled_model_suite.hpp"
#include "tatumflow/engine/dataset.hpp"

namespace tatumflow {
namespace {

namespace fs = std::filesystem;

class EvalCli : public testing::BundledModelCliSuite<6, 20> {
 protected:
  static testing::CliResult eval(const std::string& window_options) {
    return testing::run_cli("eval --json --transcription both --checkpoint " + kModel.string() + " --cache " +
                                cache_->string() + " " + window_options,
                            directory_->path());
  }

  // Every validation token after each performance's first.
  static std::int64_t validation_targets() {
    const dataset::TokenCache cache = dataset::TokenCache::open(*cache_);
    std::int64_t targets = 0;
    for (std::size_t i = 0; i < cache.performances().size(); ++i) {
      if (cache.performances()[i].split == dataset::Split::kValidation) {
        targets += static_cast<std::int64_t>(cache.tokens(i).size()) - 1;
      }
    }
    return targets;
  }
};

TEST_F(EvalCli, ModelAndMarkovScoreTheSameTokensOnce) {
  const testing::CliResult consecutive = eval("--window-tokens 129 --context-tokens 0");
  ASSERT_EQ(consecutive.status, 0) << consecutive.err;
  const testing::CliResult strided = eval("--window-tokens 129 --context-tokens 64");
  ASSERT_EQ(strided.status, 0) << strided.err;
  const nlohmann::json a = nlohmann::json::parse(consecutive.out);
  const nlohmann::json b = nlohmann::json::parse(strided.out);

  const std::int64_t targets = validation_targets();
  ASSERT_GT(targets, 300);
  for (const nlohmann::json* report : {&a, &b}) {
    EXPECT_EQ((*report)["model"]["tokens"].get<std::int64_t>(), targets);
    EXPECT_EQ((*report)["markov"]["tokens"].get<std::int64_t>(), targets);
    const double model_nll = (*report)["model"]["nll_per_token"];
    const double markov_nll = (*report)["markov"]["nll_per_token"];
    EXPECT_TRUE(std::isfinite(model_nll) && model_nll > 0.0) << model_nll;
    EXPECT_NEAR((*report)["model_nll_below_markov_fraction"].get<double>(), 1.0 - model_nll / markov_nll,
                1e-9);
    EXPECT_NEAR(std::exp(model_nll), (*report)["model"]["perplexity"].get<double>(),
                1e-6 * std::exp(model_nll));
  }
  // Overlap only adds context: more windows, the same tokens, different scores for the model.
  EXPECT_GT(b["windows"].get<int>(), a["windows"].get<int>());
  EXPECT_NE(a["model"]["nll_per_token"].get<double>(), b["model"]["nll_per_token"].get<double>());
  EXPECT_EQ(b["context_tokens"], 64);
}

// Windows after a performance's first take style and theory from the tokens
// before them: the same tokens scored, scored differently than with none.
TEST_F(EvalCli, StyleFromThePastScoresTheSameTokensDifferently) {
  const testing::CliResult with_past = eval("--window-tokens 129 --context-tokens 64");
  ASSERT_EQ(with_past.status, 0) << with_past.err;
  const testing::CliResult without = eval("--window-tokens 129 --context-tokens 64 --reference-tokens 0");
  ASSERT_EQ(without.status, 0) << without.err;
  const nlohmann::json a = nlohmann::json::parse(with_past.out);
  const nlohmann::json b = nlohmann::json::parse(without.out);
  EXPECT_EQ(a["model"]["reference_tokens"], 128);
  EXPECT_EQ(b["model"]["reference_tokens"], 0);
  EXPECT_EQ(a["model"]["tokens"], b["model"]["tokens"]);
  EXPECT_NE(a["model"]["nll_per_token"].get<double>(), b["model"]["nll_per_token"].get<double>());
  EXPECT_EQ(a["markov"]["nll_per_token"], b["markov"]["nll_per_token"]);
}

TEST_F(EvalCli, ContextFillingTheWindowIsRefused) {
  const testing::CliResult too_much_context = eval("--window-tokens 129 --context-tokens 128");
  EXPECT_NE(too_much_context.status, 0);
  EXPECT_NE(too_much_context.err.find("128 context tokens need windows longer than 129 tokens"),
            std::string::npos)
      << too_much_context.err;
}

}  // namespace
}  // namespace tatumflow
