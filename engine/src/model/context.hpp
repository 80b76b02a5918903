// SPDX-License-Identifier: GPL-3.0-or-later
// What the model library's API files (generation.cpp, modes.cpp) share behind
// model_api.hpp: the loaded model, torch error translation, and the style
// vector a request conditions on. Inference thread.
#pragma once

#include <torch/torch.h>

#include <span>
#include <string>

#include "diffusion.hpp"
#include "network.hpp"
#include "step_combiner.hpp"
#include "tatumflow/engine/model_api.hpp"

namespace tatumflow::model {

struct ModelContext::Impl {
  Impl(const ModelConfig& config, bool share_steps)
      : net(config), schedule(config), device(torch::kCPU), steps(share_steps) {}
  TatumFlowNet net;
  NoiseSchedule schedule;
  torch::Device device;
  ModelInfo info;
  mutable StepCombiner steps;  // every autoregressive step goes through it
};

// Translates torch failures at the API edge, so callers see only ModelError types.
template <typename Error = ModelError, typename F>
auto translate_errors(const std::string& what, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    throw Error(what + ": " + e.what_without_backtrace());
  }
}

// (T) int64 on `device`.
torch::Tensor token_tensor(std::span<const tokens::Token> sequence, const torch::Device& device);

// (1, kStyleDim) mean + creativity * sigma * noise, the noise drawn from the
// seed alone (so every chunk of an answer shares it); undefined when
// controls.use_style is false (the learned "no style" stands in).
torch::Tensor style_vector(const StyleLatent& style, const GenerationControls& controls,
                           const torch::Device& device);

// Throw ModelError naming `what` when a sampling control is out of range, or
// when a token lies outside the vocabulary.
void check_controls(const GenerationControls& controls, const std::string& what);
void check_tokens(std::span<const tokens::Token> sequence, const std::string& what);

}  // namespace tatumflow::model
