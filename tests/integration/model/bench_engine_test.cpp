// SPDX-License-Identifier: GPL-3.0-or-later
// `tatumflow bench engine` end to end on the tiny size, one repeat: the JSON
// report's shape, positive timings, and the honest flag on the 1024-token
// prompt that does not fit the config's 1024 positions.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../../support/cli_run.hpp"
#include "../../support/model_fixtures.hpp"

namespace tatumflow {
namespace {

void expect_stats(const nlohmann::json& stats, const std::string& what) {
  ASSERT_TRUE(stats.is_object()) << what;
  EXPECT_EQ(stats["runs"].size(), 1u) << what;
  EXPECT_GT(stats["median"].get<double>(), 0.0) << what;
  EXPECT_LE(stats["min"].get<double>(), stats["median"].get<double>()) << what;
  EXPECT_GE(stats["p90"].get<double>(), stats["median"].get<double>()) << what;
}

TEST(BenchEngine, TinyReportHasEveryMeasurement) {
  ASSERT_TRUE(std::filesystem::exists(testing::cli_path())) << "build the tatumflow target first";
  testing::TempDir dir("tf-bench-engine");
  const testing::CliResult result =
      testing::run_cli("bench engine --sizes tiny --repeats 1 --threads 1 --json", dir.path());
  ASSERT_EQ(result.status, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);

  EXPECT_EQ(report["machine"]["torch_threads"], 1);
  EXPECT_GE(report["machine"]["cores"].get<int>(), 1);
  EXPECT_TRUE(report["machine"].contains("openblas_num_threads"));
  EXPECT_EQ(report["settings"]["repeats"], 1);

  const auto& tiny = report["sizes"]["tiny"];
  EXPECT_GT(tiny["parameters"].get<std::int64_t>(), 0);
  expect_stats(tiny["forward_ms"], "forward");
  expect_stats(tiny["ddim_step_ms"], "ddim");
  ASSERT_EQ(tiny["autoregressive"].size(), 2u);
  for (const auto& decode : tiny["autoregressive"]) {
    expect_stats(decode["prefill_ms"], "prefill");
    expect_stats(decode["tokens_per_second"], "decode");
    EXPECT_EQ(decode["decode_tokens"], 64);
  }
  EXPECT_EQ(tiny["autoregressive"][0]["prompt_tokens"], 256);
  EXPECT_TRUE(tiny["autoregressive"][0]["fits_config_max_positions"].get<bool>());

  // configs/model/tiny.toml has 1024 positions: 1024 + 64 does not fit, and says so.
  const auto& long_prompt = tiny["autoregressive"][1];
  EXPECT_EQ(long_prompt["prompt_tokens"], 1024);
  EXPECT_EQ(long_prompt["positions_needed"], 1088);
  EXPECT_FALSE(long_prompt["fits_config_max_positions"].get<bool>());
  EXPECT_EQ(tiny["max_positions"]["config"], 1024);
  EXPECT_EQ(tiny["max_positions"]["benchmarked"], 1088);
  ASSERT_EQ(report["warnings"].size(), 1u);
  EXPECT_NE(report["warnings"][0].get<std::string>().find("max_positions 1024"), std::string::npos);
  EXPECT_NE(result.err.find("warning"), std::string::npos);

  // The targets are for the small size only.
  EXPECT_TRUE(report["targets"].empty());
  EXPECT_FALSE(report.contains("pass"));
  EXPECT_EQ(report["reference"]["forward_512_ms"], 277.0);
}

TEST(BenchEngine, UnknownSizeIsAClearError) {
  testing::TempDir dir("tf-bench-engine");
  const testing::CliResult result = testing::run_cli("bench engine --sizes enormous --repeats 1", dir.path());
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("enormous"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace tatumflow
