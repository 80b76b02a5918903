// SPDX-License-Identifier: GPL-3.0-or-later
#include "step_combiner.hpp"

#include <algorithm>

namespace tatumflow::model {

torch::Tensor StepCombiner::step(TatumFlowNet& net, std::int64_t token, DecodeCache& cache) {
  Pending mine;
  mine.token = token;
  mine.cache = &cache;
  if (!share_) {
    Pending* const alone[] = {&mine};
    run(net, alone);
  } else {
    std::unique_lock lock(mutex_);
    waiting_.push_back(&mine);
    finished_.notify_all();  // a step gathering company may now have it all
    const auto gather_until = std::chrono::steady_clock::now() + kGatherWindow;
    while (!mine.done) {
      if (running_) {
        finished_.wait(lock);
        continue;
      }
      const bool all_here = waiting_.size() >= static_cast<std::size_t>(decoding_);
      if (!all_here && std::chrono::steady_clock::now() < gather_until) {
        finished_.wait_until(lock, gather_until);
        continue;
      }
      // The network is idle: run everyone waiting, this thread included.
      std::vector<Pending*> batch;
      batch.swap(waiting_);
      running_ = true;
      lock.unlock();
      run(net, batch);
      lock.lock();
      for (Pending* pending : batch) pending->done = true;
      running_ = false;
      finished_.notify_all();
    }
  }
  if (mine.error) std::rethrow_exception(mine.error);
  return mine.logits;
}

void StepCombiner::run(TatumFlowNet& net, std::span<Pending* const> batch) {
  std::vector<std::int64_t> tokens;
  std::vector<DecodeCache*> caches;
  for (const Pending* pending : batch) {
    tokens.push_back(pending->token);
    caches.push_back(pending->cache);
  }
  try {
    const torch::Tensor logits = net->step_rows(tokens, caches);
    for (std::size_t row = 0; row < batch.size(); ++row)
      batch[row]->logits = logits[static_cast<std::int64_t>(row)];
  } catch (...) {
    const std::exception_ptr error = std::current_exception();
    for (Pending* pending : batch) pending->error = error;
  }
  const std::lock_guard lock(mutex_);
  stats_.steps += batch.size();
  ++stats_.passes;
  stats_.widest_pass = std::max(stats_.widest_pass, static_cast<int>(batch.size()));
}

StepCombiner::Decoding::Decoding(StepCombiner& combiner) : combiner_(combiner) {
  const std::lock_guard lock(combiner_.mutex_);
  ++combiner_.decoding_;
}

StepCombiner::Decoding::~Decoding() {
  const std::lock_guard lock(combiner_.mutex_);
  --combiner_.decoding_;
  combiner_.finished_.notify_all();  // steps waiting for this thread's need not
}

DecodeStats StepCombiner::stats() const {
  const std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace tatumflow::model
