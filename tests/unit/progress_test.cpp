// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/progress.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tatumflow {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  return text;
}

TEST(ProgressBar, LogModePrintsOnlyTheFinalLineWithTheExactCount) {
  File file(std::tmpfile());
  ASSERT_TRUE(file);
  {
    ProgressBar bar("tokenize", 10000,
                    {.unit = "files", .stream = file.get(), .mode = ProgressBar::Mode::kAuto});
    EXPECT_FALSE(bar.interactive());  // a temporary file is no terminal
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&bar] {
        for (int i = 0; i < 2500; ++i) bar.add();
      });
    }
    for (std::thread& thread : threads) thread.join();
    bar.set_text("failed 0");
    EXPECT_EQ(bar.count(), 10000U);
  }  // the destructor finishes
  const std::string text = contents(file.get());
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("tokenize [========================] 10000/10000 files  100%"), std::string::npos)
      << text;
  EXPECT_NE(text.find("failed 0"), std::string::npos) << text;
}

TEST(ProgressBar, InteractiveModeRedrawsAtMostTenTimesASecond) {
  File file(std::tmpfile());
  ASSERT_TRUE(file);
  ProgressBar bar("train", 1000, {.unit = "", .stream = file.get(), .mode = ProgressBar::Mode::kInteractive});
  for (int i = 0; i < 1000; ++i) bar.add();
  bar.finish();
  bar.finish();
  const std::string text = contents(file.get());
  const auto redraws = std::count(text.begin(), text.end(), '\r');
  // The first add() draws at once and finish() once more; the loop takes far
  // less than 100 ms, so a slow machine adds a redraw or two, never hundreds.
  EXPECT_GE(redraws, 2);
  EXPECT_LE(redraws, 10);
  EXPECT_NE(text.find("\x1b[K"), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_NE(text.find("1000/1000"), std::string::npos);
}

TEST(ProgressBar, UnknownTotalShowsCountAndRateOnly) {
  File file(std::tmpfile());
  ASSERT_TRUE(file);
  ProgressBar bar("scan", 0,
                  {.unit = "notes", .stream = file.get(), .mode = ProgressBar::Mode::kFinalLineOnly});
  bar.add(42);
  bar.finish();
  const std::string text = contents(file.get());
  EXPECT_EQ(text.find('['), std::string::npos);
  EXPECT_NE(text.find("scan 42 notes"), std::string::npos) << text;
}

TEST(ProgressBar, DurationsAreCompact) {
  EXPECT_EQ(format_duration(45.2), "45s");
  EXPECT_EQ(format_duration(74), "1m14s");
  EXPECT_EQ(format_duration(7380), "2h03m");
  EXPECT_EQ(format_duration(-1), "?");
}

}  // namespace
}  // namespace tatumflow
