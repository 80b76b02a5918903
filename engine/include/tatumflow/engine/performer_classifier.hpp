// SPDX-License-Identifier: GPL-3.0-or-later
// Who is playing? A multinomial logistic regression (softmax) over one feature
// vector per clip: the theory features (harmony, melody, rhythm, dynamics)
// followed by a few token statistics, standardised with the training clips'
// mean and std. It scores how much a generated phrase sounds like Art Tatum
// (DESIGN.md section 4) and needs no torch.
//
// Clips: consecutive windows of clip_us from a performance's first onset; the
// notes starting in a window, moved to start at 0, cut at the window's end, the
// pedal as it stands at the window's start. A window shorter than min_clip_us
// (the last one) or without notes is dropped; a performance shorter than
// min_clip_us still gives one clip (for predict on short phrases).
//
// Training: minibatch Adam on the class-weighted cross-entropy (weights
// N / (K n_c) when balancing, so every performer counts the same) plus
// (l2 / 2) |W|^2, learning rate on a cosine decay to 0. Deterministic for a
// seed: one thread, fixed shuffles from Rng.
//
// Everything allocates; any non-real-time thread. A const classifier may be
// used from several threads at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/theory_features.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow {
class ProgressBar;
}

namespace tatumflow::classify {

inline constexpr std::uint32_t kModelFormatVersion = 1;

// Token statistics appended to the theory features, from tokens::encode(clip):
//   0: log2(1 + tokens per second)
//   1: VELOCITY tokens per NOTE_ON (how often the dynamics change)
//   2: log2(1 + SUSTAIN_ON/OFF tokens per second)
//   3: mean log2(DURATION steps)
//   4: mean log2(TIME_SHIFT steps)
//   5: share of NOTE_ONs with no time move since the previous note (chord notes)
inline constexpr std::size_t kTokenStatCount = 6;
inline constexpr std::size_t kFeatureSize =
    kHarmonySize + kMelodySize + kRhythmSize + kDynamicsSize + kTokenStatCount;

using FeatureVector = std::array<float, kFeatureSize>;

inline constexpr std::int64_t kDefaultClipUs = 25'000'000;
inline constexpr std::int64_t kDefaultMinClipUs = 10'000'000;

// Throws std::invalid_argument for a note out of range (see theory_features.hpp).
[[nodiscard]] FeatureVector clip_features(const Performance& clip);  // any thread

// Throws std::invalid_argument when clip_us <= 0 or min_clip_us is not in (0, clip_us].
// any thread
[[nodiscard]] std::vector<Performance> cut_clips(const Performance& performance, std::int64_t clip_us,
                                                 std::int64_t min_clip_us);

// Clips of many corpus files, in entry order.
struct ClipSet {
  std::vector<float> features;       // kFeatureSize per clip, row after row
  std::vector<std::uint32_t> entry;  // index into the entries the set was built from
  std::vector<float> seconds;        // length of each clip
  [[nodiscard]] std::size_t size() const { return entry.size(); }
};

struct ExtractOptions {
  std::filesystem::path data_dir;  // CorpusEntry::path is relative to it
  std::int64_t clip_us = kDefaultClipUs;
  std::int64_t min_clip_us = kDefaultMinClipUs;
  unsigned threads = 0;  // 0: std::thread::hardware_concurrency()
};

// Reads, cuts and featurises every entry on `threads` workers; the result does
// not depend on the thread count. Files that fail to parse (SmfError) are
// appended to `failed` and skipped. `progress`, if given, gets one add() per file.
// Any thread; it starts its own workers.
[[nodiscard]] ClipSet extract_corpus_clips(const std::vector<dataset::CorpusEntry>& entries,
                                           const ExtractOptions& options,
                                           std::vector<dataset::FailedFile>& failed,
                                           ProgressBar* progress = nullptr);

// Performers with at least min_minutes of clips in the train split, by name. // any thread
[[nodiscard]] std::vector<std::string> performers_with_train_minutes(
    const ClipSet& clips, const std::vector<dataset::CorpusEntry>& entries, double min_minutes);

struct LabelledClips {
  std::vector<float> features;        // kFeatureSize per clip
  std::vector<std::uint32_t> labels;  // index into the performer list
  [[nodiscard]] std::size_t size() const { return labels.size(); }
};

// The clips of `split` played by one of `performers`, labelled by position in
// that list. // any thread
[[nodiscard]] LabelledClips select_clips(const ClipSet& clips,
                                         const std::vector<dataset::CorpusEntry>& entries,
                                         const std::vector<std::string>& performers, dataset::Split split);

struct TrainOptions {
  int epochs = 40;
  std::size_t batch_size = 128;
  double learning_rate = 3e-3;
  double l2 = 1e-4;
  std::uint64_t seed = 1;
  bool balance_classes = true;
};

// How the model was made; saved with it so eval and predict cut clips the same way.
struct ModelInfo {
  std::int64_t clip_us = kDefaultClipUs;
  std::int64_t min_clip_us = kDefaultMinClipUs;
  std::string transcription;  // corpus transcription set, e.g. "kong"
  double validation_fraction = 0.1;
  double min_train_minutes = 0;
  TrainOptions train;
  std::uint64_t train_clips = 0;
  double final_train_loss = 0;  // weighted cross-entropy of the last epoch, nats
};

// A bad, truncated or corrupt model file, or one from another format version;
// the message names the file and what is wrong.
class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PerformerClassifier {
 public:
  // Throws std::invalid_argument for fewer than 2 performers, no clips, a
  // label out of range, features of the wrong size, a non-finite feature or
  // bad options (epochs or batch size < 1, learning rate <= 0, l2 < 0). // any thread
  [[nodiscard]] static PerformerClassifier train(const LabelledClips& clips,
                                                 std::vector<std::string> performers, ModelInfo info);

