// SPDX-License-Identifier: GPL-3.0-or-later
#include "diffusion.hpp"

#include <algorithm>
#include <cmath>

#include "autocast.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::model {

namespace F = torch::nn::functional;

NoiseSchedule::NoiseSchedule(const ModelConfig& config) : steps_(config.diffusion_steps) {
  const double s = config.cosine_offset;
  const auto f = [&](double t) {
    const double c = std::cos((t / double(steps_) + s) / (1.0 + s) * M_PI / 2.0);
    return c * c;
  };
  alpha_bar_data_.resize(static_cast<std::size_t>(steps_) + 1);
  alpha_bar_data_[0] = 1.0;
  for (std::int64_t t = 1; t <= steps_; ++t) {
    const double beta = std::min(1.0 - f(double(t)) / f(double(t - 1)), 0.999);
    alpha_bar_data_[static_cast<std::size_t>(t)] =
        alpha_bar_data_[static_cast<std::size_t>(t - 1)] * (1.0 - beta);
  }
  alpha_bar_ = torch::tensor(alpha_bar_data_, torch::kFloat64);
}

torch::Tensor predicted_x0(Prediction prediction, const torch::Tensor& raw, const torch::Tensor& x_t,
                           const torch::Tensor& alpha_bar) {
  switch (prediction) {
    case Prediction::kX0:
      return raw;
    case Prediction::kEps:
      // Near t = T the division amplifies errors without bound; latents have unit scale.
      return ((x_t - torch::sqrt(1 - alpha_bar) * raw) / torch::sqrt(alpha_bar).clamp_min(1e-4))
          .clamp(-8.0, 8.0);
    case Prediction::kV:
      return torch::sqrt(alpha_bar) * x_t - torch::sqrt(1 - alpha_bar) * raw;
  }
  return raw;
}

namespace {

// Noised-position mask (B, W) following the configured mix of prefix, infill,
// suffix and fully-noised windows.
torch::Tensor sample_noise_mask(std::int64_t batch, std::int64_t width, const TrainConfig& config,
                                torch::Generator& generator) {
  const auto draws = torch::rand({batch, 3}, generator, torch::kFloat64);
  const auto u = draws.accessor<double, 2>();
  auto mask = torch::zeros({batch, width}, torch::kBool);
  const double total = config.mask_prefix + config.mask_infill + config.mask_suffix + config.mask_none;
  for (std::int64_t b = 0; b < batch; ++b) {
    const double kind = u[b][0] * total;
    // Context covers a quarter to three quarters of the window.
    const auto context = static_cast<std::int64_t>(double(width) * (0.25 + 0.5 * u[b][1]));
    std::int64_t begin = 0;
    std::int64_t end = width;
    if (kind < config.mask_prefix) {
      begin = context;
    } else if (kind < config.mask_prefix + config.mask_infill) {
      const auto span =
          std::max<std::int64_t>(1, static_cast<std::int64_t>(double(width) * (0.1 + 0.4 * u[b][1])));
      begin = static_cast<std::int64_t>(double(width - span) * u[b][2]);
      end = begin + span;
    } else if (kind < config.mask_prefix + config.mask_infill + config.mask_suffix) {
      end = width - context;
    }
    mask[b].narrow(0, begin, end - begin).fill_(true);
  }
  return mask;
}

double masked_mean(const torch::Tensor& values, const torch::Tensor& mask, torch::Tensor& out) {
  const auto count = mask.sum().clamp_min(1);
  out = (values * mask).sum() / count;
  return out.item<double>();
}

}  // namespace

