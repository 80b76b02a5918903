// SPDX-License-Identifier: GPL-3.0-or-later
// Checkpoint format errors, training that resumes exactly after a stop, and a
// deeper model started from a shallower one.
#include "model/checkpoint.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_train.hpp"

namespace tatumflow::model {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

void save_model(const fs::path& path, const ModelConfig& header_config, const ModelConfig& weights_config) {
  torch::manual_seed(1);
  TatumFlowNet net(weights_config);
  write_checkpoint(path, {"model", 5, header_config},
                   [&](auto& archive) { write_tensors(archive, "model", net->named_parameters()); });
}

void expect_load_error(const fs::path& path, const std::string& needle) {
  try {
    (void)ModelContext::load(path);
    ADD_FAILURE() << "loaded " << path;
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.filename().string()), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RoundTripKeepsConfigAndWeights) {
  testing::TempDir dir("tf-ckpt");
  const fs::path path = dir.path() / "model.tfc";
  save_model(path, testing::tiny_model_config(), testing::tiny_model_config());
  const auto model = ModelContext::load(path);
  EXPECT_EQ(model->info().config, testing::tiny_model_config());
  EXPECT_EQ(model->info().trained_steps, 5);
  EXPECT_EQ(model->info().parameters, parameter_counts(testing::tiny_model_config()).back().second);
  const CheckpointSummary summary = inspect_checkpoint(path);
  EXPECT_EQ(summary.kind, "model");

  LoadedCheckpoint loaded = read_checkpoint(path);
  torch::manual_seed(1);
  TatumFlowNet original(testing::tiny_model_config());
  TatumFlowNet copy(testing::tiny_model_config());
  auto parameters = copy->named_parameters();
  read_tensors(loaded.archive, "model", parameters, path);
  for (const auto& item : original->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), parameters[item.key()]));
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  testing::TempDir dir("tf-ckpt-bad");
  const fs::path good = dir.path() / "good.tfc";
  save_model(good, testing::tiny_model_config(), testing::tiny_model_config());
  const std::string bytes = read_bytes(good);

  expect_load_error(dir.path() / "missing.tfc", "does not exist");

  write_bytes(dir.path() / "text.tfc", "[model]\nhidden = 3\n");
  expect_load_error(dir.path() / "text.tfc", "not a TatumFlow checkpoint");

  write_bytes(dir.path() / "short.tfc", bytes.substr(0, bytes.size() - 1000));
  expect_load_error(dir.path() / "short.tfc", "truncated");

  write_bytes(dir.path() / "header-cut.tfc", bytes.substr(0, 40));
  expect_load_error(dir.path() / "header-cut.tfc", "truncated");

  std::string flipped = bytes;
  flipped[flipped.size() - 500] = static_cast<char>(flipped[flipped.size() - 500] ^ 0x10);
  write_bytes(dir.path() / "flipped.tfc", flipped);
  expect_load_error(dir.path() / "flipped.tfc", "checksum");

  std::string future = bytes;
  future[8] = 9;
  write_bytes(dir.path() / "future.tfc", future);
  expect_load_error(dir.path() / "future.tfc", "format version 9");

  write_bytes(dir.path() / "long.tfc", bytes + "xx");
  expect_load_error(dir.path() / "long.tfc", "unexpected bytes");

  ModelConfig wider = testing::tiny_model_config();
  wider.hidden = 64;
  save_model(dir.path() / "mismatch.tfc", testing::tiny_model_config(), wider);
  expect_load_error(dir.path() / "mismatch.tfc", "has shape");
}

TEST(Checkpoint, UnavailableDeviceIsAModelError) {
  testing::TempDir dir("tf-ckpt-dev");
  const fs::path path = dir.path() / "model.tfc";
  save_model(path, testing::tiny_model_config(), testing::tiny_model_config());
  EXPECT_THROW((void)ModelContext::load(path, "warp-drive"), ModelError);
  if (!torch::cuda::is_available()) {
    EXPECT_THROW((void)ModelContext::load(path, "cuda"), ModelError);
  }
}

