// SPDX-License-Identifier: GPL-3.0-or-later
#include <cmath>

#include "context.hpp"
#include "tatumflow/engine/model_eval.hpp"

namespace tatumflow::model {

namespace {

namespace F = torch::nn::functional;
constexpr std::size_t kBatchWindows = 16;

// (B, L) int64 of windows [first, first + count), PAD after a short one's end.
torch::Tensor stack_windows(std::span<const ScoredWindow> windows, std::size_t first, std::size_t count) {
  std::size_t length = 0;
  for (std::size_t i = first; i < first + count; ++i) length = std::max(length, windows[i].tokens.size());
  auto batch = torch::full({static_cast<std::int64_t>(count), static_cast<std::int64_t>(length)},
                           static_cast<std::int64_t>(tokens::kPad), torch::kInt64);
  auto access = batch.accessor<std::int64_t, 2>();
  for (std::size_t b = 0; b < count; ++b) {
    const auto window = windows[first + b].tokens;
    for (std::size_t j = 0; j < window.size(); ++j)
      access[static_cast<std::int64_t>(b)][static_cast<std::int64_t>(j)] = window[j];
  }
  return batch;
}

// What the windows [first, first + count) are conditioned on: style and theory
// of the reference before each, or the null conditions (see evaluate_checkpoint).
torch::Tensor content_conditions(TatumFlowNet& net, std::span<const ScoredWindow> windows, std::size_t first,
                                 std::size_t count, std::size_t reference_tokens) {
  const auto size = static_cast<std::int64_t>(count);
  if (reference_tokens == 0) return net->content_condition(torch::Tensor(), torch::Tensor(), {}, {});
  auto reference = torch::full({size, static_cast<std::int64_t>(reference_tokens)},
                               static_cast<std::int64_t>(tokens::kPad), torch::kInt64);
  auto theory = torch::zeros({size, kTheoryFeatureTotal});
  auto keep = torch::zeros({size}, torch::kBool);
  auto rows = reference.accessor<std::int64_t, 2>();
  for (std::size_t b = 0; b < count; ++b) {
    const auto before = windows[first + b].before;
    if (before.empty()) continue;
    const std::size_t begin = before.size() > reference_tokens ? before.size() - reference_tokens : 0;
    const auto source = dataset::style_reference(before, begin, before.size());
    const auto row = static_cast<std::int64_t>(b);
    for (std::size_t i = 0; i < source.size(); ++i) rows[row][static_cast<std::int64_t>(i)] = source[i];
    theory[row].copy_(theory_tensor(theory_of(source))[0]);
    keep[row] = true;
  }
  const StyleOutput style = net->encode_style(reference);
  return net->content_condition(style.mu, net->encode_theory(theory).fused, keep, keep);
}

}  // namespace

CheckpointEvaluation evaluate_checkpoint(const std::filesystem::path& checkpoint,
                                         std::span<const ScoredWindow> windows, double seconds_of_music,
                                         std::span<const double> noise_levels, std::size_t reference_tokens,
                                         std::uint64_t seed) {
  const auto model = ModelContext::load(checkpoint);
  const ModelContext::Impl& impl = model->impl();
  TatumFlowNet net = impl.net;  // a handle; in eval mode the parameters are only read
  torch::NoGradGuard no_grad;
  const ModelConfig& config = impl.info.config;
  const auto max_length = static_cast<std::size_t>(config.max_positions);

  CheckpointEvaluation result;
  result.trained_steps = impl.info.trained_steps;
  result.parameters = impl.info.parameters;

  double nll = 0.0, correct = 0.0;
  std::int64_t scored = 0;
  std::vector<double> recon_correct(noise_levels.size(), 0.0), recon_tokens(noise_levels.size(), 0.0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (std::size_t first = 0; first < windows.size(); first += kBatchWindows) {
    const std::size_t count = std::min(kBatchWindows, windows.size() - first);
    const auto batch = stack_windows(windows, first, count);
    const std::int64_t size = batch.size(0);
    const std::int64_t width = batch.size(1) - 1;
    if (static_cast<std::size_t>(width) > max_length) {
      throw ModelError("evaluation windows of " + std::to_string(width + 1) + " tokens exceed the model's " +
                       std::to_string(max_length) + " positions");
    }
    const auto inputs = batch.narrow(1, 0, width);
    // Context tokens are not targets: PAD is ignored by the loss.
    const auto targets = batch.narrow(1, 1, width).clone();
    for (std::size_t b = 0; b < count; ++b) {
      const auto unscored = static_cast<std::int64_t>(windows[first + b].first_scored) - 1;
      targets[static_cast<std::int64_t>(b)].narrow(0, 0, std::min(unscored, width)).fill_(tokens::kPad);
    }
    const auto valid = targets.ne(tokens::kPad);
    const auto x0 = net->encode_latent(inputs);

    const auto content = content_conditions(net, windows, first, count, reference_tokens);
    const auto clean = net->time_condition(torch::zeros({size})) + content;
    const auto logits = net->token_logits(
        net->backbone(x0, torch::full_like(inputs, kRoleAutoregressive), clean, AttentionMode::kCausal));
    const auto ce =
        F::cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                         F::CrossEntropyFuncOptions().ignore_index(tokens::kPad).reduction(torch::kSum));
    nll += ce.item<double>();
    correct += logits.argmax(-1).eq(targets).logical_and(valid).sum().item<double>();
    scored += valid.sum().item<std::int64_t>();

    const auto real = inputs.ne(tokens::kPad);
    const auto second_half = torch::arange(width).ge(width / 2).unsqueeze(0).expand({size, width});
    const auto noised = second_half.logical_and(real);
    const auto roles =
        torch::where(noised, torch::full_like(inputs, kRoleNoised), torch::full_like(inputs, kRoleContext));
    for (std::size_t level = 0; level < noise_levels.size(); ++level) {
      const auto t = std::clamp<std::int64_t>(
          std::llround(noise_levels[level] * double(impl.schedule.steps())), 1, impl.schedule.steps());
      const auto alpha_bar = torch::full({size, 1, 1}, impl.schedule.at(t), torch::kFloat32);
      const auto x_t =
          torch::sqrt(alpha_bar) * x0 + torch::sqrt(1 - alpha_bar) * torch::randn(x0.sizes(), generator);
      const auto input = torch::where(noised.unsqueeze(-1), x_t, x0);
      const auto c = net->time_condition(torch::full({size}, double(t), torch::kFloat32)) + content;
      const auto raw = net->predict_latent(net->backbone(input, roles, c, AttentionMode::kBidirectional));
      const auto predicted = net->readout(predicted_x0(config.prediction, raw, x_t, alpha_bar));
      recon_correct[level] += predicted.argmax(-1).eq(inputs).logical_and(noised).sum().item<double>();
      recon_tokens[level] += noised.sum().item<double>();
    }
  }

  result.autoregressive = token_score(nll, correct, scored, seconds_of_music);
  for (std::size_t level = 0; level < noise_levels.size(); ++level) {
    result.reconstruction.push_back({noise_levels[level], static_cast<std::int64_t>(recon_tokens[level]),
                                     recon_correct[level] / std::max(recon_tokens[level], 1.0)});
  }
  return result;
}

}  // namespace tatumflow::model
