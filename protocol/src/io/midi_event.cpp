// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/midi_event.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

namespace tatumflow {

std::int64_t steady_now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int midi_data_bytes(std::uint8_t status) noexcept {
  if (status < 0x80) return -1;
  if (status < 0xF0) {
    const auto kind = status & 0xF0;
    return kind == 0xC0 || kind == 0xD0 ? 1 : 2;
  }
  switch (status) {
    case 0xF1:  // MTC quarter frame
    case 0xF3:  // song select
      return 1;
    case 0xF2:  // song position pointer
      return 2;
    case 0xF6:  // tune request
    case 0xF8:
    case 0xFA:
    case 0xFB:
    case 0xFC:
    case 0xFE:
    case 0xFF:
      return 0;
    default:  // F0/F7 sysex, F4 F5 F9 FD undefined
      return -1;
  }
}

bool make_midi_event(std::int64_t time_us, std::span<const std::uint8_t> bytes, std::uint8_t port,
                     MidiEvent& out) noexcept {
  if (bytes.empty() || bytes.size() > 3) return false;
  const int data = midi_data_bytes(bytes[0]);
  if (data < 0 || static_cast<std::size_t>(data) + 1 != bytes.size()) return false;
  for (std::size_t i = 1; i < bytes.size(); ++i) {
    if (bytes[i] >= 0x80) return false;
  }
  out = MidiEvent{};
  out.time_us = time_us;
  for (std::size_t i = 0; i < bytes.size(); ++i) out.bytes[i] = bytes[i];
  out.size = static_cast<std::uint8_t>(bytes.size());
  out.port = port;
  return true;
}

std::array<MidiEvent, kPanicEventCount> panic_events(std::int64_t time_us, std::uint8_t port) noexcept {
  std::array<MidiEvent, kPanicEventCount> events{};
  constexpr std::array<std::uint8_t, 3> kControllers{kSustainPedal, kAllSoundOff, kAllNotesOff};
  std::size_t i = 0;
  for (std::uint8_t channel = 0; channel < 16; ++channel) {
    for (const std::uint8_t controller : kControllers) {
      events[i++] = MidiEvent{time_us, {static_cast<std::uint8_t>(0xB0 | channel), controller, 0}, 3, port};
    }
  }
  return events;
}

namespace {

// Checked before the queue allocates its blocks; returns the number of
// elements to pre-allocate.
std::size_t pool_elements(std::size_t capacity, std::size_t max_producers) {
  if (capacity == 0 || capacity > MidiEventQueue::kMaxCapacity) {
    throw std::invalid_argument("MidiEventQueue: capacity " + std::to_string(capacity) + " is outside 1.." +
                                std::to_string(MidiEventQueue::kMaxCapacity));
  }
  if (max_producers == 0) throw std::invalid_argument("MidiEventQueue: max_producers must be at least 1");
  constexpr std::size_t kBlock = MidiQueueTraits::BLOCK_SIZE;
  // A producer may hold every event in flight, spread over one extra block.
  return max_producers * ((capacity + kBlock - 1) / kBlock + 1) * kBlock;
}

}  // namespace

MidiEventQueue::MidiEventQueue(std::size_t capacity, std::size_t max_producers)
    : queue_(pool_elements(capacity, max_producers)), capacity_(capacity), max_producers_(max_producers) {}

MidiEventQueue::Producer MidiEventQueue::make_producer() {
  if (producers_.fetch_add(1) >= max_producers_) {
    producers_.fetch_sub(1);
    throw std::length_error("MidiEventQueue: all " + std::to_string(max_producers_) +
                            " producers are already taken");
  }
  return Producer(*this);
}

bool MidiEventQueue::Producer::push(const MidiEvent& event) noexcept {
  MidiEventQueue& queue = *queue_;
  if (queue.in_flight_.fetch_add(1, std::memory_order_acq_rel) < queue.capacity_ &&
      queue.queue_.try_enqueue(token_, event)) {
    return true;
  }
  queue.in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  queue.dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool MidiEventQueue::try_pop(MidiEvent& event) noexcept {
  if (!queue_.try_dequeue(event)) return false;
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  return true;
}

std::size_t MidiEventQueue::try_pop_bulk(std::span<MidiEvent> out) noexcept {
  const std::size_t popped = queue_.try_dequeue_bulk(out.begin(), out.size());
  in_flight_.fetch_sub(popped, std::memory_order_acq_rel);
  return popped;
}

}  // namespace tatumflow
