// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/inference_pool.hpp"

#include <stdexcept>
#include <string>

#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow::daemon {

InferencePool::InferencePool(ChunkGenerator& generator, StyleEncoder* encoder, Logger& log,
                             std::size_t threads, std::size_t capacity, std::function<void()> notify)
    : generator_(generator), encoder_(encoder), log_(log), capacity_(capacity), notify_(std::move(notify)) {
  if (threads == 0) throw std::invalid_argument("InferencePool: needs at least one thread");
  if (capacity == 0) throw std::invalid_argument("InferencePool: capacity must be at least 1");
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
}

InferencePool::~InferencePool() {
  for (std::size_t i = 0; i < workers_.size(); ++i) jobs_.enqueue(Job{Stop{}});
  for (std::thread& worker : workers_) worker.join();
}

bool InferencePool::submit(WorkItem item) {
  std::size_t pending = pending_.load(std::memory_order_relaxed);
  do {
    if (pending >= capacity_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!pending_.compare_exchange_weak(pending, pending + 1, std::memory_order_relaxed));
  submitted_.fetch_add(1, std::memory_order_relaxed);
  std::visit([this](auto&& work) { jobs_.enqueue(Job{std::move(work)}); }, std::move(item));
  return true;
}

bool InferencePool::poll(WorkResult& result) { return results_.try_dequeue(result); }

WorkStats InferencePool::stats() const {
  WorkStats s;
  s.submitted = submitted_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.chunks = chunks_.load(std::memory_order_relaxed);
  s.expired = expired_.load(std::memory_order_relaxed);
  s.cancelled = cancelled_.load(std::memory_order_relaxed);
  s.failed = failed_.load(std::memory_order_relaxed);
  s.styles = styles_.load(std::memory_order_relaxed);
  s.style_failures = style_failures_.load(std::memory_order_relaxed);
  return s;
}

void InferencePool::run() {
  while (true) {
    Job job;
    jobs_.wait_dequeue(job);
    if (std::holds_alternative<Stop>(job)) return;
    pending_.fetch_sub(1, std::memory_order_relaxed);
    if (const auto* request = std::get_if<GenerationRequest>(&job)) {
      generate(*request);
    } else {
      encode(std::get<StyleRequest>(job));
    }
  }
}

void InferencePool::send(WorkResult&& result) {
  results_.enqueue(std::move(result));
  if (notify_) notify_();
}

void InferencePool::generate(const GenerationRequest& request) {
  const auto cancelled = [&] { return request.cancel && request.cancel->load(std::memory_order_acquire); };
  const std::atomic<bool> never{false};
  const std::atomic<bool>& cancel = request.cancel ? *request.cancel : never;
  int chunk = 0;
  const auto result = [&](ChunkStatus status) {
    ChunkResult r;
    r.session = request.session;
    r.generation = request.generation;
    r.chunk = chunk;
    r.last = chunk + 1 == static_cast<int>(request.chunks.size());
    r.status = status;
    return r;
  };
  try {
    if (cancelled()) {
      cancelled_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::unique_ptr<AnswerStream> stream = generator_.begin(request);
    for (; chunk < static_cast<int>(request.chunks.size()); ++chunk) {
      const ChunkSpec& spec = request.chunks[static_cast<std::size_t>(chunk)];
      if (cancelled()) {
        cancelled_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      const std::int64_t started_us = steady_now_us();
      if (started_us >= spec.expires_us) {
        expired_.fetch_add(1, std::memory_order_relaxed);
        send(result(ChunkStatus::expired));
        continue;
      }
      Performance notes = stream->next_chunk(spec, cancel);
      if (cancelled()) {
        cancelled_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      ChunkResult r = result(ChunkStatus::ok);
      r.finished_us = steady_now_us();
      r.compute_us = r.finished_us - started_us;
      if (r.finished_us >= spec.expires_us) {
        expired_.fetch_add(1, std::memory_order_relaxed);
        r.status = ChunkStatus::expired;
      } else {
        chunks_.fetch_add(1, std::memory_order_relaxed);
        r.notes = std::move(notes);
      }
      send(std::move(r));
    }
  } catch (const std::exception& error) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    log_.error("session " + std::to_string(request.session) + " answer " +
               std::to_string(request.generation) + " chunk " + std::to_string(chunk) +
               ": generation failed: " + error.what());
    ChunkResult r = result(ChunkStatus::failed);
    r.last = true;
    r.error = error.what();
    send(std::move(r));
  } catch (...) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    log_.error("session " + std::to_string(request.session) + " answer " +
               std::to_string(request.generation) + ": generation failed with an unknown exception");
    ChunkResult r = result(ChunkStatus::failed);
    r.last = true;
    r.error = "unknown exception";
    send(std::move(r));
  }
}

void InferencePool::encode(const StyleRequest& request) {
  StyleResult r;
  r.session = request.session;
  r.id = request.id;
  r.learn = request.learn;
  r.label = request.label;
  try {
    if (encoder_ == nullptr)
      throw std::runtime_error("this engine has no style encoder (it needs the model)");
    r.style = encoder_->encode(request.tokens);
    r.ok = true;
    styles_.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& error) {
    r.error = error.what();
  } catch (...) {
    r.error = "unknown exception";
  }
  if (!r.ok) {
    style_failures_.fetch_add(1, std::memory_order_relaxed);
    log_.error("session " + std::to_string(request.session) + ": style encoding of " +
               (request.label.empty() ? std::string("a call") : request.label) + " failed: " + r.error);
  }
  send(std::move(r));
}

}  // namespace tatumflow::daemon
