// SPDX-License-Identifier: GPL-3.0-or-later
// The network: causality of multi-scale attention, KV-cache equivalence, latent
// normalisation, parameter accounting.
#include "model/network.hpp"

#include <gtest/gtest.h>

#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/model_train.hpp"

namespace tatumflow::model {
namespace {

// Random weights everywhere, including the zero-initialised AdaLN layers, so
// every path (attention at each scale, modulation) really carries signal.
TatumFlowNet random_net(const ModelConfig& config, std::uint64_t seed = 7) {
  torch::manual_seed(seed);
  TatumFlowNet net(config);
  torch::NoGradGuard no_grad;
  for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.1);
  net->eval();
  return net;
}

torch::Tensor random_tokens(std::int64_t length, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(5, tokens::kVocabSize, {1, length}, generator, torch::kInt64);
}

torch::Tensor condition_of(TatumFlowNet& net, std::int64_t batch) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  return net->condition(torch::zeros({batch}), torch::randn({batch, kStyleDim}, generator),
                        torch::randn({batch, net->config().theory_dim}, generator));
}

TEST(Network, CausalModeNeverSeesTheFuture) {
  TatumFlowNet net = random_net(testing::tiny_model_config());
  torch::NoGradGuard no_grad;
  const auto tokens = random_tokens(41, 1);
  const auto c = condition_of(net, 1);
  const auto reference = net->autoregressive_logits(tokens, c);
  // Every position, including group boundaries of the coarse scales (2 and 4).
  for (std::int64_t t = 0; t + 1 < tokens.size(1); ++t) {
    auto changed = tokens.clone();
    changed[0][t + 1] = (changed[0][t + 1].item<std::int64_t>() + 17) % tokens::kVocabSize;
    const auto logits = net->autoregressive_logits(changed, c);
    const double past =
        (logits.narrow(1, 0, t + 1) - reference.narrow(1, 0, t + 1)).abs().max().item<double>();
    const double future =
        (logits.narrow(1, t + 1, 1) - reference.narrow(1, t + 1, 1)).abs().max().item<double>();
    EXPECT_EQ(past, 0.0) << "changing token " << t + 1 << " changed logits at or before " << t;
    EXPECT_GT(future, 1e-4) << "the changed token itself should matter at " << t + 1;
  }
}

TEST(Network, BidirectionalModeSeesBothSides) {
  // The same probe must detect a dependence where one exists.
  TatumFlowNet net = random_net(testing::tiny_model_config());
  torch::NoGradGuard no_grad;
  const auto tokens = random_tokens(24, 2);
  const auto c = condition_of(net, 1);
  const auto roles = torch::full_like(tokens, kRoleContext);
  const auto run = [&](const torch::Tensor& t) {
    return net->backbone(net->encode_latent(t), roles, c, AttentionMode::kBidirectional);
  };
  auto changed = tokens.clone();
  changed[0][10] = 100;
  EXPECT_GT((run(changed).narrow(1, 0, 10) - run(tokens).narrow(1, 0, 10)).abs().max().item<double>(), 1e-4);
}

void expect_cache_matches(TatumFlowNet& net, std::int64_t prefix, std::int64_t length) {
  torch::NoGradGuard no_grad;
  const auto tokens = random_tokens(length, 5);
  const auto c = condition_of(net, 1);
  const auto full = net->autoregressive_logits(tokens, c)[0];
  DecodeCache cache = net->make_cache(net->config().max_positions, c);
  const auto first = net->prefill(tokens[0].narrow(0, 0, prefix), cache);
  EXPECT_LT((first - full[prefix - 1]).abs().max().item<double>(), 1e-4);
  for (std::int64_t t = prefix; t < length; ++t) {
    const auto logits = net->step(tokens[0][t].item<std::int64_t>(), cache);
    ASSERT_LT((logits - full[t]).abs().max().item<double>(), 1e-4)
        << "position " << t << " after prefix " << prefix;
  }
}

TEST(Network, KvCacheDecodingEqualsFullForward) {
  TatumFlowNet net = random_net(testing::tiny_model_config());
  // Prefixes ending inside and at the end of coarse groups.
  for (std::int64_t prefix : {1, 3, 4, 13, 16}) expect_cache_matches(net, prefix, 45);
}

