// SPDX-License-Identifier: GPL-3.0-or-later
// The inference workers: a bounded lock-free queue of work (answers to
// generate, styles to encode) drained by one or more worker threads, and a
// lock-free queue of results back to the event loop.
//
// A worker skips a chunk whose time has passed (it reports it as expired), stops
// a request whose cancel flag is set, and catches every exception at its edge:
// the generator's errors become a log line and a failed result, never a dead
// thread. Generation-id staleness is the session's to judge (it knows its
// current generation).
#pragma once

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <variant>
#include <vector>

#include "tatumflow/daemon/generation.hpp"
#include "tatumflow/daemon/log.hpp"

namespace tatumflow::daemon {

struct WorkStats {
  std::uint64_t submitted = 0;
  std::uint64_t rejected = 0;   // queue full
  std::uint64_t chunks = 0;     // generated and sent back
  std::uint64_t expired = 0;    // skipped: their time had passed
  std::uint64_t cancelled = 0;  // requests stopped by their cancel flag
  std::uint64_t failed = 0;     // requests the generator threw on
  std::uint64_t styles = 0;     // style encodings sent back
  std::uint64_t style_failures = 0;
};

class InferencePool {
 public:
  // Starts `threads` workers over `generator` and `encoder` (null: style
  // requests fail with a clear message), which must outlive the pool. At most
  // `capacity` requests wait at once. `notify`, if set, is called on the worker
  // thread after each result is queued (wake the event loop there).
  // Throws std::invalid_argument for 0 threads or capacity. // event-loop thread
  InferencePool(ChunkGenerator& generator, StyleEncoder* encoder, Logger& log, std::size_t threads,
                std::size_t capacity, std::function<void()> notify = {});
  // Lets each worker finish its current chunk (cancel requests first to be
  // quick), then joins them. // event-loop thread
  ~InferencePool();
  InferencePool(const InferencePool&) = delete;
  InferencePool& operator=(const InferencePool&) = delete;

  // False (and counted) when `capacity` requests are waiting. // event-loop thread
  bool submit(WorkItem item);
  // False when no result is waiting. // event-loop thread
  bool poll(WorkResult& result);

  [[nodiscard]] std::size_t depth() const { return pending_.load(std::memory_order_relaxed); }  // any thread
  [[nodiscard]] WorkStats stats() const;                                                        // any thread

 private:
  struct Stop {};
  using Job = std::variant<Stop, GenerationRequest, StyleRequest>;

  void run();                                       // inference thread
  void generate(const GenerationRequest& request);  // inference thread
  void encode(const StyleRequest& request);         // inference thread
  void send(WorkResult&& result);                   // inference thread

  ChunkGenerator& generator_;
  StyleEncoder* encoder_;
  Logger& log_;
  std::size_t capacity_;
  std::function<void()> notify_;
  moodycamel::BlockingConcurrentQueue<Job> jobs_;
  moodycamel::ConcurrentQueue<WorkResult> results_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> chunks_{0};
  std::atomic<std::uint64_t> expired_{0};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> styles_{0};
  std::atomic<std::uint64_t> style_failures_{0};
  std::vector<std::thread> workers_;
};

}  // namespace tatumflow::daemon
