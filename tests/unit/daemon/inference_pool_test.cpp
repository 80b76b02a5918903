// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/inference_pool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "tatumflow/daemon/echo_generator.hpp"
#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow::daemon {
namespace {

using namespace std::chrono_literals;

// Wraps the echo generator with a gate the test opens, so the order of events
// between the test and the worker is under control; or throws on a chosen chunk.
class GatedEcho final : public ChunkGenerator {
 public:
  std::unique_ptr<AnswerStream> begin(const GenerationRequest& request) override {
    if (throw_in_begin) throw std::runtime_error("model exploded");
    return std::make_unique<Stream>(*this, echo.begin(request));
  }
  void open() {
    const std::lock_guard lock(mutex);
    gate_open = true;
    changed.notify_all();
  }

  EchoGenerator echo;
  std::mutex mutex;
  std::condition_variable changed;
  bool gate_open = true;
  bool throw_in_begin = false;
  int throw_at_chunk = -1;

 private:
  class Stream final : public AnswerStream {
   public:
    Stream(GatedEcho& owner, std::unique_ptr<AnswerStream> inner) : owner_(owner), inner_(std::move(inner)) {}
    Performance next_chunk(const ChunkSpec& chunk, const std::atomic<bool>& cancel) override {
      std::unique_lock lock(owner_.mutex);
      owner_.changed.wait(lock, [&] { return owner_.gate_open; });
      if (index_++ == owner_.throw_at_chunk) throw std::runtime_error("CUDA out of memory");
      return inner_->next_chunk(chunk, cancel);
    }

