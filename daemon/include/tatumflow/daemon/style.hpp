// SPDX-License-Identifier: GPL-3.0-or-later
// A session's style: the latent the model is conditioned on (the style VAE's
// posterior, model::StyleLatent), where it came from, saved slots to morph
// between, and the answer controls the player sets with it. The whole state
// is a StyleState, persisted in the state directory as a .style file
// (engine/style_file.hpp has the format) and restored bit for bit on restart.
//
// Sources of the current latent:
//  * fixed: a bundled style ("tatum"), a MIDI file encoded by the model, a
//    saved .style file, a recalled slot, or a morph between two slots;
//  * learn: an exponential moving average of the player's encoded calls;
//  * pad: an XY pad, bilinear between four corner slots.
// Freezing stops learning; explicit commands (recall, morph, pad) still work.
//
// StyleBank: event-loop thread. File functions: any non-real-time thread.
#pragma once

#include <array>
#include <span>
#include <string>

#include "tatumflow/engine/style_file.hpp"

namespace tatumflow::daemon {

using model::StyleLatent;
using style::AnswerControls;
using style::bitwise_equal;
using style::decode_style_state;
using style::encode_style_state;
using style::load_style_state;
using style::save_style_state;
using style::StyleError;
using style::StyleMode;
using style::StyleState;

// Sum of `weights[i] * styles[i]`, mean and log variance alike (the weights of
// a morph sum to 1). Sizes must match. // any thread
[[nodiscard]] StyleLatent blend(std::span<const StyleLatent* const> styles, std::span<const float> weights);

class StyleBank {
 public:
  explicit StyleBank(StyleState state = {});  // event-loop thread (all below)

  [[nodiscard]] const StyleState& state() const { return state_; }
  [[nodiscard]] const StyleLatent& current() const { return state_.current; }
  [[nodiscard]] AnswerControls& controls() { return state_.controls; }

  // A fixed style from `source` (a bundled name or a file).
  void set_fixed(const StyleLatent& style, std::string source);
  // Follow the learned average from now on (the current style until a call is learned).
  void set_learning();
  // Folds one encoded call into the learned average with weight `rate`;
  // false (nothing changes) while frozen.
  bool learn(const StyleLatent& encoded_call, float rate);
  void freeze(bool frozen) { state_.frozen = frozen; }

  // Slots. Names must satisfy is_valid_name; StyleError otherwise, or for an
  // unknown slot.
  void save_slot(const std::string& name);
  void recall_slot(const std::string& name);
  void delete_slot(const std::string& name);
  // (1 - t) a + t b, t in [0, 1].
  void morph(const std::string& a, const std::string& b, float t);
  // Pad corners (empty names are not allowed: every corner needs a slot).
  void set_corners(const std::array<std::string, 4>& corners);
  // Moves the pad (x, y clamped to [0, 1]) and follows it. StyleError until
  // all corners are set.
  void set_pad(float x, float y);

 private:
  const StyleLatent& slot(const std::string& name) const;
  void update_pad();

  StyleState state_;
};

}  // namespace tatumflow::daemon
