// SPDX-License-Identifier: GPL-3.0-or-later
// A bounded single-producer single-consumer ring of trivially copyable items:
// exactly `capacity` slots (rounded up to a power of two), allocated once.
// Push and pop never allocate, lock or block, so either side may be a
// real-time thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>

namespace tatumflow::daemon {

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Throws std::invalid_argument for 0 or more than 2^24 slots. // any thread (allocates)
  explicit SpscRing(std::size_t capacity) {
    if (capacity == 0 || capacity > (std::size_t{1} << 24)) {
      throw std::invalid_argument("SpscRing: capacity must be 1..2^24");
    }
    std::size_t size = 1;
    while (size < capacity) size <<= 1;
    slots_ = std::make_unique<T[]>(size);
    mask_ = size - 1;
  }

  // False when full. // the producer thread
  bool try_push(const T& item) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_.load(std::memory_order_acquire) > mask_) return false;
    slots_[tail & mask_] = item;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  // False when empty. // the consumer thread
  bool try_pop(T& item) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return false;
    item = slots_[head & mask_];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }  // any thread
  [[nodiscard]] std::size_t size_approx() const noexcept {                   // any thread
    return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_relaxed);
  }

 private:
  std::unique_ptr<T[]> slots_;
  std::size_t mask_ = 0;
  alignas(64) std::atomic<std::size_t> head_{0};  // next to pop
  alignas(64) std::atomic<std::size_t> tail_{0};  // next to push
};

}  // namespace tatumflow::daemon
