// SPDX-License-Identifier: GPL-3.0-or-later
// Every generation mode of the `tatumflow` CLI on the bundled model
// (models/tatumflow.tfc): generate (sampled style, and a blend of a .style
// file and a MIDI file's style),
// continue (autoregressive and diffusion), transfer, improvise and both kinds
// of edit. Each takes the sampling options, writes a valid MIDI file with
// every note closed, gives the same bytes for the same seed and other music
// for another seed. The inputs are synthetic pieces written here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../support/bundled_model.hpp"
#include "../../support/cli_run.hpp"
#include "../../support/midi_checks.hpp"
#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/style_file.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Mode {
  const char* name;
  std::string arguments;  // everything but --out, --seed and the sampling options
  // The file a run writes, from its --out (improvise numbers its variations).
  std::string written_suffix;
};

class ModesCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new testing::TempDir("tf-modes-cli");
    write_smf(path("piece.mid"), testing::synthetic_performance(2, 8.0));
    write_smf(path("style-a.mid"), testing::synthetic_performance(5, 8.0));
    write_smf(path("style-b.mid"), testing::synthetic_performance(6, 8.0));
    style::StyleState saved;
    saved.current.mean.fill(0.5f);
    style::save_style_state(path("saved.style"), saved);
  }
  static void TearDownTestSuite() { delete directory_; }

  void SetUp() override {
    if (!fs::exists(testing::cli_path())) GTEST_SKIP() << "no CLI at " << testing::cli_path();
    if (!fs::exists(model())) GTEST_SKIP() << "no bundled model at " << model();
  }

  static std::string path(const std::string& name) { return (directory_->path() / name).string(); }
  static fs::path model() { return testing::bundled_model_path(); }

  // Runs `mode` with seed `seed` into OUT named `tag`; returns the written file.
  static fs::path run(const Mode& mode, int seed, const std::string& tag) {
    const std::string out = path(std::string(mode.name) + "-" + tag + ".mid");
    const std::string arguments = mode.arguments + " --model " + model().string() + " --out " + out +
                                  " --seed " + std::to_string(seed) +
                                  " --temperature 0.9 --top-k 30 --top-p 0.92 --steps 4 --threads 1 --json";
    const testing::CliResult result = testing::run_cli(arguments, directory_->path());
    EXPECT_EQ(result.status, 0) << arguments << "\n" << result.err;
    if (result.status == 0) {
      EXPECT_TRUE(nlohmann::json::parse(result.out).is_object()) << result.out;
    }
    return fs::path(out.substr(0, out.size() - 4) + mode.written_suffix);
  }

  static testing::TempDir* directory_;
};

testing::TempDir* ModesCli::directory_ = nullptr;

TEST_F(ModesCli, EveryModeWritesValidRepeatableMidi) {
  const std::vector<Mode> all = {
      {"generate", "generate --seconds 3", ".mid"},
      {"generate-mix",
       "generate --seconds 3 --style " + path("saved.style") + " --style " + path("style-b.mid") +
           " --mix 0.3",
       ".mid"},
      {"continue-ar", "continue --prompt " + path("piece.mid") + " --seconds 3", ".mid"},
      {"continue-diffusion", "continue --prompt " + path("piece.mid") + " --seconds 3 --mode diffusion",
       ".mid"},
      {"transfer",
       "transfer --content " + path("piece.mid") + " --style " + path("style-a.mid") + " --strength 0.6",
       ".mid"},
      {"improvise", "improvise --base " + path("piece.mid") + " --creativity 0.6 --variations 2", "_2.mid"},
      {"edit-chords", "edit --input " + path("piece.mid") + " --chords Dm7,G7,Cmaj7 --strength 0.7", ".mid"},
      {"edit-component",
       "edit --input " + path("piece.mid") + " --component rhythm --from " + path("style-b.mid"), ".mid"},
  };
  for (const Mode& mode : all) {
    SCOPED_TRACE(mode.name);
    const fs::path first = run(mode, 7, "a");
    const fs::path again = run(mode, 7, "b");
    const fs::path other = run(mode, 8, "c");
    ASSERT_TRUE(fs::exists(first) && fs::exists(again) && fs::exists(other));

    const std::vector<std::uint8_t> bytes = read_bytes(first);
    SmfReadReport repaired;
    const Performance performance = parse_smf(bytes, &repaired);
    EXPECT_FALSE(performance.notes.empty());
    EXPECT_EQ(repaired.unterminated_notes, 0u);
    EXPECT_EQ(testing::closed_notes(bytes), static_cast<int>(performance.notes.size()));

    EXPECT_EQ(read_bytes(again), bytes) << "the same seed gave another file";
    EXPECT_NE(read_bytes(other), bytes) << "another seed gave the same file";
  }
}

TEST_F(ModesCli, BadRequestsFailWithAClearMessage) {
  const std::string out = " --model " + model().string() + " --out " + path("bad.mid");
  const auto fails_with = [&](const std::string& arguments, const std::string& message) {
    SCOPED_TRACE(arguments);
    const testing::CliResult result = testing::run_cli(arguments + out, directory_->path());
    EXPECT_NE(result.status, 0);
    EXPECT_NE(result.err.find(message), std::string::npos) << result.err;
  };
  fails_with("transfer --content " + path("missing.mid") + " --style " + path("style-a.mid"), "missing.mid");
  fails_with("generate --style " + path("style-a.mid") + " --mix 0.3", "--mix blends two styles");
  fails_with("edit --input " + path("piece.mid") + " --chords Dm7,Xq9", "Xq9");
  fails_with("edit --input " + path("piece.mid"), "give --chords, or --component with --from");
  fails_with("improvise --base " + path("piece.mid") + " --creativity 1.5", "--creativity");
  EXPECT_FALSE(fs::exists(path("bad.mid")));
}

}  // namespace
}  // namespace tatumflow
