// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/performer_classifier.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/random.hpp"

namespace tatumflow::classify {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kMs = 1000;
constexpr std::int64_t kSecond = 1'000'000;

// 0: fast, high, loud, staccato runs; 1: slow, low, soft, legato chords.
Performance synthetic_clip(int style, Rng& rng, std::int64_t length_us = 25 * kSecond) {
  Performance p;
  std::int64_t t = 0;
  while (t < length_us) {
    if (style == 0) {
      const auto pitch = static_cast<std::uint8_t>(72 + rng.below(24));
      p.notes.push_back({t, 40 * kMs + static_cast<std::int64_t>(rng.below(30)) * kMs, pitch,
                         static_cast<std::uint8_t>(85 + rng.below(30)), 0});
      t += 90 * kMs + static_cast<std::int64_t>(rng.below(60)) * kMs;
    } else {
      const auto root = static_cast<int>(36 + rng.below(12));
      for (int interval : {0, 7, 16}) {
        p.notes.push_back({t, 900 * kMs + static_cast<std::int64_t>(rng.below(400)) * kMs,
                           static_cast<std::uint8_t>(root + interval),
                           static_cast<std::uint8_t>(35 + rng.below(25)), 0});
      }
      t += 700 * kMs + static_cast<std::int64_t>(rng.below(400)) * kMs;
    }
  }
  p.sort();
  return p;
}

LabelledClips synthetic_set(std::uint64_t seed, std::size_t per_style) {
  Rng rng(seed);
  LabelledClips set;
  for (std::size_t i = 0; i < per_style; ++i) {
    for (std::uint32_t style = 0; style < 2; ++style) {
      const FeatureVector f = clip_features(synthetic_clip(static_cast<int>(style), rng));
      set.features.insert(set.features.end(), f.begin(), f.end());
      set.labels.push_back(style);
    }
  }
  return set;
}

ModelInfo quick_info() {
  ModelInfo info;
  info.transcription = "synthetic";
  info.train.epochs = 15;
  info.train.batch_size = 16;
  info.train.learning_rate = 1e-2;
  return info;
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("tatumflow_classifier_test_" + std::to_string(::getpid()) + "_" + name);
}

class TrainedModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new LabelledClips(synthetic_set(1, 30));
    test_ = new LabelledClips(synthetic_set(2, 20));
    model_ =
        new PerformerClassifier(PerformerClassifier::train(*train_, {"Staccato", "Legato"}, quick_info()));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete test_;
    delete train_;
  }
  static LabelledClips* train_;
  static LabelledClips* test_;
  static PerformerClassifier* model_;
};
LabelledClips* TrainedModel::train_ = nullptr;
LabelledClips* TrainedModel::test_ = nullptr;
PerformerClassifier* TrainedModel::model_ = nullptr;

TEST(ClipFeatures, HasTheDocumentedSizeAndTokenStatistics) {
  Rng rng(5);
  const FeatureVector fast = clip_features(synthetic_clip(0, rng));
  const FeatureVector slow = clip_features(synthetic_clip(1, rng));
  const std::size_t stats = kFeatureSize - kTokenStatCount;
  EXPECT_GT(fast[stats + 0], slow[stats + 0]);  // more tokens per second
  EXPECT_GT(slow[stats + 3], fast[stats + 3]);  // longer durations
  EXPECT_GT(slow[stats + 5], 0.5F);             // two of three chord notes share an onset
  EXPECT_EQ(fast[stats + 5], 0.0F);
}

