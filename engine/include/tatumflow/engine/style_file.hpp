// SPDX-License-Identifier: GPL-3.0-or-later
// The .style file: a point in the style VAE's space (model::StyleLatent) and
// what a tatumflowd session keeps with it. `tatumflow style encode` writes a
// performer's style (models/styles/tatum.style); tatumflowd loads such files
// as a session's style and saves each session's whole state in one, restored
// bit for bit on restart. No torch, so the CLI and the daemon share it.
//
// File format (little-endian), version 1:
//   "TFSTYLE\0" | u32 version | u32 style dim (64) | u32 body bytes | body | u64 checksum
//   body: latent current | latent learned | u32 learned calls | u8 mode | u8 frozen
//         | f32 pad x, pad y, temperature, creativity, density | u32 bars
//         | string source | 4 x string corner | u32 slot count | (string name | latent) per slot
//   latent: f32 mean[64], f32 log_variance[64]; string: u16 length, bytes
//   checksum: FNV-1a-64 of every byte before it.
//
// Every function here allocates or does file I/O: any non-real-time thread.
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

namespace tatumflow::style {

using model::StyleLatent;

inline constexpr std::size_t kMaxStyleTextBytes = 4096;
inline constexpr std::uint32_t kMaxStyleSlots = 4096;

// Where a session's current latent comes from: a fixed style, the learned
// average of the player's calls, or the XY pad between four slots.
enum class StyleMode : std::uint8_t { fixed = 0, learn = 1, pad = 2 };
[[nodiscard]] const char* to_string(StyleMode mode);

// The answer controls a player sets along with the style.
struct AnswerControls {
  float temperature = 1.0f;
  float creativity = 0.5f;  // how far from the style's mean a sample may go, 0-1
  float density = 1.0f;     // notes relative to the call, 0.1-4
  int bars = 4;             // bars per answer, 1-32
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
  std::string source;                  // where `current` came from, for people (at most 4096 bytes)
  std::array<std::string, 4> corners;  // pad corners (x,y) = (0,0) (1,0) (0,1) (1,1); slot names
  std::map<std::string, StyleLatent> slots;
};

[[nodiscard]] bool bitwise_equal(const StyleLatent& a, const StyleLatent& b);
[[nodiscard]] bool bitwise_equal(const StyleState& a, const StyleState& b);

// A style file that cannot be read or written, or is not a valid one; what()
// starts with the file's name.
class StyleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes atomically (a temporary file renamed over `path`). Throws StyleError
// naming the file.
void save_style_state(const std::filesystem::path& path, const StyleState& state);
// Throws StyleError "<path>: <problem>" for a missing, truncated, foreign,
// newer-version, wrong-dimension or corrupt (checksum) file.
[[nodiscard]] StyleState load_style_state(const std::filesystem::path& path);
// The same on bytes (`name` for messages).
[[nodiscard]] std::vector<std::uint8_t> encode_style_state(const StyleState& state);
[[nodiscard]] StyleState decode_style_state(std::span<const std::uint8_t> bytes, const std::string& name);

}  // namespace tatumflow::style
