// SPDX-License-Identifier: GPL-3.0-or-later
// `tatumflow evaluate` end to end with the bundled model, in bounded time:
//  - on a synthetic corpus made here (no data needed, so it always runs): two
//    "Art Tatum" validation clips, one seed;
//  - on a CI-sized subset of PiJAMA: 2 Art Tatum validation clips, one seed, a
//    Markov chain trained on Art Tatum only and a small style map. Needs the
//    PiJAMA folder (skips without it) and builds the token cache when the
//    checkout has none.
// Both use a two-performer classifier trained on random features: enough to
// run the P(Art Tatum) column and the classifier's validation pass in seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "../../support/bundled_model.hpp"
#include "../../support/cli_run.hpp"
#include "../../support/midi_checks.hpp"
#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/performer_classifier.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path write_classifier(const fs::path& dir, const std::string& transcription, const std::string& other) {
  classify::LabelledClips clips;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (std::uint32_t i = 0; i < 64; ++i) {
    for (std::size_t k = 0; k < classify::kFeatureSize; ++k) clips.features.push_back(normal(rng));
    clips.labels.push_back(i % 2);
  }
  classify::ModelInfo info;
  info.transcription = transcription;
  info.validation_fraction = 0.5;  // the synthetic corpus has a dozen albums: hold out enough of them
  info.train.epochs = 2;
  const fs::path path = dir / "classifier.tfpc";
  classify::PerformerClassifier::train(clips, {"Art Tatum", other}, info).save(path);
  return path;
}

bool in_unit_interval(const nlohmann::json& value) {
  return value.is_number() && value.get<double>() >= -1e-9 && value.get<double>() <= 1.0 + 1e-9;
}

struct Expected {
  std::size_t clips = 2;
  std::size_t map_performers = 2;
  int markov_files = 1;
};