   private:
    GatedEcho& owner_;
    std::unique_ptr<AnswerStream> inner_;
    int index_ = 0;
  };
};

class FixedEncoder final : public StyleEncoder {
 public:
  StyleLatent encode(std::span<const tokens::Token> tokens) override {
    if (tokens.empty()) throw std::invalid_argument("nothing to encode");
    StyleLatent z;
    z.mean.fill(static_cast<float>(tokens.size()));
    return z;
  }
};

GenerationRequest request(std::uint64_t generation, int chunks, std::int64_t expires_us) {
  Performance call;
  Note n;
  n.onset_us = 0;
  n.duration_us = 200'000;
  n.pitch = 60;
  call.notes.push_back(n);
  n.onset_us = 600'000;
  n.pitch = 62;
  call.notes.push_back(n);
  GenerationRequest r;
  r.session = 3;
  r.generation = generation;
  r.cancel = std::make_shared<std::atomic<bool>>(false);
  r.call_tokens = tokens::encode(call);
  for (int i = 0; i < chunks; ++i) r.chunks.push_back({500'000, expires_us, expires_us});
  return r;
}

std::vector<WorkResult> collect(InferencePool& pool, std::size_t n,
                                std::chrono::milliseconds timeout = 2000ms) {
  std::vector<WorkResult> results;
  const auto until = std::chrono::steady_clock::now() + timeout;
  WorkResult r;
  while (results.size() < n && std::chrono::steady_clock::now() < until) {
    if (pool.poll(r)) {
      results.push_back(std::move(r));
    } else {
      std::this_thread::sleep_for(200us);
    }
  }
  return results;
}

Logger quiet_log() { return Logger(LogLevel::error, false, stderr); }

TEST(InferencePool, StreamsChunksInOrder) {
  GatedEcho generator;
  Logger log = quiet_log();
  std::atomic<int> notified{0};
  InferencePool pool(generator, nullptr, log, 1, 4, [&] { notified.fetch_add(1); });
  ASSERT_TRUE(pool.submit(request(7, 2, steady_now_us() + 10'000'000)));
  const std::vector<WorkResult> results = collect(pool, 2);
  ASSERT_EQ(results.size(), 2u);
  const auto& first = std::get<ChunkResult>(results[0]);
  const auto& second = std::get<ChunkResult>(results[1]);
  EXPECT_EQ(first.session, 3u);
  EXPECT_EQ(first.generation, 7u);
  EXPECT_EQ(first.chunk, 0);
  EXPECT_FALSE(first.last);
  EXPECT_EQ(first.status, ChunkStatus::ok);
  ASSERT_EQ(first.notes.notes.size(), 1u);
  EXPECT_EQ(first.notes.notes[0].pitch, 65);  // the echo is a fourth up
  EXPECT_EQ(second.chunk, 1);
  EXPECT_TRUE(second.last);
  ASSERT_EQ(second.notes.notes.size(), 1u);
  EXPECT_EQ(second.notes.notes[0].onset_us, 100'000);  // 600 ms into the answer, 100 ms into chunk 1
  EXPECT_EQ(notified.load(), 2);
  EXPECT_EQ(pool.stats().chunks, 2u);
}

TEST(InferencePool, ExpiredChunksAreSkipped) {
  GatedEcho generator;
  Logger log = quiet_log();
  InferencePool pool(generator, nullptr, log, 1, 4);
  ASSERT_TRUE(pool.submit(request(1, 2, steady_now_us() - 1)));
  const std::vector<WorkResult> results = collect(pool, 2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(std::get<ChunkResult>(results[0]).status, ChunkStatus::expired);
  EXPECT_TRUE(std::get<ChunkResult>(results[0]).notes.notes.empty());
  EXPECT_TRUE(std::get<ChunkResult>(results[1]).last);
  EXPECT_EQ(pool.stats().expired, 2u);
}

TEST(InferencePool, CancelStopsARequestAndFullQueueRejects) {
  GatedEcho generator;
  generator.gate_open = false;
  Logger log = quiet_log();
  InferencePool pool(generator, nullptr, log, 1, 2);
  const std::int64_t later = steady_now_us() + 10'000'000;
  GenerationRequest busy = request(1, 3, later);
  const auto busy_cancel = busy.cancel;
  ASSERT_TRUE(pool.submit(std::move(busy)));
  // Wait until the worker holds it (the queue is empty again).
  for (int i = 0; i < 2000 && pool.depth() > 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(pool.depth(), 0u);
  GenerationRequest waiting = request(2, 1, later);
  const auto waiting_cancel = waiting.cancel;
  ASSERT_TRUE(pool.submit(std::move(waiting)));
  ASSERT_TRUE(pool.submit(request(3, 1, later)));
  EXPECT_FALSE(pool.submit(request(4, 1, later)));  // 2 waiting: full
  EXPECT_EQ(pool.stats().rejected, 1u);
  busy_cancel->store(true);     // cancelled mid-chunk: its chunk is dropped
  waiting_cancel->store(true);  // cancelled before it starts
  generator.open();
  const std::vector<WorkResult> results = collect(pool, 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(std::get<ChunkResult>(results[0]).generation, 3u);
  EXPECT_TRUE(collect(pool, 1, 50ms).empty());
  EXPECT_EQ(pool.stats().cancelled, 2u);
}

TEST(InferencePool, GeneratorExceptionsBecomeFailedResults) {
  GatedEcho generator;
  generator.throw_at_chunk = 1;
  std::FILE* out = std::tmpfile();
  Logger log(LogLevel::error, false, out);
  InferencePool pool(generator, nullptr, log, 2, 4);
  ASSERT_TRUE(pool.submit(request(5, 3, steady_now_us() + 10'000'000)));
  const std::vector<WorkResult> results = collect(pool, 2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(std::get<ChunkResult>(results[0]).status, ChunkStatus::ok);
  const auto& failed = std::get<ChunkResult>(results[1]);
  EXPECT_EQ(failed.status, ChunkStatus::failed);
  EXPECT_TRUE(failed.last);
  EXPECT_EQ(failed.chunk, 1);
  EXPECT_EQ(failed.error, "CUDA out of memory");
  std::rewind(out);
  char line[512] = {};
  ASSERT_NE(std::fgets(line, sizeof line, out), nullptr);
  EXPECT_NE(std::string(line).find("session 3 answer 5 chunk 1: generation failed: CUDA out of memory"),
            std::string::npos)
      << line;

  generator.throw_at_chunk = -1;
  generator.throw_in_begin = true;
  ASSERT_TRUE(pool.submit(request(6, 3, steady_now_us() + 10'000'000)));
  const std::vector<WorkResult> begin_failed = collect(pool, 1);
  ASSERT_EQ(begin_failed.size(), 1u);
  EXPECT_EQ(std::get<ChunkResult>(begin_failed[0]).error, "model exploded");
  EXPECT_EQ(pool.stats().failed, 2u);
  std::fclose(out);
}

TEST(InferencePool, StyleRequests) {
  GatedEcho generator;
  FixedEncoder encoder;
  std::FILE* out = std::tmpfile();
  Logger log(LogLevel::error, false, out);
  InferencePool with(generator, &encoder, log, 1, 4);
  StyleRequest good;
  good.session = 1;
  good.id = 9;
  good.tokens = {1, 2, 3};
  good.learn = true;
  ASSERT_TRUE(with.submit(good));
  StyleRequest empty = good;
  empty.tokens.clear();
  ASSERT_TRUE(with.submit(empty));
  const std::vector<WorkResult> results = collect(with, 2);
  ASSERT_EQ(results.size(), 2u);
  const auto& ok = std::get<StyleResult>(results[0]);
  EXPECT_TRUE(ok.ok);
  EXPECT_TRUE(ok.learn);
  EXPECT_EQ(ok.style.mean[0], 3.0f);
  EXPECT_FALSE(std::get<StyleResult>(results[1]).ok);
  EXPECT_EQ(std::get<StyleResult>(results[1]).error, "nothing to encode");

  InferencePool without(generator, nullptr, log, 1, 4);
  ASSERT_TRUE(without.submit(good));
  const std::vector<WorkResult> none = collect(without, 1);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_NE(std::get<StyleResult>(none[0]).error.find("no style encoder"), std::string::npos);
  std::fclose(out);
}

TEST(EchoGenerator, TransposesFoldsAndFollowsDensity) {
  Performance call;
  for (int i = 0; i < 4; ++i) {
    Note n;
    n.onset_us = i * 250'000;
    n.duration_us = 100'000;
    n.pitch = static_cast<std::uint8_t>(i == 3 ? 106 : 60 + i);
    call.notes.push_back(n);
  }
  GenerationRequest r;
  r.call_tokens = tokens::encode(call);
  r.call_phase_us = -100'000;  // a pickup: the first note lands on the downbeat
  r.controls.density = 1.0f;
  const Performance echo = echo_of(r, 5);
  ASSERT_EQ(echo.notes.size(), 4u);
  EXPECT_EQ(echo.notes[0].onset_us, 0);
  EXPECT_EQ(echo.notes[0].duration_us, 100'000);
  EXPECT_EQ(echo.notes[1].onset_us, 150'000);
  EXPECT_EQ(echo.notes[1].pitch, 66);
  EXPECT_EQ(echo.notes[3].pitch, 99);  // 106 + 5 = 111 folds down an octave
  r.controls.density = 0.5f;
  EXPECT_EQ(echo_of(r, 5).notes.size(), 2u);
  r.controls.density = 2.0f;
  const Performance doubled = echo_of(r, 5);
  ASSERT_EQ(doubled.notes.size(), 8u);  // each note and its octave below
  EXPECT_EQ(doubled.notes[0].pitch, 53);
  EXPECT_EQ(doubled.notes[1].pitch, 65);
  r.controls.density = 3.0f;  // then the octave above too, unless out of range (99 + 12 = 111)
  EXPECT_EQ(echo_of(r, 5).notes.size(), 11u);
}

}  // namespace
}  // namespace tatumflow::daemon