  // P(performer) for one clip's features, in performers() order. Throws
  // std::invalid_argument for features of the wrong size. // any thread
  [[nodiscard]] std::vector<double> probabilities(std::span<const float> features) const;
  // Mean of probabilities() over the clips of a whole performance (cut as the
  // model was trained); empty when the performance has no notes. // any thread
  [[nodiscard]] std::optional<std::vector<double>> performance_probabilities(
      const Performance& performance, std::size_t* clip_count = nullptr) const;

  [[nodiscard]] const std::vector<std::string>& performers() const { return performers_; }  // any thread
  [[nodiscard]] std::optional<std::size_t> performer_index(std::string_view name) const;    // any thread
  [[nodiscard]] const ModelInfo& info() const { return info_; }                             // any thread

  // save throws ModelFileError when the file cannot be written; load when it
  // cannot be read or fails the checks above. // any thread
  void save(const std::filesystem::path& path) const;
  [[nodiscard]] static PerformerClassifier load(const std::filesystem::path& path);

 private:
  PerformerClassifier() = default;
  void logits(std::span<const float> standardised, std::vector<double>& out) const;

  std::vector<std::string> performers_;
  ModelInfo info_;
  std::vector<double> mean_;     // kFeatureSize
  std::vector<double> inv_std_;  // kFeatureSize, 1 / std (1 where std is ~0)
  std::vector<float> weights_;   // kFeatureSize x classes, class index fastest
  std::vector<float> bias_;      // classes
};

struct Evaluation {
  std::size_t clips = 0;
  double accuracy = 0;
  double top3_accuracy = 0;
  double balanced_accuracy = 0;  // mean recall over performers with clips
  double log_loss = 0;           // mean cross-entropy, nats
  std::vector<std::size_t> clips_per_performer;
  std::vector<std::optional<double>> recall;          // empty where a performer has no clips
  std::vector<std::vector<std::uint32_t>> confusion;  // [true][predicted]
};

// Throws std::invalid_argument for a label out of range or features of the wrong
// size. // any thread
[[nodiscard]] Evaluation evaluate(const PerformerClassifier& model, const LabelledClips& clips);

}  // namespace tatumflow::classify
