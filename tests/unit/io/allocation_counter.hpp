// SPDX-License-Identifier: GPL-3.0-or-later
// Counts heap allocations made by the calling thread between start() and
// stop(), to prove that real-time paths allocate nothing. Interposes glibc's
// malloc, calloc and realloc (operator new calls malloc), so include it in
// exactly one file of a test binary. Sanitizers own malloc: under them
// nothing is interposed and counts stay 0 (the plain build is the check).
#pragma once

#include <cstddef>
#include <cstdlib>

namespace tatumflow::test {

inline thread_local bool counting_allocations = false;
inline thread_local std::size_t allocations = 0;

// Starts counting on this thread.
inline void start_counting_allocations() {
  allocations = 0;
  counting_allocations = true;
}
// Stops counting; returns the allocations made since start.
inline std::size_t stop_counting_allocations() {
  counting_allocations = false;
  return allocations;
}

}  // namespace tatumflow::test

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TATUMFLOW_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define TATUMFLOW_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef TATUMFLOW_COUNT_ALLOCATIONS
#define TATUMFLOW_COUNT_ALLOCATIONS 1
#endif

#if TATUMFLOW_COUNT_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* memory, std::size_t size);

void* malloc(std::size_t size) noexcept {
  if (tatumflow::test::counting_allocations) ++tatumflow::test::allocations;
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  if (tatumflow::test::counting_allocations) ++tatumflow::test::allocations;
  return __libc_calloc(count, size);
}
void* realloc(void* memory, std::size_t size) noexcept {
  if (tatumflow::test::counting_allocations) ++tatumflow::test::allocations;
  return __libc_realloc(memory, size);
}
}
#endif
