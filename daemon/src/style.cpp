// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/style.hpp"

#include <algorithm>
#include <stdexcept>

#include "tatumflow/daemon/config.hpp"

namespace tatumflow::daemon {

StyleLatent blend(std::span<const StyleLatent* const> styles, std::span<const float> weights) {
  if (styles.size() != weights.size() || styles.empty()) {
    throw std::invalid_argument("blend: " + std::to_string(styles.size()) + " styles but " +
                                std::to_string(weights.size()) + " weights");
  }
  StyleLatent out;
  for (std::size_t d = 0; d < out.mean.size(); ++d) {
    float mean = 0.0f;
    float log_variance = 0.0f;
    for (std::size_t i = 0; i < styles.size(); ++i) {
      mean += weights[i] * styles[i]->mean[d];
      log_variance += weights[i] * styles[i]->log_variance[d];
    }
    out.mean[d] = mean;
    out.log_variance[d] = log_variance;
  }
  return out;
}

StyleBank::StyleBank(StyleState state) : state_(std::move(state)) {}

void StyleBank::set_fixed(const StyleLatent& style, std::string source) {
  state_.current = style;
  state_.mode = StyleMode::fixed;
  state_.source = std::move(source);
}

void StyleBank::set_learning() {
  state_.mode = StyleMode::learn;
  state_.source = "learn";
  if (state_.learned_calls > 0) state_.current = state_.learned;
}

bool StyleBank::learn(const StyleLatent& encoded_call, float rate) {
  if (state_.frozen) return false;
  if (state_.learned_calls == 0) {
    state_.learned = encoded_call;
  } else {
    const std::array<const StyleLatent*, 2> styles{&state_.learned, &encoded_call};
    const std::array<float, 2> weights{1.0f - rate, rate};
    state_.learned = blend(styles, weights);
  }
  ++state_.learned_calls;
  if (state_.mode == StyleMode::learn) state_.current = state_.learned;
  return true;
}

const StyleLatent& StyleBank::slot(const std::string& name) const {
  const auto it = state_.slots.find(name);
  if (it == state_.slots.end()) throw StyleError("no style slot '" + name + "'");
  return it->second;
}

void StyleBank::save_slot(const std::string& name) {
  if (!is_valid_name(name)) {
    throw StyleError("style slot name '" + name + "' must be 1-32 letters, digits, '-' or '_'");
  }
  if (!state_.slots.contains(name) && state_.slots.size() >= style::kMaxStyleSlots) {
    throw StyleError("too many style slots (" + std::to_string(style::kMaxStyleSlots) + ")");
  }
  state_.slots[name] = state_.current;
}

void StyleBank::recall_slot(const std::string& name) { set_fixed(slot(name), "slot " + name); }

void StyleBank::delete_slot(const std::string& name) {
  slot(name);
  if (std::find(state_.corners.begin(), state_.corners.end(), name) != state_.corners.end()) {
    throw StyleError("style slot '" + name + "' is a pad corner; assign another corner first");
  }
  state_.slots.erase(name);
}

void StyleBank::morph(const std::string& a, const std::string& b, float t) {
  t = std::clamp(t, 0.0f, 1.0f);
  const std::array<const StyleLatent*, 2> styles{&slot(a), &slot(b)};
  const std::array<float, 2> weights{1.0f - t, t};
  set_fixed(blend(styles, weights), "morph " + a + " " + b + " " + std::to_string(t));
}

void StyleBank::set_corners(const std::array<std::string, 4>& corners) {
  for (const std::string& name : corners) slot(name);
  state_.corners = corners;
  if (state_.mode == StyleMode::pad) update_pad();
}

void StyleBank::set_pad(float x, float y) {
  for (const std::string& name : state_.corners) {
    if (name.empty()) throw StyleError("the XY pad needs a slot on each of its four corners");
  }
  state_.pad_x = std::clamp(x, 0.0f, 1.0f);
  state_.pad_y = std::clamp(y, 0.0f, 1.0f);
  state_.mode = StyleMode::pad;
  state_.source = "pad";
  update_pad();
}

void StyleBank::update_pad() {
  const float x = state_.pad_x;
  const float y = state_.pad_y;
  const std::array<const StyleLatent*, 4> styles{&slot(state_.corners[0]), &slot(state_.corners[1]),
                                                 &slot(state_.corners[2]), &slot(state_.corners[3])};
  const std::array<float, 4> weights{(1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y};
  state_.current = blend(styles, weights);
}

}  // namespace tatumflow::daemon
