// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace tatumflow {

namespace {

constexpr std::int64_t kRedrawIntervalNs = 100'000'000;  // 10 redraws a second at most
constexpr int kBarWidth = 24;

bool resolve_interactive(const ProgressBar::Options& options) {
  switch (options.mode) {
    case ProgressBar::Mode::kInteractive:
      return true;
    case ProgressBar::Mode::kFinalLineOnly:
      return false;
    case ProgressBar::Mode::kAuto:
      break;
  }
  return options.stream != nullptr && ::isatty(::fileno(options.stream)) == 1;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", total / 3600, total / 60 % 60);
  } else if (total >= 60) {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", total / 60, total % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%llds", total);
  }
  return buffer;
}

ProgressBar::ProgressBar(std::string label, std::uint64_t total, Options options)
    : label_(std::move(label)),
      total_(total),
      options_(std::move(options)),
      interactive_(resolve_interactive(options_)),
      started_(std::chrono::steady_clock::now()) {}

ProgressBar::ProgressBar(std::string label, std::uint64_t total)
    : ProgressBar(std::move(label), total, Options{}) {}

ProgressBar::~ProgressBar() { finish(); }

std::int64_t ProgressBar::elapsed_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started_)
      .count();
}

void ProgressBar::add(std::uint64_t count) {
  count_.fetch_add(count, std::memory_order_relaxed);
  if (!interactive_ || finished_.load(std::memory_order_relaxed)) return;
  const std::int64_t now_ns = elapsed_ns();
  std::int64_t due_ns = next_draw_ns_.load(std::memory_order_relaxed);
  // Whoever moves the deadline draws; everyone else returns at once.
  if (now_ns < due_ns || !next_draw_ns_.compare_exchange_strong(due_ns, now_ns + kRedrawIntervalNs)) return;
  std::lock_guard lock(draw_mutex_);
  draw(false);
}

void ProgressBar::set_text(std::string text) {
  std::lock_guard lock(draw_mutex_);
  text_ = std::move(text);
}

void ProgressBar::finish() {
  if (finished_.exchange(true)) return;
  std::lock_guard lock(draw_mutex_);
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  if (options_.stream == nullptr) return;
  const std::uint64_t done = count();
  const double seconds = static_cast<double>(elapsed_ns()) * 1e-9;
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;

  std::string line = label_;
  char buffer[160];
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int filled = static_cast<int>(fraction * kBarWidth);
    std::string bar(kBarWidth, ' ');
    std::fill_n(bar.begin(), filled, '=');
    if (filled < kBarWidth) bar[static_cast<std::size_t>(filled)] = '>';
    std::snprintf(buffer, sizeof buffer, " [%s] %llu/%llu", bar.c_str(),
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_));
    line += buffer;
    if (!options_.unit.empty()) line += " " + options_.unit;
    std::snprintf(buffer, sizeof buffer, "  %.0f%%  %.1f/s", fraction * 100.0, rate);
    line += buffer;
    if (final_line) {
      line += "  in " + format_duration(seconds);
    } else if (rate > 0 && done < total_) {
      line += "  ETA " + format_duration(static_cast<double>(total_ - done) / rate);
    }
  } else {
    std::snprintf(buffer, sizeof buffer, " %llu", static_cast<unsigned long long>(done));
    line += buffer;
    if (!options_.unit.empty()) line += " " + options_.unit;
    std::snprintf(buffer, sizeof buffer, "  %.1f/s", rate);
    line += buffer;
    if (final_line) line += "  in " + format_duration(seconds);
  }
  if (!text_.empty()) line += "  " + text_;

  // \r and "erase to end of line" redraw in place; a log file gets whole lines only.
  if (interactive_) std::fputs("\r", options_.stream);
  std::fputs(line.c_str(), options_.stream);
  if (interactive_) std::fputs("\x1b[K", options_.stream);
  if (final_line) std::fputc('\n', options_.stream);
  std::fflush(options_.stream);
}

}  // namespace tatumflow