// Runs `tatumflow evaluate ARGUMENTS --out DIR/report --clips 2 --seeds 5 ...`
// and checks everything the report must hold.
void run_and_check(const fs::path& dir, const std::string& arguments, const Expected& expected) {
  const fs::path out = dir / "report";
  const testing::CliResult result = testing::run_cli(
      "evaluate --checkpoint " + testing::bundled_model_path().string() + " --out " + out.string() +
          " --clips 2 --seeds 5 --markov-performer Art\\ Tatum --threads 1 --json " + arguments,
      dir);
  ASSERT_EQ(result.status, 0) << result.err;

  const nlohmann::json report = nlohmann::json::parse(read_text(out / "report.json"));
  EXPECT_EQ(report["clips"], expected.clips);
  EXPECT_EQ(report["seeds"], nlohmann::json::array({5}));
  EXPECT_EQ(report["clip_list"].size(), expected.clips);
  EXPECT_EQ(report["markov"]["training_performer"], "Art Tatum");
  EXPECT_GE(report["markov"]["training_files"].get<int>(), expected.markov_files);

  const nlohmann::json& systems = report["systems"];
  for (const char* name : {"real", "model", "model_nostyle", "markov", "copy"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(systems.contains(name));
    const nlohmann::json& metrics = systems[name]["metrics"];
    EXPECT_EQ(systems[name]["continuations"], expected.clips);
    EXPECT_GE(metrics["pitch_class_kl"]["mean"].get<double>(), 0.0);
    EXPECT_TRUE(std::isfinite(metrics["pitch_class_kl"]["mean"].get<double>()));
    EXPECT_TRUE(in_unit_interval(metrics["pctm_cosine"]["mean"]));
    EXPECT_TRUE(in_unit_interval(metrics["p_art_tatum"]["mean"]));
    EXPECT_TRUE(metrics.contains("note_density_gap"));
    EXPECT_TRUE(metrics.contains("ioi_histogram_overlap"));
    EXPECT_EQ(metrics["pitch_class_kl"]["per_seed"].size(), 1u);
    if (std::string(name) != "real") {
      for (const char* target :
           {"pitch_class_kl", "pctm_cosine", "note_density_gap", "copy_rate_generated"}) {
        const nlohmann::json& check = systems[name]["targets"][target];
        ASSERT_TRUE(check["pass"].is_boolean()) << target;
        EXPECT_EQ(check["pass"].get<bool>(), check["shortfall"].get<double>() == 0.0) << target;
      }
    }
  }
  // The real continuation against itself, and the copy baseline against its prompt.
  EXPECT_NEAR(systems["real"]["metrics"]["pitch_class_kl"]["mean"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(systems["real"]["metrics"]["pctm_cosine"]["mean"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(systems["real"]["metrics"]["note_density_gap"]["mean"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(systems["copy"]["metrics"]["copy_rate_generated"]["mean"].get<double>(), 1.0, 1e-9);
  EXPECT_GT(systems["model"]["metrics"]["note_density_generated"]["mean"].get<double>(), 0.0);

  const nlohmann::json& classifier = report["classifier"];
  EXPECT_EQ(classifier["performers"], 2);
  ASSERT_TRUE(classifier["validation"].is_object()) << classifier.dump();
  EXPECT_TRUE(in_unit_interval(classifier["validation"]["accuracy"]));
  EXPECT_GT(classifier["validation"]["clips"].get<int>(), 0);
  EXPECT_TRUE(report["p_art_tatum_styled_minus_unstyled"].is_number());

  const nlohmann::json& map = report["style_map"];
  // The largest performers, and the evaluated one even when it is not among them.
  EXPECT_GE(map["performers"].size(), expected.map_performers);
  EXPECT_NE(std::find(map["performers"].begin(), map["performers"].end(), "Art Tatum"),
            map["performers"].end());
  EXPECT_TRUE(in_unit_interval(map["nearest_centroid_accuracy"]));

  const std::string md = read_text(out / "report.md");
  for (const char* part : {"| system |", "PC-KL ↓ (≤0.30)", "PCTM cosine ↑ (≥0.55)", "copy rate ↓ (≤0.10)",
                           "Markov, order 4 tokens", "P(Art Tatum)", "nearest-centroid accuracy",
                           "The classifier (2 performers) scores"}) {
    EXPECT_NE(md.find(part), std::string::npos) << part << " missing from\n" << md;
  }
  EXPECT_TRUE(md.find("short by") != std::string::npos || md.find("— pass") != std::string::npos);

  for (const char* file : {"context.mid", "real.mid", "copy.mid", "model-seed5.mid",
                           "model_nostyle-seed5.mid", "markov-seed5.mid"}) {
    const fs::path path = out / "midi" / "clip-01" / file;
    ASSERT_TRUE(fs::exists(path)) << path;
    const std::vector<std::uint8_t> bytes = read_bytes(path);
    const Performance performance = parse_smf(bytes);
    EXPECT_FALSE(performance.notes.empty()) << path;
    EXPECT_EQ(testing::closed_notes(bytes), static_cast<int>(performance.notes.size())) << path;
  }
  // Pictures when python3 and matplotlib are there; otherwise the report says why not.
  if (report["pictures"].empty()) {
    EXPECT_TRUE(report["pictures_problem"].is_string());
  } else {
    for (const auto& picture : report["pictures"])
      EXPECT_GT(fs::file_size(out / picture.get<std::string>()), 1000u);
  }
  const nlohmann::json printed = nlohmann::json::parse(result.out);
  EXPECT_EQ(printed["clips"], expected.clips);
  EXPECT_TRUE(printed["model"].contains("pitch_class_kl"));
}

class Evaluate : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::cli_path())) GTEST_SKIP() << "build the tatumflow target first";
  }
};

TEST_F(Evaluate, SyntheticCorpusWritesTheReport) {
  testing::TempDir dir("tf-evaluate-synthetic");
  // 12 pieces of 40 s: "Art Tatum" on the even ones, every third on the
  // validation side, so pieces 2 and 8 give one 30 s clip each.
  const fs::path cache = testing::build_synthetic_cache(dir.path(), 12);
  run_and_check(dir.path(),
                "--cache " + cache.string() + " --data " + (dir.path() / "data").string() +
                    " --transcription midi --map-performers 3 --map-windows 4 --classifier " +
                    write_classifier(dir.path(), "midi", "Someone Else").string(),
                {.clips = 2, .map_performers = 2, .markov_files = 4});
}

TEST_F(Evaluate, PijamaSubsetWritesTheReport) {
  const fs::path root = TATUMFLOW_SOURCE_DIR;
  const char* data_env = std::getenv("TATUMFLOW_DATA");
  const fs::path data =
      data_env != nullptr ? fs::path(data_env) : root.parent_path() / "shared" / "data" / "pijama";
  if (!fs::is_directory(data)) GTEST_SKIP() << "no PiJAMA folder at " << data;
  testing::TempDir dir("tf-evaluate");
  // A fresh checkout (CI) has no token cache yet; building one takes seconds.
  fs::path cache = root / "cache" / "pijama";
  if (!fs::exists(cache / "index.bin")) {
    cache = dir.path() / "cache";
    const testing::CliResult built =
        testing::run_cli("dataset build --data " + data.string() + " --out " + cache.string(), dir.path());
    ASSERT_EQ(built.status, 0) << built.err;
  }
  run_and_check(dir.path(),
                "--cache " + cache.string() + " --data " + data.string() +
                    " --map-performers 3 --map-windows 4 --classifier " +
                    write_classifier(dir.path(), "kong", "Bill Evans").string(),
                {.clips = 2, .map_performers = 3, .markov_files = 10});
}

}  // namespace
}  // namespace tatumflow
