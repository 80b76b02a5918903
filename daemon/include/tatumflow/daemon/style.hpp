// SPDX-License-Identifier: GPL-3.0-or-later
// A session's style: the latent the model is conditioned on (the style VAE's
// posterior, model::StyleLatent), where it came from, saved slots to morph
// between, and the answer controls the player sets with it. Everything here is
// persisted in the state directory and restored bit for bit on restart.
//
// Sources of the current latent:
//  * fixed: a bundled style ("tatum"), a MIDI file encoded by the model, a
//    saved .style file, a recalled slot, or a morph between two slots;
//  * learn: an exponential moving average of the player's encoded calls;
//  * pad: an XY pad, bilinear between four corner slots.
// Freezing stops learning; explicit commands (recall, morph, pad) still work.
//
// File format (little-endian), version 1:
//   "TFSTYLE\0" | u32 version | u32 style dim (64) | u32 body bytes | body | u64 checksum
//   body: latent current | latent learned | u32 learned calls | u8 mode | u8 frozen
//         | f32 pad x, pad y, temperature, creativity, density | u32 bars
//         | string source | 4 x string corner | u32 slot count | (string name | latent) per slot
//   latent: f32 mean[64], f32 log_variance[64]; string: u16 length, bytes
//   checksum: FNV-1a-64 of every byte before it.
//
// StyleBank: event-loop thread. File functions: any non-real-time thread.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tatumflow/engine/model_api.hpp"

namespace tatumflow::daemon {

using model::StyleLatent;

// Sum of `weights[i] * styles[i]`, mean and log variance alike (the weights of
// a morph sum to 1). Sizes must match. // any thread
[[nodiscard]] StyleLatent blend(std::span<const StyleLatent* const> styles, std::span<const float> weights);

enum class StyleMode : std::uint8_t { fixed = 0, learn = 1, pad = 2 };
[[nodiscard]] const char* to_string(StyleMode mode);  // any thread

struct AnswerControls {
  float temperature = 1.0f;
  float creativity = 0.5f;  // how far from the style's mean a sample may go, 0-1
  float density = 1.0f;     // notes relative to the call, 0.1-4
  int bars = 4;             // bars per answer
  friend bool operator==(const AnswerControls&, const AnswerControls&) = default;
};

struct StyleState {
  StyleLatent current{};
  StyleLatent learned{};
  std::uint32_t learned_calls = 0;
  StyleMode mode = StyleMode::fixed;
  bool frozen = false;
  float pad_x = 0.0f;
  float pad_y = 0.0f;
  AnswerControls controls;
  std::string source;                  // where `current` came from, for /status
  std::array<std::string, 4> corners;  // pad corners (x,y) = (0,0) (1,0) (0,1) (1,1); slot names
  std::map<std::string, StyleLatent> slots;
};

[[nodiscard]] bool bitwise_equal(const StyleLatent& a, const StyleLatent& b);  // any thread
[[nodiscard]] bool bitwise_equal(const StyleState& a, const StyleState& b);    // any thread

class StyleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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

// Writes atomically (a temporary file renamed over `path`). Throws StyleError
// naming the file. // any non-real-time thread
void save_style_state(const std::filesystem::path& path, const StyleState& state);
// Throws StyleError "<path>: <problem>" for a missing, truncated, foreign,
// newer-version, wrong-dimension or corrupt (checksum) file.
// // any non-real-time thread
[[nodiscard]] StyleState load_style_state(const std::filesystem::path& path);
// The same on bytes (`name` for messages). // any non-real-time thread
[[nodiscard]] std::vector<std::uint8_t> encode_style_state(const StyleState& state);
[[nodiscard]] StyleState decode_style_state(std::span<const std::uint8_t> bytes, const std::string& name);

}  // namespace tatumflow::daemon
