// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/scheduler.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

#include "tatumflow/protocol/midi_port.hpp"

namespace tatumflow::daemon {

namespace {

// Idle wake-up: commands and new events wake the thread anyway.
constexpr std::int64_t kIdleWaitUs = 100'000;

bool earlier(const auto& a, const auto& b) {
  return a.due_us != b.due_us ? a.due_us < b.due_us : a.sequence < b.sequence;
}

// std::*_heap wants "less" for a max-heap; this makes the earliest the top.
constexpr auto kHeapOrder = [](const auto& a, const auto& b) { return earlier(b, a); };

}  // namespace

bool SendNowSink::deliver(const MidiEvent& event) noexcept { return port_.send(event); }

Scheduler::Scheduler(std::size_t capacity, std::int64_t late_tolerance_us)
    : late_tolerance_us_(late_tolerance_us),
      input_(capacity),
      commands_(64),
      heap_(std::make_unique<Entry[]>(capacity)),
      heap_capacity_(capacity) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_sink(std::uint8_t port, OutputSink* sink) {
  if (port >= kMaxPorts)
    throw std::out_of_range("scheduler: port " + std::to_string(port) + " is past the last (7)");
  if (running()) throw std::logic_error("scheduler: sinks must be set before start()");
  sinks_[port] = sink;
}

bool Scheduler::start(int realtime_priority, Logger& log) {
  if (running()) throw std::logic_error("scheduler: already started");
  thread_ = std::thread([this] { run(); });
  realtime_ = false;
  if (realtime_priority <= 0) {
    log.info("scheduler: running at normal priority (scheduler.realtime_priority = 0)");
    return false;
  }
  sched_param param{};
  param.sched_priority = realtime_priority;
  const int error = pthread_setschedparam(thread_.native_handle(), SCHED_FIFO, &param);
  if (error != 0) {
    log.warning(
        "scheduler: real-time priority " + std::to_string(realtime_priority) + " refused (" +
        std::strerror(error) +
        "); running at normal priority. Allow it with LimitRTPRIO= (systemd) or an rtprio limit for the "
        "audio group");
    return false;
  }
  realtime_ = true;
  log.info("scheduler: running at SCHED_FIFO priority " + std::to_string(realtime_priority));
  return true;
}

void Scheduler::stop() {
  if (!running()) return;
  // The ring has room unless 64 commands are unread; keep waking until taken.
  while (!commands_.try_push({Command::kStop, 0})) {
    wake();
    std::this_thread::yield();
  }
  wake();
  thread_.join();
}

bool Scheduler::command(Command c) {
  const bool queued = commands_.try_push(c);
  wake();
  return queued;
}

void Scheduler::cancel(std::uint16_t source) {
  if (source >= kMaxSources) return;
  command({Command::kCancel, source});
}

void Scheduler::panic() { command({Command::kPanic, 0}); }

bool Scheduler::schedule(const MidiEvent& event, std::uint16_t source) {
  return schedule(std::span<const MidiEvent>(&event, 1), source) == 1;
}

std::size_t Scheduler::schedule(std::span<const MidiEvent> events, std::uint16_t source) {
  std::size_t queued = 0;
  for (const MidiEvent& event : events) {
    if (source < kMaxSources && input_.try_push({event, source})) {
      ++queued;
    } else {
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (queued > 0) wake();
  return queued;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.delivered = delivered_.load(std::memory_order_relaxed);
  s.late = late_.load(std::memory_order_relaxed);
  s.worst_late_us = worst_late_us_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.cancelled = cancelled_.load(std::memory_order_relaxed);
  s.released = released_.load(std::memory_order_relaxed);
  return s;
}

std::size_t Scheduler::pending_approx() const {
  return pending_.load(std::memory_order_relaxed) + input_.size_approx();
}

void Scheduler::wake() noexcept {
  wake_.fetch_add(1, std::memory_order_release);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&wake_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void Scheduler::wait_until(std::int64_t due_us, std::uint32_t seen) noexcept {
  timespec deadline{};
  deadline.tv_sec = static_cast<time_t>(due_us / 1'000'000);
  deadline.tv_nsec = static_cast<long>((due_us % 1'000'000) * 1000);
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time; returns at once
  // when wake_ moved past `seen` (new input since we looked).
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&wake_), FUTEX_WAIT_BITSET_PRIVATE, seen, &deadline,
          nullptr, FUTEX_BITSET_MATCH_ANY);
}

void Scheduler::run() noexcept {
  while (true) {
    const std::uint32_t seen = wake_.load(std::memory_order_acquire);
    if (!run_commands()) return;
    take_input();
    std::int64_t now_us = steady_now_us();
    while (heap_size_ > 0 && heap_[0].due_us <= now_us) {
      std::pop_heap(heap_.get(), heap_.get() + heap_size_, kHeapOrder);
      --heap_size_;
      deliver(heap_[heap_size_].item, now_us);
      now_us = steady_now_us();
    }
    pending_.store(heap_size_, std::memory_order_relaxed);
    wait_until(heap_size_ > 0 ? heap_[0].due_us : now_us + kIdleWaitUs, seen);
  }
}

bool Scheduler::run_commands() noexcept {
  Command c{};
  while (commands_.try_pop(c)) {
    const std::int64_t now_us = steady_now_us();
    switch (c.kind) {
      case Command::kCancel:
        take_input();  // events queued before the cancel belong to it
        remove_pending(false, c.source);
        release(c.source, now_us);
        break;
      case Command::kPanic:
      case Command::kStop:
        take_input();
        remove_pending(true, 0);
        for (std::uint16_t source = 0; source < kMaxSources; ++source) release(source, now_us);
        for (std::uint8_t port = 0; port < kMaxPorts; ++port) {
          if (sinks_[port] == nullptr) continue;
          for (const MidiEvent& event : panic_events(now_us + sinks_[port]->lead_us(), port)) send(event);
        }
        if (c.kind == Command::kStop) return false;
        break;
    }
  }
  return true;
}

void Scheduler::take_input() noexcept {
  Queued item{};
  while (heap_size_ < heap_capacity_ && input_.try_pop(item)) {
    const OutputSink* sink = item.event.port < kMaxPorts ? sinks_[item.event.port] : nullptr;
    if (sink == nullptr) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    heap_[heap_size_++] = Entry{item.event.time_us - sink->lead_us(), sequence_++, item};
    std::push_heap(heap_.get(), heap_.get() + heap_size_, kHeapOrder);
  }
  pending_.store(heap_size_, std::memory_order_relaxed);
}

void Scheduler::remove_pending(bool all, std::uint16_t source) noexcept {
  const auto doomed = [&](const Entry& e) { return all || e.item.source == source; };
  Entry* const end = std::remove_if(heap_.get(), heap_.get() + heap_size_, doomed);
  const auto kept = static_cast<std::size_t>(end - heap_.get());
  cancelled_.fetch_add(heap_size_ - kept, std::memory_order_relaxed);
  heap_size_ = kept;
  std::make_heap(heap_.get(), heap_.get() + heap_size_, kHeapOrder);
  pending_.store(heap_size_, std::memory_order_relaxed);
}

void Scheduler::send(const MidiEvent& event) noexcept {
  OutputSink* sink = sinks_[event.port];
  if (sink->deliver(event)) {
    delivered_.fetch_add(1, std::memory_order_relaxed);
  } else {
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Scheduler::deliver(const Queued& item, std::int64_t now_us) noexcept {
  const MidiEvent& event = item.event;
  const std::int64_t late_us = now_us - event.time_us;
  if (late_us > late_tolerance_us_) {
    late_.fetch_add(1, std::memory_order_relaxed);
    if (late_us > worst_late_us_.load(std::memory_order_relaxed)) {
      worst_late_us_.store(late_us, std::memory_order_relaxed);
    }
  }
  send(event);
  if (!event.is_channel_message()) return;
  const std::uint8_t channel = event.channel();
  const int kind = event.status() & 0xF0;
  NoteCounts& counts = sounding_[item.source];
  port_of_[item.source][channel] = event.port;
  latest_us_[item.source] = std::max(latest_us_[item.source], event.time_us);
  std::uint8_t& count = counts[channel][event.bytes[1] & 0x7F];
  if (kind == 0x90 && event.bytes[2] > 0) {
    if (count < 255) ++count;
  } else if (kind == 0x80 || kind == 0x90) {
    if (count > 0) --count;
  } else if (kind == 0xB0 && event.bytes[1] == kSustainPedal) {
    pedal_[item.source][channel] = event.bytes[2] >= 64;
  } else if (kind == 0xB0 && (event.bytes[1] == kAllSoundOff || event.bytes[1] == kAllNotesOff)) {
    counts[channel].fill(0);
  }
}

void Scheduler::release(std::uint16_t source, std::int64_t now_us) noexcept {
  for (std::uint8_t channel = 0; channel < 16; ++channel) {
    const std::uint8_t port = port_of_[source][channel];
    if (sinks_[port] == nullptr) continue;
    // As soon as the sink can take it, but after anything already handed to a
    // future-time sink, so a release never overtakes the note it ends.
    const std::int64_t time_us = std::max(now_us + sinks_[port]->lead_us(), latest_us_[source]);
    for (std::uint8_t pitch = 0; pitch < 128; ++pitch) {
      std::uint8_t& count = sounding_[source][channel][pitch];
      for (; count > 0; --count) {
        send(MidiEvent{time_us, {static_cast<std::uint8_t>(0x80 | channel), pitch, 0}, 3, port});
        released_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (pedal_[source][channel]) {
      send(MidiEvent{time_us, {static_cast<std::uint8_t>(0xB0 | channel), 64, 0}, 3, port});
      pedal_[source][channel] = false;
    }
  }
}

}  // namespace tatumflow::daemon
