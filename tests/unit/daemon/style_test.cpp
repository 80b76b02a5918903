// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/style.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "tatumflow/engine/random.hpp"

namespace tatumflow::daemon {
namespace {

StyleLatent random_latent(std::uint64_t seed) {
  Rng rng(seed);
  StyleLatent z;
  for (float& v : z.mean) v = static_cast<float>(rng.uniform(-3.0, 3.0));
  for (float& v : z.log_variance) v = static_cast<float>(rng.uniform(-6.0, 1.0));
  return z;
}

StyleLatent constant(float v) {
  StyleLatent z;
  z.mean.fill(v);
  z.log_variance.fill(-v);
  return z;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("tatumflow_style_test_" + name);
}

TEST(StyleBank, LearnsAnExponentialMovingAverage) {
  StyleBank bank;
  bank.set_learning();
  EXPECT_TRUE(bank.learn(constant(1.0f), 0.25f));
  EXPECT_EQ(bank.current().mean[0], 1.0f);  // the first call is taken whole
  EXPECT_TRUE(bank.learn(constant(5.0f), 0.25f));
  EXPECT_FLOAT_EQ(bank.current().mean[7], 2.0f);  // 0.75 * 1 + 0.25 * 5
  EXPECT_FLOAT_EQ(bank.current().log_variance[7], -2.0f);
  bank.freeze(true);
  EXPECT_FALSE(bank.learn(constant(100.0f), 0.25f));
  EXPECT_FLOAT_EQ(bank.current().mean[0], 2.0f);
  EXPECT_EQ(bank.state().learned_calls, 2u);
}

TEST(StyleBank, LearningInAnotherModeOnlyUpdatesTheAverage) {
  StyleBank bank;
  bank.set_fixed(constant(9.0f), "tatum");
  bank.learn(constant(1.0f), 0.5f);
  EXPECT_EQ(bank.current().mean[0], 9.0f);
  bank.set_learning();
  EXPECT_EQ(bank.current().mean[0], 1.0f);
}

TEST(StyleBank, SlotsMorphAndPad) {
  StyleBank bank;
  const std::array<float, 4> values{0.0f, 1.0f, 2.0f, 4.0f};
  const std::array<std::string, 4> names{"a", "b", "c", "d"};
  for (std::size_t i = 0; i < 4; ++i) {
    bank.set_fixed(constant(values[i]), "test");
    bank.save_slot(names[i]);
  }
  bank.morph("a", "d", 0.25f);
  EXPECT_FLOAT_EQ(bank.current().mean[3], 1.0f);
  EXPECT_THROW(bank.set_pad(0.5f, 0.5f), StyleError);  // no corners yet
  bank.set_corners(names);
  bank.set_pad(0.5f, 0.5f);
  EXPECT_FLOAT_EQ(bank.current().mean[0], (0.0f + 1.0f + 2.0f + 4.0f) / 4);
  bank.set_pad(1.0f, 0.0f);
  EXPECT_FLOAT_EQ(bank.current().mean[0], 1.0f);
  bank.set_pad(0.0f, 2.0f);  // clamped to y = 1
  EXPECT_FLOAT_EQ(bank.current().mean[0], 2.0f);
  EXPECT_EQ(bank.state().mode, StyleMode::pad);
  bank.recall_slot("d");
  EXPECT_EQ(bank.current().mean[0], 4.0f);
  EXPECT_EQ(bank.state().mode, StyleMode::fixed);
  EXPECT_THROW(bank.recall_slot("zz"), StyleError);
  EXPECT_THROW(bank.save_slot("bad name"), StyleError);
  EXPECT_THROW(bank.delete_slot("a"), StyleError);  // a pad corner
  bank.save_slot("e");
  bank.delete_slot("e");
  EXPECT_EQ(bank.state().slots.count("e"), 0u);
}

StyleState full_state() {
  StyleState state;
  state.current = random_latent(1);
  state.learned = random_latent(2);
  // Values that a text format would round: denormals, negative zero, extremes.
  state.current.mean[0] = std::numeric_limits<float>::denorm_min();
  state.current.mean[1] = -0.0f;
  state.current.mean[2] = std::numeric_limits<float>::max();
  state.current.mean[3] = 0.1f;
  state.learned_calls = 17;
  state.mode = StyleMode::pad;
  state.frozen = true;
  state.pad_x = 0.3f;
  state.pad_y = 1.0f / 3.0f;
  state.controls = {0.7f, 0.2f, 1.3f, 8};
  state.source = "pad";
  state.corners = {"one", "two", "three", "four"};
  for (std::uint64_t i = 0; i < 4; ++i) state.slots[state.corners[i]] = random_latent(10 + i);
  return state;
}

TEST(StyleFile, RestoredBitForBit) {
  const StyleState state = full_state();
  const std::filesystem::path path = temp_path("roundtrip.style");
  save_style_state(path, state);
  const StyleState restored = load_style_state(path);
  EXPECT_TRUE(bitwise_equal(state, restored));
  EXPECT_EQ(std::bit_cast<std::uint32_t>(restored.current.mean[1]), 0x80000000u);  // -0 kept
  EXPECT_EQ(restored.current.mean[0], std::numeric_limits<float>::denorm_min());
  // Saving the restored state gives the same bytes.
  EXPECT_EQ(encode_style_state(restored), encode_style_state(state));
  std::filesystem::remove(path);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
}

TEST(StyleFile, DetectsAnyCorruptByte) {
  const std::vector<std::uint8_t> bytes = encode_style_state(full_state());
  // Flipping one bit anywhere is caught, by the header checks or the checksum.
  for (std::size_t i = 0; i < bytes.size(); i += 7) {
    std::vector<std::uint8_t> corrupt = bytes;
    corrupt[i] ^= 0x10;
    EXPECT_THROW((void)decode_style_state(corrupt, "x.style"), StyleError) << "byte " << i;
  }
}

TEST(StyleFile, ClearErrors) {
  const std::vector<std::uint8_t> bytes = encode_style_state(full_state());
  const auto message = [](std::span<const std::uint8_t> b) {
    try {
      (void)decode_style_state(b, "s.style");
    } catch (const StyleError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(std::span(bytes).first(bytes.size() - 3)).find("truncated"), std::string::npos);
  std::vector<std::uint8_t> version = bytes;
  version[8] = 2;
  EXPECT_NE(message(version).find("style file version 2"), std::string::npos);
  std::vector<std::uint8_t> dim = bytes;
  dim[12] = 32;
  EXPECT_NE(message(dim).find("32 dimensions"), std::string::npos);
  std::vector<std::uint8_t> body = bytes;
  body[100] ^= 1;
  EXPECT_NE(message(body).find("checksum mismatch"), std::string::npos);
  const std::vector<std::uint8_t> midi{'M', 'T', 'h', 'd', 0, 0, 0, 6};
  EXPECT_NE(message(midi).find("not a TatumFlow style file"), std::string::npos);
  EXPECT_EQ(message(midi).rfind("s.style: ", 0), 0u);
  EXPECT_THROW((void)load_style_state(temp_path("missing.style")), StyleError);
}

TEST(StyleFile, CorruptFileOnDiskFallsBackCleanly) {
  const std::filesystem::path path = temp_path("corrupt.style");
  save_style_state(path, full_state());
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  StyleState fallback;
  try {
    fallback = load_style_state(path);
    ADD_FAILURE() << "corrupt file accepted";
  } catch (const StyleError& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos);
  }
  EXPECT_EQ(fallback.learned_calls, 0u);
  std::filesystem::remove(path);
}

TEST(Style, BlendChecksSizes) {
  const StyleLatent a = constant(1.0f);
  const std::array<const StyleLatent*, 1> styles{&a};
  const std::array<float, 2> weights{0.5f, 0.5f};
  EXPECT_THROW((void)blend(styles, weights), std::invalid_argument);
}

}  // namespace
}  // namespace tatumflow::daemon
