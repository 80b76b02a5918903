// SPDX-License-Identifier: GPL-3.0-or-later
// Sessions decoding on one model at the same time share its forward passes.
// Each inference thread hands its next autoregressive step to the combiner;
// a waiting thread that finds the network idle runs every step waiting at that
// moment as one batched pass (flat combining), and the others sleep until
// their logits are ready. Threads inside a token loop (Decoding) arrive one
// sampling apart, so a step waits for the others' next steps, up to
// kGatherWindow, before it runs: without that they fall into turns, one row
// per pass. A thread decoding alone never waits, and decodes exactly as
// without the combiner.
//
// Why: a decoding step of a small model costs its operator launches and weight
// reads, not its arithmetic; eight rows cost about what one does, on the CPU
// and more so on a GPU.
// Inference threads only (it locks, allocates and runs torch).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <vector>

#include "network.hpp"
#include "tatumflow/engine/model_api.hpp"

namespace tatumflow::model {

class StepCombiner {
 public:
  // The longest a step waits for the other decoding threads' steps: a few
  // samplings, a fraction of a pass.
  static constexpr std::chrono::microseconds kGatherWindow{1000};

  // Counts the calling thread among those decoding token by token while it
  // lives. // inference thread
  class Decoding {
   public:
    explicit Decoding(StepCombiner& combiner);
    ~Decoding();
    Decoding(const Decoding&) = delete;
    Decoding& operator=(const Decoding&) = delete;

   private:
    StepCombiner& combiner_;
  };

  // share = false: every step runs alone, on its caller's thread.
  explicit StepCombiner(bool share) : share_(share) {}

  // net->step(token, cache), possibly batched with other threads' steps. A
  // failing pass fails every step in it: each caller gets the exception.
  // // inference thread
  torch::Tensor step(TatumFlowNet& net, std::int64_t token, DecodeCache& cache);

  [[nodiscard]] DecodeStats stats() const;  // any thread

 private:
  struct Pending {
    std::int64_t token = 0;
    DecodeCache* cache = nullptr;
    torch::Tensor logits;
    std::exception_ptr error;
    bool done = false;
  };

  // Runs `batch` as one pass and counts it; called without mutex_ held.
  void run(TatumFlowNet& net, std::span<Pending* const> batch);

  const bool share_;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::vector<Pending*> waiting_;  // guarded by mutex_
  bool running_ = false;           // a thread is running a pass; guarded by mutex_
  int decoding_ = 0;               // threads inside a Decoding; guarded by mutex_
  DecodeStats stats_;              // guarded by mutex_ (also in run())
};

}  // namespace tatumflow::model