LossReport compute_losses(TatumFlowNet& net, const NoiseSchedule& schedule, const TrainingBatch& batch,
                          bool diffusion, const TrainConfig& config, torch::Generator& generator) {
  LossReport report;
  report.diffusion = diffusion;
  const std::int64_t size = batch.tokens.size(0);
  const std::int64_t width = batch.tokens.size(1) - 1;
  const auto inputs = batch.tokens.narrow(1, 0, width);
  const auto real = inputs.ne(tokens::kPad);
  // Every draw comes from the CPU generator, so a run's noise is the same on any device.
  const torch::Device device = inputs.device();

  const StyleOutput style = net->encode_style(batch.reference);
  const auto z =
      style.mu + torch::exp(0.5 * style.logvar) * torch::randn(style.mu.sizes(), generator).to(device);
  const TheoryOutput theory = net->encode_theory(batch.theory);
  const auto style_keep = torch::rand({size}, generator).ge(config.style_dropout).to(device);
  const auto theory_keep = torch::rand({size}, generator).ge(config.theory_dropout).to(device);

  const auto x0 = net->encode_latent(inputs);
  report.latent_variance = x0.detach().reshape({-1, x0.size(-1)}).var(0).mean().item<double>();

  torch::Tensor token_loss;
  torch::Tensor diffusion_loss;
  if (diffusion) {
    const auto noised = sample_noise_mask(size, width, config, generator).to(device).logical_and(real);
    const auto t_cpu = torch::randint(1, schedule.steps() + 1, {size}, generator, torch::kInt64);
    const auto t = t_cpu.to(device);
    const auto alpha_bar =
        schedule.alpha_bar().index_select(0, t_cpu).to(device, torch::kFloat32).view({size, 1, 1});
    const auto eps = torch::randn(x0.sizes(), generator).to(device);
    const auto x_t = torch::sqrt(alpha_bar) * x0 + torch::sqrt(1 - alpha_bar) * eps;
    const auto noised3 = noised.unsqueeze(-1);
    const auto input = torch::where(noised3, x_t, x0);
    const auto roles =
        torch::where(noised, torch::full_like(inputs, kRoleNoised), torch::full_like(inputs, kRoleContext));
    const auto c = net->condition(t.to(torch::kFloat32), z, theory.fused, style_keep, theory_keep);
    const auto raw = net->predict_latent(net->backbone(input, roles, c, AttentionMode::kBidirectional));

    const auto target_x0 = config.detach_latent_target ? x0.detach() : x0;
    torch::Tensor target;
    switch (config.model.prediction) {
      case Prediction::kX0:
        target = target_x0;
        break;
      case Prediction::kEps:
        target = eps;
        break;
      case Prediction::kV:
        target = torch::sqrt(alpha_bar) * eps - torch::sqrt(1 - alpha_bar) * target_x0;
        break;
    }
    const auto mse = (raw - target).pow(2).mean(-1);  // (B, W)
    const auto noised_f = noised.to(torch::kFloat32);
    report.diffusion_loss = masked_mean(mse, noised_f, diffusion_loss);

    const auto per_sample =
        ((mse * noised_f).sum(1) / noised_f.sum(1).clamp_min(1)).detach().to(torch::kCPU, torch::kFloat32);
    const auto t_acc = t_cpu.accessor<std::int64_t, 1>();
    const auto loss_acc = per_sample.accessor<float, 1>();
    for (std::int64_t b = 0; b < size; ++b) {
      const auto bucket = static_cast<std::size_t>((t_acc[b] - 1) * kNoiseBuckets / schedule.steps());
      report.bucket_loss[bucket] += loss_acc[b];
      ++report.bucket_count[bucket];
    }

    const auto x0_hat = predicted_x0(config.model.prediction, raw, x_t, alpha_bar);
    const auto logits = net->readout(x0_hat);
    const auto ce = F::cross_entropy(logits.reshape({-1, logits.size(-1)}), inputs.reshape({-1}),
                                     F::CrossEntropyFuncOptions().reduction(torch::kNone))
                        .view({size, width});
    report.token_loss = masked_mean(ce, noised_f, token_loss);
    report.token_targets = noised.sum().item<std::int64_t>();
    report.token_accuracy = (logits.argmax(-1).eq(inputs).logical_and(noised)).sum().item<double>() /
                            double(std::max<std::int64_t>(report.token_targets, 1));
  } else {
    const auto targets = batch.tokens.narrow(1, 1, width);
    const auto c = net->condition(torch::zeros({size}, inputs.options().dtype(torch::kFloat32)), z,
                                  theory.fused, style_keep, theory_keep);
    const auto logits = net->token_logits(
        net->backbone(x0, torch::full_like(inputs, kRoleAutoregressive), c, AttentionMode::kCausal));
    token_loss = F::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                                  F::CrossEntropyFuncOptions().ignore_index(tokens::kPad));
    report.token_loss = token_loss.item<double>();
    const auto valid = targets.ne(tokens::kPad);
    report.token_targets = valid.sum().item<std::int64_t>();
    report.token_accuracy = logits.argmax(-1).eq(targets).logical_and(valid).sum().item<double>() /
                            double(std::max<std::int64_t>(report.token_targets, 1));
  }

  const auto readout_logits = net->readout(x0);
  const auto readout =
      F::cross_entropy(readout_logits.reshape({-1, readout_logits.size(-1)}), inputs.reshape({-1}),
                       F::CrossEntropyFuncOptions().ignore_index(tokens::kPad));
  const auto kl_per_dim = (-0.5 * (1 + style.logvar - style.mu.pow(2) - style.logvar.exp())).mean(0);
  const auto kl = kl_per_dim.sum();
  const auto kl_penalty = kl_per_dim.clamp_min(config.loss.kl_free_nats_per_dim).sum();
  const auto unit = F::normalize(theory.components, F::NormalizeFuncOptions().dim(-1));
  const auto gram = torch::bmm(unit, unit.transpose(1, 2)).abs();
  const auto pairs = double(unit.size(1) * (unit.size(1) - 1));
  const auto orthogonality = ((gram.sum({1, 2}) - gram.diagonal(0, 1, 2).sum(1)) / pairs).mean();

  const LossWeights& w = config.loss;
  report.total = w.recon * token_loss + w.readout * readout + w.kl * kl_penalty + w.theory * orthogonality;
  if (diffusion) report.total = report.total + w.diff * diffusion_loss;
  report.readout = readout.item<double>();
  report.kl = kl.item<double>();
  report.theory = orthogonality.item<double>();
  return report;
}

