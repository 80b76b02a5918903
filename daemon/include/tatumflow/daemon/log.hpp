// SPDX-License-Identifier: GPL-3.0-or-later
// Log lines for people and for journald. Under systemd (stderr connected to the
// journal, announced by JOURNAL_STREAM) each line starts with the sd-daemon
// priority prefix "<3>".."<7>" so journalctl can filter and colour by level;
// on a terminal it starts with the level word instead.
//
// Real-time threads (MIDI input, scheduler, JACK) never log: they count things
// in atomics that the event loop reports. Every other thread may log; a line is
// written with one fwrite under a mutex, so lines from threads never interleave.
#pragma once

#include <cstdio>
#include <mutex>
#include <string_view>

namespace tatumflow::daemon {

// Values are the syslog priorities journald ranks by.
enum class LogLevel : int { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// "error", "warning", "notice", "info", "debug"; throws std::invalid_argument
// naming the bad word. // any thread
[[nodiscard]] LogLevel parse_log_level(std::string_view word);
[[nodiscard]] std::string_view to_string(LogLevel level);  // any thread

// True when stderr is the stream systemd announced in JOURNAL_STREAM
// ("<device>:<inode>", compared with fstat of fd 2, as sd_journal_stream_fd
// documents). // any thread
[[nodiscard]] bool stderr_is_journal();

class Logger {
 public:
  // Lines at `threshold` or more urgent go to `out`; `journal_prefixes` picks
  // "<N>" prefixes over level words. // any thread
  Logger(LogLevel threshold, bool journal_prefixes, std::FILE* out = stderr);
  // Logs to stderr with prefixes chosen by stderr_is_journal(). // any thread
  explicit Logger(LogLevel threshold = LogLevel::info);

  // Writes one line (a trailing newline is added; embedded newlines become
  // spaces so one call is one journal entry). // any non-real-time thread
  void log(LogLevel level, std::string_view message);
  void error(std::string_view message) { log(LogLevel::error, message); }
  void warning(std::string_view message) { log(LogLevel::warning, message); }
  void notice(std::string_view message) { log(LogLevel::notice, message); }
  void info(std::string_view message) { log(LogLevel::info, message); }
  void debug(std::string_view message) { log(LogLevel::debug, message); }

  [[nodiscard]] bool enabled(LogLevel level) const;  // any thread
  void set_threshold(LogLevel threshold);            // any thread

 private:
  mutable std::mutex mutex_;
  LogLevel threshold_;
  bool journal_prefixes_;
  std::FILE* out_;
};

}  // namespace tatumflow::daemon