TEST(CutClips, CutsFromTheFirstOnsetAndCarriesThePedal) {
  Performance p;
  for (int i = 0; i < 60; ++i) p.notes.push_back({5 * kSecond + i * kSecond, 1500 * kMs, 60, 80, 0});
  p.pedals = {{20 * kSecond, true, 0}, {40 * kSecond, false, 0}};
  p.sort();
  // Music from 5 s to 65.5 s: clips of 25, 25 and 10.5 s.
  const std::vector<Performance> clips = cut_clips(p, 25 * kSecond, 10 * kSecond);
  ASSERT_EQ(clips.size(), 3U);
  EXPECT_EQ(clips[0].notes.size(), 25U);
  EXPECT_EQ(clips[0].notes.front().onset_us, 0);
  EXPECT_EQ(clips[0].notes.back().duration_us, kSecond);  // cut at the clip's end
  EXPECT_EQ(clips[0].length_us, 25 * kSecond);
  ASSERT_EQ(clips[1].pedals.size(), 2U);  // down from the start, up at 40 - 30 s
  EXPECT_EQ(clips[1].pedals[0], (PedalChange{0, true, 0}));
  EXPECT_EQ(clips[1].pedals[1], (PedalChange{10 * kSecond, false, 0}));
  EXPECT_EQ(clips[2].length_us, 10500 * kMs);
  // With a 15 s minimum the 10.5 s tail is dropped; a short phrase is one clip.
  EXPECT_EQ(cut_clips(p, 25 * kSecond, 15 * kSecond).size(), 2U);
  Performance phrase;
  phrase.notes = {{kSecond, 500 * kMs, 60, 80, 0}, {2 * kSecond, 500 * kMs, 62, 80, 0}};
  phrase.sort();
  const std::vector<Performance> one = cut_clips(phrase, 25 * kSecond, 10 * kSecond);
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0].notes.size(), 2U);
  EXPECT_TRUE(cut_clips(Performance{}, 25 * kSecond, 10 * kSecond).empty());
  EXPECT_THROW((void)cut_clips(p, 10 * kSecond, 20 * kSecond), std::invalid_argument);
}

TEST_F(TrainedModel, SeparatesTwoSyntheticPerformers) {
  const Evaluation e = evaluate(*model_, *test_);
  EXPECT_EQ(e.clips, 40U);
  EXPECT_GE(e.accuracy, 0.95);
  EXPECT_EQ(e.top3_accuracy, 1.0);  // two classes
  EXPECT_GE(e.balanced_accuracy, 0.95);
  EXPECT_LT(e.log_loss, 0.2);
  ASSERT_TRUE(e.recall[0] && e.recall[1]);
  EXPECT_EQ(e.confusion[0][0] + e.confusion[0][1], 20U);
  EXPECT_EQ(model_->info().train_clips, 60U);
  EXPECT_LT(model_->info().final_train_loss, 0.2);
  EXPECT_EQ(model_->performer_index("Legato"), 1U);
  EXPECT_FALSE(model_->performer_index("Art Tatum").has_value());
}

TEST_F(TrainedModel, WholePerformancesAverageTheirClips) {
  Rng rng(9);
  std::size_t clips = 0;
  const auto p = model_->performance_probabilities(synthetic_clip(1, rng, 60 * kSecond), &clips);
  ASSERT_TRUE(p);
  EXPECT_EQ(clips, 3U);
  EXPECT_GT((*p)[1], 0.9);
  EXPECT_NEAR((*p)[0] + (*p)[1], 1.0, 1e-9);
  EXPECT_FALSE(model_->performance_probabilities(Performance{}).has_value());
}

TEST_F(TrainedModel, TrainingIsDeterministicForASeed) {
  const PerformerClassifier again = PerformerClassifier::train(*train_, {"Staccato", "Legato"}, quick_info());
  const std::span<const float> clip(test_->features.data(), kFeatureSize);
  EXPECT_EQ(again.probabilities(clip), model_->probabilities(clip));
}

TEST_F(TrainedModel, SaveLoadRoundTrip) {
  const fs::path path = temp_file("round_trip.bin");
  model_->save(path);
  const PerformerClassifier loaded = PerformerClassifier::load(path);
  fs::remove(path);
  EXPECT_EQ(loaded.performers(), model_->performers());
  EXPECT_EQ(loaded.info().transcription, "synthetic");
  EXPECT_EQ(loaded.info().clip_us, model_->info().clip_us);
  EXPECT_EQ(loaded.info().train.epochs, 15);
  EXPECT_EQ(loaded.info().final_train_loss, model_->info().final_train_loss);
  for (std::size_t i = 0; i < test_->size(); ++i) {
    const std::span<const float> clip(test_->features.data() + i * kFeatureSize, kFeatureSize);
    EXPECT_EQ(loaded.probabilities(clip), model_->probabilities(clip));
  }
}

