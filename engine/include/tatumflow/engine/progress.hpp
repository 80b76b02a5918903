// SPDX-License-Identifier: GPL-3.0-or-later
// A one-line progress bar on stderr for long jobs (cache builds, training):
//   tokenize [=========>          ] 2403/5450 files  44%  41.2/s  ETA 1m14s  failed 0
// Redraws at most 10 times a second, and only when the stream is a terminal;
// otherwise it prints just the final line. add() is a relaxed atomic increment
// plus a clock read, so worker threads can call it per item. Allocates and
// writes to a stdio stream: never from a real-time thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace tatumflow {

class ProgressBar {
 public:
  enum class Mode {
    kAuto,           // redraw when the stream is a terminal, else only the final line
    kInteractive,    // always redraw in place
    kFinalLineOnly,  // never redraw, print the final line
  };
  struct Options {
    std::string unit;  // shown after the count, e.g. "files"
    std::FILE* stream = stderr;
    Mode mode = Mode::kAuto;
  };

  // total == 0: unknown, so no bar, percentage or ETA.
  ProgressBar(std::string label, std::uint64_t total, Options options);  // any thread
  ProgressBar(std::string label, std::uint64_t total);                   // any thread
  ~ProgressBar();  // finishes if finish() was not called
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void add(std::uint64_t count = 1);  // any thread
  void set_text(std::string text);    // any thread; free text after the numbers, e.g. "loss 2.31"
  void finish();                      // any thread; prints the final line once
  [[nodiscard]] std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] bool interactive() const { return interactive_; }

 private:
  void draw(bool final_line);
  [[nodiscard]] std::int64_t elapsed_ns() const;

  const std::string label_;
  const std::uint64_t total_;
  const Options options_;
  const bool interactive_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::int64_t> next_draw_ns_{0};
  std::atomic<bool> finished_{false};
  std::mutex draw_mutex_;  // guards text_ and the stream
  std::string text_;
};

// "1m14s", "2h03m", "45s": compact durations for progress lines and reports.
[[nodiscard]] std::string format_duration(double seconds);

}  // namespace tatumflow