TEST(Training, ResumeAfterAStopGivesIdenticalWeights) {
  testing::TempDir dir("tf-resume");
  const fs::path cache = testing::build_synthetic_cache(dir.path(), 6, 30.0);
  TrainOptions quiet;
  quiet.progress = false;
  quiet.plot = false;

  const TrainSummary straight = train(testing::tiny_train_config(cache, dir.path() / "straight"), quiet);
  EXPECT_EQ(straight.first_step, 0);
  EXPECT_EQ(straight.last_step, 6);
  ASSERT_TRUE(straight.validation_nll.has_value());

  TrainOptions first_half = quiet;
  first_half.stop_after = 3;  // as if killed after the step-3 checkpoint
  const TrainSummary stopped = train(testing::tiny_train_config(cache, dir.path() / "split"), first_half);
  EXPECT_EQ(stopped.last_step, 3);
  EXPECT_NE(stopped.weights_digest, straight.weights_digest);
  TrainOptions second_half = quiet;
  second_half.resume = true;
  const TrainSummary resumed = train(testing::tiny_train_config(cache, dir.path() / "split"), second_half);
  EXPECT_EQ(resumed.first_step, 3);
  EXPECT_EQ(resumed.last_step, 6);
  EXPECT_EQ(resumed.weights_digest, straight.weights_digest);

  // The EMA weights and the metrics rows match too (the optimizer state is
  // covered by the weights: Adam's moments shape every update after the resume).
  const auto ema_of = [](const fs::path& path) {
    LoadedCheckpoint loaded = read_checkpoint(path);
    TatumFlowNet net(loaded.header.config);
    auto parameters = net->named_parameters();
    read_tensors(loaded.archive, "ema", parameters, path);
    return parameters;
  };
  const auto split_ema = ema_of(dir.path() / "split" / "checkpoint.tfc");
  const auto straight_ema = ema_of(dir.path() / "straight" / "checkpoint.tfc");
  for (const auto& item : straight_ema) {
    ASSERT_TRUE(torch::equal(item.value(), split_ema[item.key()])) << item.key();
  }
  const auto rows = [](const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    // Every column but tokens_per_s (wall-clock) must agree.
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> cells;
      std::stringstream stream(line);
      for (std::string cell; std::getline(stream, cell, ',');) cells.push_back(cell);
      if (cells.size() > 12) cells[12].clear();
      std::string joined;
      for (const auto& cell : cells) joined += cell + ",";
      lines.push_back(joined);
    }
    return lines;
  };
  const auto split_rows = rows(dir.path() / "split" / "metrics.csv");
  const auto straight_rows = rows(dir.path() / "straight" / "metrics.csv");
  EXPECT_EQ(split_rows.size(), 7U);
  EXPECT_TRUE(split_rows == straight_rows);

  // The exported model loads for generation.
  const auto model = ModelContext::load(dir.path() / "split" / "model.tfc");
  EXPECT_EQ(model->info().trained_steps, 6);

  // Fine-tuning starts from those weights; a different model config is refused.
  TrainConfig finetune = testing::tiny_train_config(cache, dir.path() / "finetune");
  finetune.init_from = dir.path() / "straight" / "model.tfc";
  finetune.performer = "tatum";
  finetune.steps = 1;
  EXPECT_EQ(train(finetune, quiet).last_step, 1);
  finetune.model.layers = 3;
  EXPECT_THROW((void)train(finetune, quiet), ConfigError);
}

// A deeper model started from a shallower checkpoint computes what it did: the
// checkpoint's blocks in order, identity blocks between them.
TEST(Checkpoint, DeeperModelStartsAsTheShallowerOne) {
  testing::TempDir dir("tf-grow");
  const fs::path path = dir.path() / "model.tfc";
  const ModelConfig shallow = testing::tiny_model_config();
  torch::manual_seed(4);
  TatumFlowNet source(shallow);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : source->parameters()) parameter.normal_(0.0, 0.1);
  }
  write_checkpoint(path, {"model", 5, shallow},
                   [&](auto& archive) { write_tensors(archive, "model", source->named_parameters()); });

  ModelConfig deep = shallow;
  deep.name = "deep";
  deep.layers = 2 * shallow.layers;
  TatumFlowNet grown(deep);
  auto parameters = grown->named_parameters();
  load_initial_weights(path, deep, "deep.toml", parameters);

  torch::NoGradGuard no_grad;
  source->eval();
  grown->eval();
  const auto tokens = torch::randint(5, 300, {2, 40}, torch::kInt64);
  const auto logits = [&](TatumFlowNet& net) {
    const auto condition = net->condition(torch::zeros({2}), torch::Tensor(), torch::Tensor());
    return net->token_logits(net->backbone(net->encode_latent(tokens),
                                           torch::full_like(tokens, kRoleAutoregressive), condition,
                                           AttentionMode::kCausal));
  };
  const auto expected = logits(source);
  EXPECT_GT(expected.std().item<double>(), 0.01);
  EXPECT_TRUE(torch::allclose(logits(grown), expected, 1e-5, 1e-5));

  deep.layers = 3;  // not a multiple
  TatumFlowNet odd(deep);
  auto odd_parameters = odd->named_parameters();
  EXPECT_THROW(load_initial_weights(path, deep, "odd.toml", odd_parameters), ConfigError);
}

}  // namespace
}  // namespace tatumflow::model
