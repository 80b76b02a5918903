// SPDX-License-Identifier: GPL-3.0-or-later
// The versioned checkpoint file:
//
//   "TATUMFLW"                  8-byte magic
//   u32 format version          kCheckpointVersion
//   u32 header length, header   TOML: [checkpoint] kind, step, tokenizer_version,
//                               vocab_size, and the model's [model] table
//   u64 payload length
//   u64 payload checksum        mix64 chain over the payload's 8-byte words
//   payload                     a torch archive: "model" (and for training
//                               checkpoints "ema", "optimizer", "trainer")
//
// All integers little-endian. Writes go to a temporary file renamed into place,
// so a kill leaves the previous checkpoint intact. Training thread or loader.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "network.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {

inline constexpr std::uint32_t kCheckpointVersion = 1;

struct CheckpointHeader {
  std::string kind;  // "training" or "model"
  std::int64_t step = 0;
  ModelConfig config;
  // The training windows' length: positions beyond it were never trained.
  // 0: not recorded (files written before it was).
  std::int64_t window_tokens = 0;
};

void write_checkpoint(const std::filesystem::path& path, const CheckpointHeader& header,
                      const std::function<void(torch::serialize::OutputArchive&)>& fill);

struct LoadedCheckpoint {
  CheckpointHeader header;
  torch::serialize::InputArchive archive;
};

// Throws CheckpointError naming the file and the problem.
[[nodiscard]] LoadedCheckpoint read_checkpoint(const std::filesystem::path& path);

// Named tensors (parameters or their EMA copies) to and from a nested archive,
// checking that every name exists and every shape matches.
void write_tensors(torch::serialize::OutputArchive& archive, const std::string& key,
                   const torch::OrderedDict<std::string, torch::Tensor>& tensors);
void read_tensors(torch::serialize::InputArchive& archive, const std::string& key,
                  torch::OrderedDict<std::string, torch::Tensor>& tensors, const std::filesystem::path& path);

// Fills `parameters` (of a model with `config`) from init_from's weights (EMA
// weights for a training checkpoint). The checkpoint may hold a shallower model
// whose layer count divides config.layers and which is otherwise the same: its
// block i becomes block i * (layers / its layers), and the blocks between keep
// their zero-initialised AdaLN, so they start as the identity and the deeper
// network computes what the checkpoint did. Throws ConfigError naming
// config_name for any other model, CheckpointError for a bad file.
void load_initial_weights(const std::filesystem::path& init_from, const ModelConfig& config,
                          const std::string& config_name,
                          torch::OrderedDict<std::string, torch::Tensor>& parameters);

}  // namespace tatumflow::model