std::string load_error(const fs::path& path) {
  try {
    (void)PerformerClassifier::load(path);
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "no error";
}

TEST_F(TrainedModel, CorruptFilesGiveClearErrors) {
  const fs::path path = temp_file("corrupt.bin");
  model_->save(path);
  std::vector<char> bytes(fs::file_size(path));
  std::ifstream(path, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto write = [&](const std::vector<char>& content) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(content.data(), static_cast<std::streamsize>(content.size()));
  };

  std::vector<char> flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x10);
  write(flipped);
  EXPECT_NE(load_error(path).find("checksum mismatch"), std::string::npos) << load_error(path);

  write(std::vector<char>(bytes.begin(), bytes.begin() + 100));
  EXPECT_NE(load_error(path).find("checksum mismatch"), std::string::npos) << load_error(path);

  write(std::vector<char>(bytes.begin(), bytes.begin() + 10));
  EXPECT_NE(load_error(path).find("truncated"), std::string::npos) << load_error(path);

  std::vector<char> future = bytes;
  future[8] = 99;  // the format version follows the 8-byte magic
  write(future);
  EXPECT_NE(load_error(path).find("format version 99, this build reads version 1"), std::string::npos)
      << load_error(path);

  write({'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0});
  EXPECT_NE(load_error(path).find("not a TatumFlow performer classifier"), std::string::npos)
      << load_error(path);

  fs::remove(path);
  EXPECT_NE(load_error(path).find("cannot open"), std::string::npos) << load_error(path);
  EXPECT_NE(load_error(path).find(path.string()), std::string::npos);
}

TEST(PerformerClassifier, RejectsBadTrainingInput) {
  LabelledClips one = synthetic_set(3, 2);
  EXPECT_THROW((void)PerformerClassifier::train(one, {"Only"}, quick_info()), std::invalid_argument);
  LabelledClips bad_label = one;
  bad_label.labels[0] = 7;
  EXPECT_THROW((void)PerformerClassifier::train(bad_label, {"A", "B"}, quick_info()), std::invalid_argument);
  LabelledClips short_features = one;
  short_features.features.pop_back();
  EXPECT_THROW((void)PerformerClassifier::train(short_features, {"A", "B"}, quick_info()),
               std::invalid_argument);
  LabelledClips nan = one;
  nan.features[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW((void)PerformerClassifier::train(nan, {"A", "B"}, quick_info()), std::invalid_argument);
  ModelInfo no_epochs = quick_info();
  no_epochs.train.epochs = 0;
  EXPECT_THROW((void)PerformerClassifier::train(one, {"A", "B"}, no_epochs), std::invalid_argument);
}

// The split helpers on a hand-made corpus: minutes count only train clips.
TEST(PerformerClassifier, SelectsPerformersByTrainMinutesAndClipsBySplit) {
  std::vector<dataset::CorpusEntry> entries(3);
  entries[0].performer = "A";
  entries[1].performer = "B";
  entries[2].performer = "B";
  entries[2].split = dataset::Split::kValidation;
  ClipSet clips;
  auto add = [&](std::uint32_t entry, float seconds) {
    clips.features.insert(clips.features.end(), kFeatureSize, static_cast<float>(entry));
    clips.entry.push_back(entry);
    clips.seconds.push_back(seconds);
  };
  add(0, 600);
  add(0, 700);   // A: 21:40 of train
  add(1, 600);   // B: 10 min of train
  add(2, 6000);  // ... and 100 min of validation
  EXPECT_EQ(performers_with_train_minutes(clips, entries, 20), std::vector<std::string>{"A"});
  EXPECT_EQ(performers_with_train_minutes(clips, entries, 10), (std::vector<std::string>{"A", "B"}));
  const LabelledClips validation = select_clips(clips, entries, {"A", "B"}, dataset::Split::kValidation);
  ASSERT_EQ(validation.size(), 1U);
  EXPECT_EQ(validation.labels[0], 1U);
  EXPECT_EQ(validation.features[0], 2.0F);
  EXPECT_EQ(select_clips(clips, entries, {"B"}, dataset::Split::kTrain).size(), 1U);
}

}  // namespace
}  // namespace tatumflow::classify