SampledLatents sample_latents(TatumFlowNet& net, const NoiseSchedule& schedule, const LatentSampling& request,
                              torch::Generator& generator) {
  const Prediction prediction = net->config().prediction;
  if (request.start_time < 0 || request.start_time > schedule.steps()) {
    throw ModelError("sample_latents: start_time " + std::to_string(request.start_time) + " outside 0.." +
                     std::to_string(schedule.steps()));
  }
  const std::int64_t total = request.start_time > 0 ? request.start_time : schedule.steps();
  const int steps = std::clamp<int>(request.steps, 1, static_cast<int>(total));
  // Evenly spaced times from `total` down to 0.
  std::vector<std::int64_t> times;
  for (int k = steps; k >= 0; --k) times.push_back((total * k + steps - 1) / steps);

  const auto noised3 = request.noised.unsqueeze(-1);
  const auto roles =
      torch::where(request.noised, torch::full(request.noised.sizes(), kRoleNoised, torch::kInt64),
                   torch::full(request.noised.sizes(), kRoleContext, torch::kInt64))
          .to(request.clean.device());
  auto x = torch::randn(request.clean.sizes(), generator).to(request.clean.device());
  if (request.start_time > 0) {
    const double ab = schedule.at(total);
    x = std::sqrt(ab) * request.clean + std::sqrt(1 - ab) * x;
  }

  const bool guided = request.unguided.defined() && request.guidance != 1.0;
  // Guidance doubles the batch: the styled rows first, then the same rows unstyled.
  const auto content = guided ? torch::cat({request.content, request.unguided.expand_as(request.content)}, 0)
                              : request.content;
  const auto batch_roles = guided ? torch::cat({roles, roles}, 0) : roles;
  const double eta = request.sampler == Sampler::kDdpm ? 1.0 : 0.0;

  SampledLatents result;
  torch::Tensor x0_hat;
  const Bf16Autocast autocast(request.clean.device(), request.bf16);
  for (int i = 0; i < steps; ++i) {
    if (i > 0 && request.keep_going && !request.keep_going(i)) {
      result.stopped_early = true;
      break;
    }
    const std::int64_t t = times[static_cast<std::size_t>(i)];
    const std::int64_t t_prev = times[static_cast<std::size_t>(i) + 1];
    const double ab = schedule.at(t);
    const double ab_prev = schedule.at(t_prev);
    const auto input = torch::where(noised3, x, request.clean);
    const auto batch_input = guided ? torch::cat({input, input}, 0) : input;
    const auto c = net->time_condition(torch::full({1}, double(t), request.clean.options())) + content;
    const auto raw =
        net->predict_latent(net->backbone(batch_input, batch_roles, c, AttentionMode::kBidirectional));
    auto estimate = predicted_x0(prediction, raw, batch_input, torch::full({1}, ab, request.clean.options()));
    if (guided) {
      const auto halves = estimate.chunk(2, 0);
      estimate = halves[1] + request.guidance * (halves[0] - halves[1]);
    }
    // Project back to the latent sphere the encoder produces.
    x0_hat = torch::layer_norm(estimate.view_as(x), {x.size(-1)}, {}, {}, 1e-10);
    ++result.steps_run;
    if (t_prev == 0) {
      x = x0_hat;
      continue;
    }
    const auto eps_hat = (x - std::sqrt(ab) * x0_hat) / std::sqrt(1 - ab);
    const double sigma = eta * std::sqrt((1 - ab_prev) / (1 - ab)) * std::sqrt(1 - ab / ab_prev);
    x = std::sqrt(ab_prev) * x0_hat + std::sqrt(std::max(1 - ab_prev - sigma * sigma, 0.0)) * eps_hat;
    if (sigma > 0) x = x + sigma * torch::randn(x.sizes(), generator).to(x.device());
  }
  result.x0 = torch::where(noised3, x0_hat, request.clean);
  return result;
}

}  // namespace tatumflow::model
