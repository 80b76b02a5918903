// SPDX-License-Identifier: GPL-3.0-or-later
// Noise schedule, parameterisations, training objectives (they must go down on
// learnable data) and the DDIM / DDPM samplers (seeded determinism, context kept).
#include "model/diffusion.hpp"

#include <gtest/gtest.h>

#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::model {
namespace {

TEST(NoiseSchedule, CosineAlphaBarFallsFromOneToNearZero) {
  const NoiseSchedule schedule(testing::tiny_model_config());
  EXPECT_EQ(schedule.at(0), 1.0);
  for (std::int64_t t = 1; t <= schedule.steps(); ++t) EXPECT_LT(schedule.at(t), schedule.at(t - 1));
  EXPECT_LT(schedule.at(schedule.steps()), 1e-3);
  EXPECT_GT(schedule.at(schedule.steps() / 2), 0.3);  // cosine: about half signal at mid-schedule
  EXPECT_LT(schedule.at(schedule.steps() / 2), 0.7);
}

TEST(Parameterisation, TrueTargetsGiveBackTheCleanLatent) {
  torch::manual_seed(1);
  const auto x0 = torch::randn({2, 5, 8});
  const auto eps = torch::randn({2, 5, 8});
  const auto alpha_bar = torch::tensor({0.3f, 0.8f}).view({2, 1, 1});
  const auto x_t = torch::sqrt(alpha_bar) * x0 + torch::sqrt(1 - alpha_bar) * eps;
  const auto v = torch::sqrt(alpha_bar) * eps - torch::sqrt(1 - alpha_bar) * x0;
  EXPECT_TRUE(torch::allclose(predicted_x0(Prediction::kX0, x0, x_t, alpha_bar), x0));
  EXPECT_TRUE(torch::allclose(predicted_x0(Prediction::kEps, eps, x_t, alpha_bar), x0, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(predicted_x0(Prediction::kV, v, x_t, alpha_bar), x0, 1e-4, 1e-4));
}

// Windows of the synthetic pieces, with the preceding tokens as reference.
TrainingBatch synthetic_batch(int first_piece, std::int64_t size, std::int64_t width) {
  auto batch_tokens = torch::zeros({size, width + 1}, torch::kInt64);
  auto reference = torch::zeros({size, 32}, torch::kInt64);
  auto theory = torch::zeros({size, kTheoryFeatureTotal});
  for (std::int64_t b = 0; b < size; ++b) {
    const auto sequence = tokens::encode(testing::synthetic_performance(first_piece + int(b), 30.0));
    for (std::int64_t i = 0; i < 32; ++i) reference[b][i] = sequence[static_cast<std::size_t>(i)];
    for (std::int64_t i = 0; i <= width; ++i) batch_tokens[b][i] = sequence[static_cast<std::size_t>(32 + i)];
    theory[b].copy_(
        theory_tensor(compute_theory_features(testing::synthetic_performance(first_piece + int(b), 5.0)))[0]);
  }
  return {batch_tokens, reference, theory};
}

double train_and_measure(bool diffusion, Prediction prediction, int steps, double* first_loss) {
  TrainConfig config = testing::tiny_train_config("", "");
  config.model.prediction = prediction;
  torch::manual_seed(3);
  TatumFlowNet net(config.model);
  const NoiseSchedule schedule(config.model);
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(3e-3));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(9);
  double recent = 0;
  for (int step = 0; step < steps; ++step) {
    const TrainingBatch batch = synthetic_batch(step % 4, 4, 40);
    const LossReport report = compute_losses(net, schedule, batch, diffusion, config, generator);
    EXPECT_TRUE(std::isfinite(report.total.item<double>()));
    EXPECT_EQ(report.diffusion, diffusion);
    if (step == 0) *first_loss = report.token_loss;
    if (step >= steps - 10) recent += report.token_loss / 10;
    optimizer.zero_grad();
    report.total.backward();
    optimizer.step();
  }
  return recent;
}

TEST(TrainingObjectives, AutoregressiveLossFallsOnLearnableData) {
  double first = 0;
  const double last = train_and_measure(false, Prediction::kX0, 60, &first);
  EXPECT_GT(first, 5.0);  // near log(1715) = 7.4 at the start
  EXPECT_LT(last, 0.6 * first);
}

TEST(TrainingObjectives, DiffusionReconstructionFallsForEachParameterisation) {
  for (Prediction prediction : {Prediction::kX0, Prediction::kEps, Prediction::kV}) {
    double first = 0;
    const double last = train_and_measure(true, prediction, 30, &first);
    EXPECT_LT(last, 0.7 * first) << to_string(prediction);
  }
}

TEST(TrainingObjectives, ReportsBucketsAndLatentVariance) {
  TrainConfig config = testing::tiny_train_config("", "");
  torch::manual_seed(4);
  TatumFlowNet net(config.model);
  const NoiseSchedule schedule(config.model);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const LossReport report = compute_losses(net, schedule, synthetic_batch(0, 4, 40), true, config, generator);
  std::int64_t counted = 0;
  for (std::int64_t count : report.bucket_count) counted += count;
  EXPECT_EQ(counted, 4);
  EXPECT_GT(report.latent_variance, 0.5);  // unit-scale latents differ across positions
  EXPECT_GT(report.token_targets, 0);
  EXPECT_GT(report.kl, 0.0);
  EXPECT_GT(report.theory, 0.0);
}

struct SamplerFixture : ::testing::Test {
  void SetUp() override {
    torch::manual_seed(5);
    net = TatumFlowNet(testing::tiny_model_config());
    torch::NoGradGuard no_grad;
    for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.1);
    net->eval();
    const auto sequence = tokens::encode(testing::synthetic_performance(1, 10.0));
    auto ids = torch::zeros({1, 24}, torch::kInt64);
    for (std::int64_t i = 0; i < 24; ++i) ids[0][i] = sequence[static_cast<std::size_t>(i)];
    request.clean = net->encode_latent(ids);
    request.noised = torch::arange(24).ge(12).unsqueeze(0);
    auto generator = at::make_generator<at::CPUGeneratorImpl>(2);
    request.content = net->content_condition(torch::randn({1, kStyleDim}, generator), {});
    request.steps = 10;
  }
  SampledLatents run(std::uint64_t seed) {
    torch::NoGradGuard no_grad;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    return sample_latents(net, NoiseSchedule(net->config()), request, generator);
  }
  TatumFlowNet net{nullptr};
  LatentSampling request;
};

