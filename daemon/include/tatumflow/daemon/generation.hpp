// SPDX-License-Identifier: GPL-3.0-or-later
// What crosses between a session (event loop) and the inference workers: the
// requests, the results, and the seams the model implements.
//
// An answer is one GenerationRequest; the worker asks the generator for its
// chunks one after another and sends each back as soon as it is done, so the
// first bar can be scheduled while the next is being computed. A request is
// identified by (session, generation): a session starting a new answer bumps
// its generation id and sets the old request's cancel flag, and any result of
// an older generation that still arrives is stale.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "tatumflow/daemon/style.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::daemon {

struct ChunkSpec {
  std::int64_t length_us = 0;    // music to generate, in the generator's time
  std::int64_t deadline_us = 0;  // steady clock: wanted by then (its first downbeat less the margin)
  std::int64_t expires_us = 0;   // steady clock: useless from then on (the chunk's end)
};

struct GenerationRequest {
  std::uint32_t session = 0;
  std::uint64_t generation = 0;
  std::shared_ptr<std::atomic<bool>> cancel;  // shared with the session
  std::vector<tokens::Token> call_tokens;     // the call, times from its first note
  std::int64_t call_length_us = 0;
  // The call's first note relative to the downbeat of its first bar (negative
  // for a pickup); answer time 0 is a downbeat, so the call's phrasing maps
  // onto the answer by this offset.
  std::int64_t call_phase_us = 0;
  double beat_us = 500'000.0;  // the beat in the generator's time
  int beats_per_bar = 4;
  StyleLatent style{};
  AnswerControls controls;
  std::vector<ChunkSpec> chunks;
};

// Encodes tokens into a style (a call to learn from, a MIDI file to load).
struct StyleRequest {
  std::uint32_t session = 0;
  std::uint64_t id = 0;
  std::vector<tokens::Token> tokens;
  bool learn = false;  // true: a call for the learned average; false: load as the fixed style
  std::string label;   // the file, for messages and the style's source
};

enum class ChunkStatus {
  ok,
  expired,  // its time had passed before it could start or finish: skipped
  failed,   // the generator threw: `error` says what; no further chunks come
};

struct ChunkResult {
  std::uint32_t session = 0;
  std::uint64_t generation = 0;
  int chunk = 0;
  bool last = false;  // no more results for this generation
  ChunkStatus status = ChunkStatus::ok;
  std::string error;
  Performance notes;  // times from the chunk's start, in the generator's time
  std::int64_t finished_us = 0;
  std::int64_t compute_us = 0;
};

struct StyleResult {
  std::uint32_t session = 0;
  std::uint64_t id = 0;
  bool learn = false;
  std::string label;
  bool ok = false;
  std::string error;
  StyleLatent style{};
};

using WorkItem = std::variant<GenerationRequest, StyleRequest>;
using WorkResult = std::variant<ChunkResult, StyleResult>;

// One answer being generated; used by one inference thread.
class AnswerStream {
 public:
  virtual ~AnswerStream() = default;
  // The next chunk's notes, times from the chunk's start in the generator's
  // time. Should return early with what it has when `cancel` is set or the
  // deadline passes. May throw; the worker reports it. // inference thread
  virtual Performance next_chunk(const ChunkSpec& chunk, const std::atomic<bool>& cancel) = 0;
};

// Where a generator computes, for /tf/status.
struct ComputeStatus {
  std::string device = "none";  // "cpu", "cuda", "cuda:1"; "none": no model (the echo engine)
  bool fell_back = false;       // a failing device was given up for the CPU
  // Decoding steps per forward pass so far (above 1 when answers of several
  // sessions shared passes); 0 before the first step or without a model.
  double steps_per_pass = 0.0;
};

// The model's seam: implemented by the model adapter and by EchoGenerator.
// begin() may run on several inference threads at once.
class ChunkGenerator {
 public:
  virtual ~ChunkGenerator() = default;
  // // inference thread
  [[nodiscard]] virtual std::unique_ptr<AnswerStream> begin(const GenerationRequest& request) = 0;
  // // any thread
  [[nodiscard]] virtual ComputeStatus compute_status() const { return {}; }
};

// The style encoder's seam (the model's encode_style). May run on several
// inference threads at once.
class StyleEncoder {
 public:
  virtual ~StyleEncoder() = default;
  // // inference thread
  [[nodiscard]] virtual StyleLatent encode(std::span<const tokens::Token> tokens) = 0;
};

}  // namespace tatumflow::daemon
