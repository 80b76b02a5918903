// SPDX-License-Identifier: GPL-3.0-or-later
// Shared fixtures for the torch tests: a tiny model config, a synthetic token
// cache built from generated MIDI files, and a train config for it. Everything
// is made in-process in a temporary folder; no PiJAMA data needed.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/protocol/performance.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::testing {

inline model::ModelConfig tiny_model_config() {
  model::ModelConfig config;
  config.name = "test";
  config.hidden = 32;
  config.latent = 16;
  config.layers = 2;
  config.heads = 4;
  config.mlp_ratio = 2;
  config.max_positions = 160;
  config.scales = {1, 2, 4};
  config.style_hidden = 16;
  config.theory_component = 16;
  config.theory_dim = 32;
  config.diffusion_steps = 100;
  return config;
}

// A fresh folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() /
            (name + "-" + std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A learnable piece: a scale figure over a fixed chord pattern, with the key
// and tempo set by `variant`.
inline Performance synthetic_performance(int variant, double seconds) {
  Performance performance;
  const std::int64_t beat_us = 300'000 + 20'000 * (variant % 5);
  const int root = 48 + variant % 7;
  static constexpr int kScale[] = {0, 2, 4, 5, 7, 9, 11, 12};
  const auto beats = static_cast<std::int64_t>(seconds * 1e6) / beat_us;
  for (std::int64_t beat = 0; beat < beats; ++beat) {
    const std::int64_t onset = beat * beat_us;
    if (beat % 4 == 0) {
      for (int interval : {0, 4, 7}) {
        performance.notes.push_back({onset, 4 * beat_us, static_cast<std::uint8_t>(root + interval), 60, 0});
      }
    }
    const int degree = kScale[beat % 8];
    performance.notes.push_back({onset, beat_us / 2, static_cast<std::uint8_t>(root + 12 + degree),
                                 static_cast<std::uint8_t>(80 + beat % 3 * 8), 0});
  }
  performance.length_us = beats * beat_us;
  performance.sort();
  return performance;
}

// Writes `count` synthetic MIDI files and tokenizes them into a cache at
// <root>/cache; every third file is on the validation side.
inline std::filesystem::path build_synthetic_cache(const std::filesystem::path& root, int count,
                                                   double seconds = 40.0) {
  const std::filesystem::path data = root / "data";
  std::vector<dataset::CorpusEntry> entries;
  for (int i = 0; i < count; ++i) {
    dataset::CorpusEntry entry;
    entry.performer = i % 2 == 0 ? "Art Tatum" : "Someone Else";
    entry.album = "Album " + std::to_string(i);
    entry.title = "Piece " + std::to_string(i);
    entry.setting = "studio";
    entry.path = "midi/studio/" + entry.performer + "/" + entry.album + "/" + entry.title + ".midi";
    entry.split = i % 3 == 2 ? dataset::Split::kValidation : dataset::Split::kTrain;
    std::filesystem::create_directories((data / entry.path).parent_path());
    write_smf(data / entry.path, synthetic_performance(i, seconds));
    entries.push_back(entry);
  }
  dataset::CacheBuildOptions options;
  options.data_dir = data;
  options.out_dir = root / "cache";
  options.source = "synthetic";
  options.threads = 1;
  dataset::build_token_cache(entries, options);
  return options.out_dir;
}

inline model::TrainConfig tiny_train_config(const std::filesystem::path& cache,
                                            const std::filesystem::path& out) {
  model::TrainConfig config;
  config.model = tiny_model_config();
  config.model_config = "tiny-test";
  config.cache_dir = cache;
  config.out_dir = out;
  config.window_tokens = 48;
  config.reference_tokens = 32;
  config.batch_size = 2;
  config.grad_accum = 2;
  config.lr = 3e-3;
  config.min_lr = 3e-4;
  config.warmup_steps = 2;
  config.steps = 6;
  config.checkpoint_every = 3;
  config.log_every = 1;
  config.val_every = 3;
  config.val_batches = 1;
  return config;
}

}  // namespace tatumflow::testing
