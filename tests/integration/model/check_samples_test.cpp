// SPDX-License-Identifier: GPL-3.0-or-later
// `tatumflow check-samples` end to end on a small random model and a synthetic
// corpus: every sample is written, read back and counted, the report has the
// documented shape, and the exit status follows the pass flag.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../../support/cli_run.hpp"
#include "../../support/model_fixtures.hpp"
#include "model/checkpoint.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::model {
namespace {

namespace fs = std::filesystem;

class CheckSamplesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new testing::TempDir("tf-check-samples");
    model_ = directory_->path() / "model.tfc";
    torch::manual_seed(3);
    TatumFlowNet net(testing::tiny_model_config());
    {
      torch::NoGradGuard no_grad;
      for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.1);
    }
    write_checkpoint(model_, {"model", 1, testing::tiny_model_config()},
                     [&](auto& archive) { write_tensors(archive, "model", net->named_parameters()); });
    cache_ = testing::build_synthetic_cache(directory_->path(), 4, 20.0);
  }
  static void TearDownTestSuite() { delete directory_; }

  void SetUp() override {
    ASSERT_TRUE(fs::exists(testing::cli_path())) << "build the tatumflow target first";
  }

  static testing::TempDir* directory_;
  static fs::path model_;
  static fs::path cache_;
};

testing::TempDir* CheckSamplesTest::directory_ = nullptr;
fs::path CheckSamplesTest::model_;
fs::path CheckSamplesTest::cache_;

TEST_F(CheckSamplesTest, WritesReadsAndCountsEverySample) {
  const fs::path out = directory_->path() / "samples";
  const testing::CliResult result =
      testing::run_cli("check-samples --json --threads 1 --count 3 --seconds 4 --model " + model_.string() +
                           " --data " + cache_.string() + " --out " + out.string(),
                       directory_->path());
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["count"], 3);
  EXPECT_EQ(report["valid"], 3);
  EXPECT_EQ(report["hanging_notes"], 0);
  EXPECT_EQ(report["samples_with_hanging_notes"], 0);
  EXPECT_EQ(report["mode"], "autoregressive");
  EXPECT_EQ(report["seeds"], nlohmann::json::array({1, 3}));
  EXPECT_EQ(report["corpus"]["kind"], "token cache, training split");
  EXPECT_EQ(report["corpus"]["performances"], 3);  // 4 pieces, the third is validation
  EXPECT_GT(report["corpus"]["clips"].get<int>(), 0);
  EXPECT_EQ(report["corpus"]["percentiles"], nlohmann::json::array({5.0, 95.0}));
  for (const char* statistic : {"pitch_range", "notes_per_second"}) {
    const auto& summary = report[statistic];
    ASSERT_EQ(summary["band"].size(), 2u) << statistic;
    EXPECT_LE(summary["band"][0].get<double>(), summary["band"][1].get<double>()) << statistic;
    EXPECT_GE(summary["inside_share"].get<double>(), 0.0);
    EXPECT_LE(summary["inside_share"].get<double>(), 1.0);
    EXPECT_TRUE(summary["median_inside"].is_boolean());
  }
  ASSERT_EQ(report["samples"].size(), 3u);
  for (const auto& sample : report["samples"]) {
    const fs::path file = sample["file"].get<std::string>();
    ASSERT_TRUE(fs::exists(file)) << file;
    EXPECT_EQ(file.parent_path(), out);
    EXPECT_TRUE(sample["valid"].get<bool>());
    EXPECT_EQ(read_smf(file).notes.size(), sample["notes"].get<std::size_t>());
    EXPECT_GE(sample["generated_seconds"].get<double>(), 4.0);
  }
  const bool pass = report["pass"].get<bool>();
  EXPECT_EQ(result.status, pass ? 0 : 1) << result.err;
  if (!pass) {
    EXPECT_NE(result.err.find("check-samples failed"), std::string::npos) << result.err;
  }
}

TEST_F(CheckSamplesTest, ComparesWithAMidiFolderInDiffusionMode) {
  const testing::CliResult result = testing::run_cli(
      "check-samples --json --threads 1 --count 1 --seconds 4 --mode diffusion --steps 2 --no-style --seed 7 "
      "--model " +
          model_.string() + " --data " + (directory_->path() / "data").string(),
      directory_->path());
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["mode"], "diffusion");
  EXPECT_EQ(report["style"], "none");
  EXPECT_EQ(report["seeds"], nlohmann::json::array({7, 7}));
  EXPECT_EQ(report["corpus"]["kind"], "MIDI folder");
  EXPECT_EQ(report["corpus"]["performances"], 4);  // the folder has no split: every file
  EXPECT_EQ(report["valid"], 1);
  EXPECT_EQ(report["out"], "(temporary, removed)");
  EXPECT_FALSE(fs::exists(report["samples"][0]["file"].get<std::string>()));
  EXPECT_EQ(result.status, report["pass"].get<bool>() ? 0 : 1) << result.err;
}

TEST_F(CheckSamplesTest, MissingCorpusIsAClearError) {
  const fs::path missing = directory_->path() / "no-such-corpus";
  const testing::CliResult result =
      testing::run_cli("check-samples --count 1 --model " + model_.string() + " --data " + missing.string(),
                       directory_->path());
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("no-such-corpus: not a folder"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace tatumflow::model