TEST(Network, StepRowsDecodesEachSequenceAsAlone) {
  TatumFlowNet net = random_net(testing::tiny_model_config());
  torch::NoGradGuard no_grad;
  net->prepare_inference();
  // Sequences of different lengths (positions inside and at the end of coarse
  // groups) and conditions, stepped one by one and as rows of one pass.
  const std::vector<std::int64_t> prefixes = {5, 12, 31};
  const auto conditions = condition_of(net, static_cast<std::int64_t>(prefixes.size()));
  std::vector<torch::Tensor> sequences;
  std::vector<DecodeCache> alone, together;
  for (std::size_t row = 0; row < prefixes.size(); ++row) {
    sequences.push_back(random_tokens(60, 11 + row)[0]);
    const auto c = conditions[static_cast<std::int64_t>(row)].unsqueeze(0);
    for (auto* caches : {&alone, &together}) {
      caches->push_back(net->make_cache(net->config().max_positions, c));
      (void)net->prefill(sequences.back().narrow(0, 0, prefixes[row]), caches->back());
    }
  }
  std::vector<DecodeCache*> rows;
  for (DecodeCache& cache : together) rows.push_back(&cache);
  for (std::int64_t t = 0; t < 20; ++t) {
    std::vector<std::int64_t> next;
    for (std::size_t row = 0; row < prefixes.size(); ++row)
      next.push_back(sequences[row][prefixes[row] + t].item<std::int64_t>());
    const auto batched = net->step_rows(next, rows);
    for (std::size_t row = 0; row < prefixes.size(); ++row) {
      const auto expected = net->step(next[row], alone[row]);
      ASSERT_LT((batched[static_cast<std::int64_t>(row)] - expected).abs().max().item<double>(), 1e-4)
          << "row " << row << " step " << t;
    }
  }
  for (std::size_t row = 0; row < prefixes.size(); ++row) {
    EXPECT_EQ(together[row].length, alone[row].length);
    const AttentionCache& got = together[row].layers.back();
    const AttentionCache& want = alone[row].layers.back();
    EXPECT_TRUE(torch::allclose(got.k, want.k, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(got.coarse.back().k, want.coarse.back().k, 1e-5, 1e-5));
  }
}

// step() runs its attention in plain loops for float32 on the CPU and in
// torch operations elsewhere (a GPU); float64 on the CPU takes the latter.
TEST(Network, CpuLoopsAndTorchOperationsDecodeAlike) {
  TatumFlowNet fast = random_net(testing::tiny_model_config());
  TatumFlowNet generic = random_net(testing::tiny_model_config());
  generic->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  const auto tokens = random_tokens(40, 9)[0];
  const auto c = condition_of(fast, 1);
  DecodeCache fast_cache = fast->make_cache(64, c);
  DecodeCache generic_cache = generic->make_cache(64, c.to(torch::kFloat64));
  (void)fast->prefill(tokens.narrow(0, 0, 6), fast_cache);
  (void)generic->prefill(tokens.narrow(0, 0, 6), generic_cache);
  for (std::int64_t t = 6; t < 40; ++t) {
    const std::int64_t token = tokens[t].item<std::int64_t>();
    const auto expected = generic->step(token, generic_cache).to(torch::kFloat32);
    ASSERT_LT((fast->step(token, fast_cache) - expected).abs().max().item<double>(), 1e-4)
        << "position " << t;
  }
}

TEST(Network, KvCacheWithPrecomputedInputTable) {
  TatumFlowNet net = random_net(testing::tiny_model_config());
  {
    torch::NoGradGuard no_grad;
    net->prepare_inference();
  }
  expect_cache_matches(net, 7, 40);
}

TEST(Network, LatentsKeepUnitScaleWhateverTheEncoderWeights) {
  TatumFlowNet net = random_net(testing::tiny_model_config());
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_parameters()) {
    if (item.key().rfind("latent_encoder", 0) == 0) item.value().mul_(1e-3);
  }
  const auto latents = net->encode_latent(random_tokens(30, 9));
  EXPECT_NEAR(latents.pow(2).mean(-1).mean().item<double>(), 1.0, 0.02);
  EXPECT_NEAR(latents.mean(-1).abs().max().item<double>(), 0.0, 1e-4);
}

TEST(Network, ParameterGroupsAddUpToTheTotal) {
  const auto groups = parameter_counts(testing::tiny_model_config());
  ASSERT_EQ(groups.back().first, "total");
  std::int64_t components = 0;
  for (const auto& [name, count] : groups) {
    if (name != "total" && name.find('.') == std::string::npos) components += count;
    EXPECT_GT(count, 0) << name;
  }
  EXPECT_EQ(components, groups.back().second);
  std::int64_t total = 0;
  for (const auto& p : TatumFlowNet(testing::tiny_model_config())->parameters()) total += p.numel();
  EXPECT_EQ(total, groups.back().second);
}

TEST(Network, CoarseScalesChangeTheOutput) {
  // Dropping scales 2 and 4 must change the result: the multi-scale path is live.
  ModelConfig single = testing::tiny_model_config();
  single.scales = {1};
  TatumFlowNet multi_net = random_net(testing::tiny_model_config(), 11);
  TatumFlowNet single_net = random_net(single, 11);
  torch::NoGradGuard no_grad;
  // Copy the shared weights so only the coarse scales differ.
  auto source = multi_net->named_parameters();
  for (auto& item : single_net->named_parameters()) {
    item.value().copy_(source[item.key()].narrow(0, 0, item.value().size(0)));
  }
  const auto tokens = random_tokens(32, 4);
  const auto c = condition_of(multi_net, 1);
  const auto difference =
      multi_net->autoregressive_logits(tokens, c) - single_net->autoregressive_logits(tokens, c);
  EXPECT_LT(difference.narrow(1, 0, 2).abs().max().item<double>(), 1e-5);  // group 0 has no coarse input yet
  EXPECT_GT(difference.narrow(1, 4, 28).abs().max().item<double>(), 1e-3);
}

}  // namespace
}  // namespace tatumflow::model