TEST_F(SamplerFixture, DdimIsDeterministicForASeed) {
  const auto a = run(42);
  const auto b = run(42);
  const auto c = run(43);
  EXPECT_EQ(a.steps_run, 10);
  EXPECT_TRUE(torch::equal(a.x0, b.x0));
  EXPECT_GT((a.x0 - c.x0).abs().max().item<double>(), 1e-3);
}

TEST_F(SamplerFixture, ContextPositionsStayClean) {
  const auto result = run(1);
  EXPECT_TRUE(torch::equal(result.x0.narrow(1, 0, 12), request.clean.narrow(1, 0, 12)));
  // Generated positions land on the encoder's unit-scale sphere.
  EXPECT_NEAR(result.x0.narrow(1, 12, 12).pow(2).mean().item<double>(), 1.0, 1e-3);
}

TEST_F(SamplerFixture, DdpmAddsNoiseButStaysSeeded) {
  request.sampler = Sampler::kDdpm;
  const auto a = run(7);
  const auto b = run(7);
  EXPECT_TRUE(torch::equal(a.x0, b.x0));
  request.sampler = Sampler::kDdim;
  EXPECT_GT((run(7).x0 - a.x0).abs().max().item<double>(), 1e-3);
}

TEST_F(SamplerFixture, GuidanceChangesTheResult) {
  const auto plain = run(3);
  request.unguided = net->content_condition({}, {});
  request.guidance = 3.0;
  EXPECT_GT((run(3).x0 - plain.x0).abs().max().item<double>(), 1e-3);
}

TEST_F(SamplerFixture, KeepGoingStopsEarly) {
  request.keep_going = [](int step) { return step < 3; };
  const auto result = run(1);
  EXPECT_TRUE(result.stopped_early);
  EXPECT_EQ(result.steps_run, 3);
  EXPECT_TRUE(torch::isfinite(result.x0).all().item<bool>());
}

}  // namespace
}  // namespace tatumflow::model
