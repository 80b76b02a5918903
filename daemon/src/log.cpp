// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/log.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tatumflow::daemon {

LogLevel parse_log_level(std::string_view word) {
  for (const LogLevel level :
       {LogLevel::error, LogLevel::warning, LogLevel::notice, LogLevel::info, LogLevel::debug}) {
    if (word == to_string(level)) return level;
  }
  throw std::invalid_argument("log level '" + std::string(word) +
                              "' is not one of error, warning, notice, info, debug");
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warning:
      return "warning";
    case LogLevel::notice:
      return "notice";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "unknown";
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat info {};
  if (fstat(2, &info) != 0) return false;
  return info.st_dev == device && info.st_ino == inode;
}

Logger::Logger(LogLevel threshold, bool journal_prefixes, std::FILE* out)
    : threshold_(threshold), journal_prefixes_(journal_prefixes), out_(out) {}

Logger::Logger(LogLevel threshold) : Logger(threshold, stderr_is_journal(), stderr) {}

bool Logger::enabled(LogLevel level) const {
  const std::lock_guard lock(mutex_);
  return static_cast<int>(level) <= static_cast<int>(threshold_);
}

void Logger::set_threshold(LogLevel threshold) {
  const std::lock_guard lock(mutex_);
  threshold_ = threshold;
}

void Logger::log(LogLevel level, std::string_view message) {
  std::string line;
  line.reserve(message.size() + 12);
  if (journal_prefixes_) {
    line += '<';
    line += static_cast<char>('0' + static_cast<int>(level));
    line += '>';
  } else {
    line += to_string(level);
    line += ": ";
  }
  for (const char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  const std::lock_guard lock(mutex_);
  if (static_cast<int>(level) > static_cast<int>(threshold_)) return;
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace tatumflow::daemon
