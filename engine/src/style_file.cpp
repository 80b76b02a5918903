// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/style_file.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>
#include <system_error>

#include "tatumflow/engine/corpus.hpp"

namespace tatumflow::style {

namespace {

constexpr std::array<std::uint8_t, 8> kMagic{'T', 'F', 'S', 'T', 'Y', 'L', 'E', 0};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 8 + 4 + 4 + 4;
constexpr std::size_t kChecksumBytes = 8;

class Writer {
 public:
  void u8(std::uint8_t v) { bytes_.push_back(v); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void f32(float v) { u32(std::bit_cast<std::uint32_t>(v)); }
  void text(const std::string& s) {
    if (s.size() > kMaxStyleTextBytes)
      throw StyleError("style text longer than 4096 bytes: " + s.substr(0, 40) + "...");
    u16(static_cast<std::uint16_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void latent(const StyleLatent& z) {
    for (const float v : z.mean) f32(v);
    for (const float v : z.log_variance) f32(v);
  }
  std::vector<std::uint8_t>& bytes() { return bytes_; }

 private:
  void le(std::uint64_t v, int count) {
    for (int i = 0; i < count; ++i) bytes_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t> bytes_;
};

class Reader {
 public:
  Reader(std::span<const std::uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}
  [[noreturn]] void fail(const std::string& problem) const {
    throw StyleError(name_ + ": byte " + std::to_string(at_) + ": " + problem);
  }
  std::uint64_t le(int count) {
    if (bytes_.size() - at_ < static_cast<std::size_t>(count)) fail("truncated");
    std::uint64_t v = 0;
    for (int i = 0; i < count; ++i) v |= static_cast<std::uint64_t>(bytes_[at_ + i]) << (8 * i);
    at_ += static_cast<std::size_t>(count);
    return v;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  float f32() {
    const float v = std::bit_cast<float>(static_cast<std::uint32_t>(le(4)));
    if (!std::isfinite(v)) fail("a value is not a finite number");
    return v;
  }
  std::string text() {
    const auto size = static_cast<std::size_t>(le(2));
    if (size > kMaxStyleTextBytes) fail("text longer than 4096 bytes");
    if (bytes_.size() - at_ < size) fail("truncated");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + at_), size);
    at_ += size;
    return s;
  }
  StyleLatent latent() {
    StyleLatent z;
    for (float& v : z.mean) v = f32();
    for (float& v : z.log_variance) v = f32();
    return z;
  }
  [[nodiscard]] std::size_t at() const { return at_; }

 private:
  std::span<const std::uint8_t> bytes_;
  const std::string& name_;
  std::size_t at_ = 0;
};

std::uint64_t checksum(std::span<const std::uint8_t> bytes) {
  return dataset::fnv1a64(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace

const char* to_string(StyleMode mode) {
  switch (mode) {
    case StyleMode::fixed:
      return "fixed";
    case StyleMode::learn:
      return "learn";
    case StyleMode::pad:
      return "pad";
  }
  return "unknown";
}

bool bitwise_equal(const StyleLatent& a, const StyleLatent& b) {
  return std::memcmp(a.mean.data(), b.mean.data(), sizeof(a.mean)) == 0 &&
         std::memcmp(a.log_variance.data(), b.log_variance.data(), sizeof(a.log_variance)) == 0;
}

bool bitwise_equal(const StyleState& a, const StyleState& b) {
  const auto same_float = [](float x, float y) {
    return std::bit_cast<std::uint32_t>(x) == std::bit_cast<std::uint32_t>(y);
  };
  if (!bitwise_equal(a.current, b.current) || !bitwise_equal(a.learned, b.learned)) return false;
  if (a.learned_calls != b.learned_calls || a.mode != b.mode || a.frozen != b.frozen) return false;
  if (!same_float(a.pad_x, b.pad_x) || !same_float(a.pad_y, b.pad_y)) return false;
  if (!same_float(a.controls.temperature, b.controls.temperature) ||
      !same_float(a.controls.creativity, b.controls.creativity) ||
      !same_float(a.controls.density, b.controls.density) || a.controls.bars != b.controls.bars) {
    return false;
  }
  if (a.source != b.source || a.corners != b.corners || a.slots.size() != b.slots.size()) return false;
  return std::equal(a.slots.begin(), a.slots.end(), b.slots.begin(), [](const auto& x, const auto& y) {
    return x.first == y.first && bitwise_equal(x.second, y.second);
  });
}

std::vector<std::uint8_t> encode_style_state(const StyleState& state) {
  Writer body;
  body.latent(state.current);
  body.latent(state.learned);
  body.u32(state.learned_calls);
  body.u8(static_cast<std::uint8_t>(state.mode));
  body.u8(state.frozen ? 1 : 0);
  body.f32(state.pad_x);
  body.f32(state.pad_y);
  body.f32(state.controls.temperature);
  body.f32(state.controls.creativity);
  body.f32(state.controls.density);
  body.u32(static_cast<std::uint32_t>(state.controls.bars));
  body.text(state.source);
  for (const std::string& corner : state.corners) body.text(corner);
  body.u32(static_cast<std::uint32_t>(state.slots.size()));
  for (const auto& [name, latent] : state.slots) {
    body.text(name);
    body.latent(latent);
  }

  Writer file;
  for (const std::uint8_t b : kMagic) file.u8(b);
  file.u32(kVersion);
  file.u32(static_cast<std::uint32_t>(model::kStyleDim));
  file.u32(static_cast<std::uint32_t>(body.bytes().size()));
  file.bytes().insert(file.bytes().end(), body.bytes().begin(), body.bytes().end());
  file.u64(checksum(file.bytes()));
  return std::move(file.bytes());
}

StyleState decode_style_state(std::span<const std::uint8_t> bytes, const std::string& name) {
  Reader header(bytes, name);
  if (bytes.size() < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), bytes.begin())) {
    throw StyleError(name + ": not a TatumFlow style file");
  }
  for (std::size_t i = 0; i < kMagic.size(); ++i) header.u8();
  const std::uint32_t version = header.u32();
  if (version != kVersion) {
    throw StyleError(name + ": style file version " + std::to_string(version) +
                     " (this build reads version " + std::to_string(kVersion) + ")");
  }
  const std::uint32_t dim = header.u32();
  if (dim != static_cast<std::uint32_t>(model::kStyleDim)) {
    throw StyleError(name + ": style latents have " + std::to_string(dim) + " dimensions, this build uses " +
                     std::to_string(model::kStyleDim));
  }
  const std::uint32_t body_bytes = header.u32();
  if (bytes.size() != kHeaderBytes + body_bytes + kChecksumBytes) {
    throw StyleError(name + ": " + std::to_string(bytes.size()) + " bytes where the header promises " +
                     std::to_string(kHeaderBytes + std::size_t{body_bytes} + kChecksumBytes) +
                     " (truncated?)");
  }
  const std::span<const std::uint8_t> covered = bytes.first(kHeaderBytes + body_bytes);
  Reader trailer(bytes.subspan(covered.size()), name);
  if (trailer.le(8) != checksum(covered))
    throw StyleError(name + ": checksum mismatch (the file is corrupt)");

  Reader r(bytes.subspan(kHeaderBytes, body_bytes), name);
  StyleState state;
  state.current = r.latent();
  state.learned = r.latent();
  state.learned_calls = r.u32();
  const std::uint8_t mode = r.u8();
  if (mode > static_cast<std::uint8_t>(StyleMode::pad)) r.fail("unknown style mode " + std::to_string(mode));
  state.mode = static_cast<StyleMode>(mode);
  state.frozen = r.u8() != 0;
  state.pad_x = r.f32();
  state.pad_y = r.f32();
  state.controls.temperature = r.f32();
  state.controls.creativity = r.f32();
  state.controls.density = r.f32();
  state.controls.bars = static_cast<int>(r.u32());
  if (state.controls.bars < 1 || state.controls.bars > 32) r.fail("bars per answer outside 1-32");
  state.source = r.text();
  for (std::string& corner : state.corners) corner = r.text();
  const std::uint32_t slots = r.u32();
  if (slots > kMaxStyleSlots) r.fail("more than " + std::to_string(kMaxStyleSlots) + " slots");
  for (std::uint32_t i = 0; i < slots; ++i) {
    std::string slot_name = r.text();
    state.slots[std::move(slot_name)] = r.latent();
  }
  if (r.at() != body_bytes) r.fail("unexpected bytes after the last slot");
  return state;
}

void save_style_state(const std::filesystem::path& path, const StyleState& state) {
  const std::vector<std::uint8_t> bytes = encode_style_state(state);
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw StyleError(temporary.string() + ": cannot write the style file");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) throw StyleError(path.string() + ": cannot replace the style file: " + error.message());
}

StyleState load_style_state(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StyleError(path.string() + ": cannot open the style file");
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
  if (in.bad()) throw StyleError(path.string() + ": cannot read the style file");
  return decode_style_state(bytes, path.string());
}

}  // namespace tatumflow::style
