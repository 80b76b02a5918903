// SPDX-License-Identifier: GPL-3.0-or-later
// `tatumflow style encode` and `style show` on the bundled model
// (models/tatumflow.tfc) and a synthetic token cache: a performer's
// style is the moment-matched mixture of the style encoder's posteriors over
// their windows (one window gives that window's posterior exactly), written
// as a .style file tatumflowd loads; another performer gives another style;
// bad options fail with a message saying what. Also checks the bundled
// models/styles/tatum.style the daemon ships with.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../../support/bundled_model_suite.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/style_file.hpp"

namespace tatumflow {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kWindowTokens = 64;

class StyleCli : public testing::BundledModelCliSuite<4, 12> {
 protected:
  static fs::path path(const std::string& name) { return directory_->path() / name; }
  // `style encode` of `performer` into `out`; extra options appended.
  static testing::CliResult encode(const std::string& performer, const fs::path& out,
                                   const std::string& extra = "") {
    return testing::run_cli("style encode --json --threads 1 --model " + kModel.string() + " --cache " +
                                cache_->string() + " --performer " + performer + " --window-tokens " +
                                std::to_string(kWindowTokens) + " --out " + out.string() + " " + extra,
                            directory_->path());
  }
};

TEST_F(StyleCli, OneWindowIsThatWindowsPosterior) {
  const fs::path out = path("one.style");
  const testing::CliResult result = encode("tatum", out, "--max-windows 1");
  ASSERT_EQ(result.status, 0) << result.err;
  const nlohmann::json report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["windows"], 1);
  EXPECT_EQ(report["tokens"], kWindowTokens);

  // The first train performance of a performer matching "tatum": its first window.
  const dataset::TokenCache cache = dataset::TokenCache::open(*cache_);
  std::optional<std::size_t> first;
  for (std::size_t i = 0; i < cache.performances().size() && !first; ++i) {
    const dataset::CachedPerformance& p = cache.performances()[i];
    if (p.performer == "Art Tatum" && p.split == dataset::Split::kTrain) first = i;
  }
  ASSERT_TRUE(first);
  ASSERT_GE(cache.tokens(*first).size(), kWindowTokens);
  const auto model = model::ModelContext::load(kModel, "cpu");
  const model::StyleLatent posterior = model::encode_style(*model, cache.tokens(*first).first(kWindowTokens));

  const style::StyleState state = style::load_style_state(out);
  for (std::size_t d = 0; d < model::kStyleDim; ++d) {
    EXPECT_NEAR(state.current.mean[d], posterior.mean[d], 1e-5) << "dimension " << d;
    EXPECT_NEAR(state.current.log_variance[d], posterior.log_variance[d], 1e-4) << "dimension " << d;
  }
  EXPECT_EQ(state.mode, style::StyleMode::fixed);
  EXPECT_NE(state.source.find("tatum (1 train windows of 64 tokens, tatumflow.tfc"), std::string::npos)
      << state.source;
}

TEST_F(StyleCli, APerformersStyleSpansTheirWindowsAndShowReadsItBack) {
  const fs::path tatum = path("tatum.style");
  const fs::path other = path("other.style");
  const testing::CliResult a = encode("tatum", tatum);
  ASSERT_EQ(a.status, 0) << a.err;
  const testing::CliResult b = encode("else", other, "--split all");
  ASSERT_EQ(b.status, 0) << b.err;
  const nlohmann::json report = nlohmann::json::parse(a.out);
  EXPECT_GT(report["windows"].get<int>(), 1);
  // The windows' posteriors differ, and the mixture's variance counts that spread.
  EXPECT_GT(report["between_window_sd"].get<double>(), 0.0);
  EXPECT_EQ(report["performances"],
            1);  // of the 4 pieces, 0 and 2 are Tatum's, and 2 is on the validation side

  const style::StyleState mine = style::load_style_state(tatum);
  const style::StyleState theirs = style::load_style_state(other);
  EXPECT_FALSE(style::bitwise_equal(mine.current, theirs.current)) << "two performers, one style";
  for (std::size_t d = 0; d < model::kStyleDim; ++d) {
    EXPECT_TRUE(std::isfinite(mine.current.mean[d]) && std::isfinite(mine.current.log_variance[d])) << d;
  }

  const testing::CliResult show = testing::run_cli("style show --json " + tatum.string(), path(""));
  ASSERT_EQ(show.status, 0) << show.err;
  const nlohmann::json shown = nlohmann::json::parse(show.out);
  EXPECT_EQ(shown["source"], mine.source);
  EXPECT_EQ(shown["mode"], "fixed");
  EXPECT_EQ(shown["slots"], 0);
}

TEST_F(StyleCli, BadOptionsSayWhatIsWrong) {
  const testing::CliResult nobody = encode("nobody", path("nobody.style"));
  EXPECT_EQ(nobody.status, 1);
  EXPECT_NE(nobody.err.find("no train window of a performer matching \"nobody\""), std::string::npos)
      << nobody.err;
  EXPECT_FALSE(fs::exists(path("nobody.style")));
  const testing::CliResult split = encode("tatum", path("split.style"), "--split test");
  EXPECT_EQ(split.status, 1);
  EXPECT_NE(split.err.find("--split must be train, validation or all"), std::string::npos) << split.err;
  const testing::CliResult show = testing::run_cli("style show " + kModel.string(), path(""));
  EXPECT_EQ(show.status, 1);
  EXPECT_NE(show.err.find("not a TatumFlow style file"), std::string::npos) << show.err;
}

TEST_F(StyleCli, TheBundledTatumStyleIsTheBundledModels) {
  const style::StyleState tatum = style::load_style_state(testing::bundled_styles_dir() / "tatum.style");
  EXPECT_EQ(tatum.source.rfind("Art Tatum (", 0), 0u) << tatum.source;
  EXPECT_NE(tatum.source.find("tatumflow.tfc step " +
                              std::to_string(model::ModelContext::load(kModel)->info().trained_steps)),
            std::string::npos)
      << tatum.source
      << ": made from another model than the bundled one; remake it with `tatumflow style encode`";
}

}  // namespace
}  // namespace tatumflow
