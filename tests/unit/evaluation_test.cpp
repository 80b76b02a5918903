// SPDX-License-Identifier: GPL-3.0-or-later
// The windows `tatumflow eval` scores: every token after the first exactly
// once, in order, each with the context the options promise.
#include "tatumflow/engine/evaluation.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>

namespace tatumflow {
namespace {

using tokens::Token;

// The positions in `sequence` of every scored token, in scoring order, and the
// fewest predecessors any of them (after the first window) saw.
struct Coverage {
  std::vector<std::size_t> scored;
  std::size_t least_context_after_first_window = SIZE_MAX;
};

Coverage coverage(const std::vector<Token>& sequence, const std::vector<ScoredWindow>& windows) {
  Coverage out;
  for (std::size_t w = 0; w < windows.size(); ++w) {
    const auto offset = static_cast<std::size_t>(windows[w].tokens.data() - sequence.data());
    for (std::size_t i = windows[w].first_scored; i < windows[w].tokens.size(); ++i) {
      out.scored.push_back(offset + i);
      if (w > 0) out.least_context_after_first_window = std::min(out.least_context_after_first_window, i);
    }
  }
  return out;
}

std::vector<std::size_t> every_position_after_the_first(std::size_t length) {
  std::vector<std::size_t> positions(length - 1);
  std::iota(positions.begin(), positions.end(), 1);
  return positions;
}

TEST(ScoredWindows, EveryTokenAfterTheFirstOnceWithTheContextAsked) {
  for (std::size_t length : {2, 10, 128, 129, 130, 1000, 1025}) {
    std::vector<Token> sequence(length);
    std::iota(sequence.begin(), sequence.end(), Token{0});
    for (std::size_t context : {0, 1, 64, 127}) {
      const auto windows = scored_windows(sequence, 129, context);
      const Coverage covered = coverage(sequence, windows);
      EXPECT_EQ(covered.scored, every_position_after_the_first(length))
          << length << " tokens, context " << context;
      for (const auto& window : windows) EXPECT_LE(window.tokens.size(), 129U);
      if (windows.size() > 1) {
        EXPECT_EQ(covered.least_context_after_first_window, std::max<std::size_t>(context, 1));
      }
    }
  }
}

TEST(ScoredWindows, WithoutContextWindowsShareOneToken) {
  std::vector<Token> sequence(300, Token{7});
  const auto windows = scored_windows(sequence, 100, 0);
  ASSERT_EQ(windows.size(), 4U);  // starting at 0, 99, 198 and 297
  EXPECT_EQ(windows[1].tokens.data(), sequence.data() + 99);
  EXPECT_EQ(windows[1].first_scored, 1U);
  EXPECT_EQ(windows[3].tokens.size(), 3U);
  EXPECT_TRUE(scored_windows(std::vector<Token>(1, Token{7}), 100, 0).empty());
}

// The style/theory reference of a window comes from `before`: it must be the
// past of every token the window scores, and all of it.
TEST(ScoredWindows, BeforeIsEverythingThatPrecedesTheWindow) {
  std::vector<Token> sequence(1000);
  std::iota(sequence.begin(), sequence.end(), Token{0});
  for (const auto& window : scored_windows(sequence, 129, 64)) {
    EXPECT_EQ(window.before.data(), sequence.data());
    EXPECT_EQ(window.before.data() + window.before.size(), window.tokens.data());
  }
}

TEST(StyleReference, OpensAtAChunkBoundaryInItsFirstHalf) {
  std::vector<Token> performance(100, Token{200});
  performance[30] = tokens::kChunk;
  performance[80] = tokens::kChunk;
  // [20, 100): 30 lies in the first half, so the reference starts there.
  auto reference = dataset::style_reference(performance, 20, 100);
  EXPECT_EQ(reference.data(), performance.data() + 30);
  EXPECT_EQ(reference.size(), 70U);
  // [40, 100): the only boundary, 80, lies in the second half; keep the whole span.
  reference = dataset::style_reference(performance, 40, 100);
  EXPECT_EQ(reference.data(), performance.data() + 40);
  EXPECT_EQ(reference.size(), 60U);
  EXPECT_TRUE(dataset::style_reference(performance, 10, 10).empty());
}

TEST(ScoredWindows, ContextMustLeaveRoomToScore) {
  const std::vector<Token> sequence(50, Token{7});
  EXPECT_THROW((void)scored_windows(sequence, 64, 63), std::invalid_argument);
  EXPECT_THROW((void)scored_windows(sequence, 1, 0), std::invalid_argument);
  try {
    (void)scored_windows(sequence, 64, 80);
    FAIL();
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("80 context tokens"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace tatumflow
