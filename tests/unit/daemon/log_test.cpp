// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/log.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace tatumflow::daemon {
namespace {

std::string written(bool journal, LogLevel threshold, void (*body)(Logger&)) {
  std::FILE* out = std::tmpfile();
  Logger log(threshold, journal, out);
  body(log);
  std::rewind(out);
  std::string text;
  for (int c = std::fgetc(out); c != EOF; c = std::fgetc(out)) text += static_cast<char>(c);
  std::fclose(out);
  return text;
}

TEST(Logger, JournalPrefixesAndLevelWords) {
  const auto body = [](Logger& log) {
    log.error("e");
    log.warning("w");
    log.notice("n");
    log.info("i");
    log.debug("d");
  };
  EXPECT_EQ(written(true, LogLevel::debug, body), "<3>e\n<4>w\n<5>n\n<6>i\n<7>d\n");
  EXPECT_EQ(written(false, LogLevel::notice, body), "error: e\nwarning: w\nnotice: n\n");
}

TEST(Logger, OneCallIsOneLine) {
  EXPECT_EQ(written(true, LogLevel::info, [](Logger& log) { log.info("two\nlines"); }), "<6>two lines\n");
}

TEST(Logger, LevelNames) {
  EXPECT_EQ(parse_log_level("warning"), LogLevel::warning);
  EXPECT_EQ(to_string(LogLevel::debug), "debug");
  EXPECT_THROW((void)parse_log_level("verbose"), std::invalid_argument);
}

TEST(Logger, JournalDetectionComparesTheStream) {
  struct stat info {};
  ASSERT_EQ(fstat(2, &info), 0);
  const std::string mine = std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino);
  const char* saved = std::getenv("JOURNAL_STREAM");
  const std::string restore = saved ? saved : "";
  setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  setenv("JOURNAL_STREAM", "1:2", 1);
  EXPECT_FALSE(stderr_is_journal());
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  if (saved != nullptr) setenv("JOURNAL_STREAM", restore.c_str(), 1);
}

}  // namespace
}  // namespace tatumflow::daemon
