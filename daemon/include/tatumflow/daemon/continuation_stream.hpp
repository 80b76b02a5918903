// SPDX-License-Identifier: GPL-3.0-or-later
// An answer made by a token model continuing the call, handed out in the
// answer's chunks (AnswerStream). The model works on the tokenizer's clock and
// in its own steps; the answer is asked for in bars with deadlines. This maps
// one onto the other:
//  * the answer starts on its downbeat: the model's first note after the call
//    becomes answer time 0 (a rest the model opens with is dropped, so the
//    answer does not start late), and the model's timing runs from there;
//  * a step may overshoot the chunk's end (its last time shift); what lies past
//    the chunk is kept for the next one, never lost or moved;
//  * a chunk is due at its deadline: the model is stopped early enough to hand
//    the chunk over by then (one step's time plus a hand-over margin, learned
//    from the steps so far). What it could not reach stays silent, and the
//    model's clock skips over that silence so the rest stays on the grid;
//  * a note the model began but had not given a duration when stopped keeps
//    the default duration it was decoded with, written into the context, so
//    the model continues from what was played.
//
// One answer, used by one inference thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "tatumflow/daemon/generation.hpp"

namespace tatumflow::daemon {

// One step of a token model continuing a sequence (model::generate_chunk).
struct Continuation {
  std::vector<tokens::Token> tokens;  // appended to the context as they are
  std::vector<Note> notes;            // onset_us from the context's end
  std::vector<PedalChange> pedals;    // time_us from the context's end
  std::int64_t length_us = 0;         // the clock advance of `tokens`
  bool stopped = false;               // cut short by the stop time or the cancel flag
};

class Continuer {
 public:
  virtual ~Continuer() = default;
  // Continues `context` by at least `length_us` of the tokenizer clock (it
  // may overshoot), returning what it has at `stop_us` (steady clock) or when
  // `cancel` is set. // inference thread
  virtual Continuation next(std::span<const tokens::Token> context, std::int64_t length_us,
                            std::int64_t stop_us, const std::atomic<bool>& cancel) = 0;
};

class ContinuationStream final : public AnswerStream {
 public:
  // `context`: the call's tokens. // inference thread
  ContinuationStream(std::unique_ptr<Continuer> continuer, std::vector<tokens::Token> context);

  // // inference thread
  Performance next_chunk(const ChunkSpec& chunk, const std::atomic<bool>& cancel) override;

  // Steady-clock time a step is expected to run past its stop time, and the
  // chunk's hand-over to the event loop. // inference thread
  [[nodiscard]] std::int64_t stop_margin_us() const;

 private:
  void append(Continuation&& step);
  void skip_to(std::int64_t clock_us);

  std::unique_ptr<Continuer> continuer_;
  std::vector<tokens::Token> context_;
  std::int64_t clock_us_ = 0;  // the tokenizer clock at the end of the context
  // The clock at answer time 0: unknown until the model plays its first note.
  std::optional<std::int64_t> origin_us_;
  std::int64_t position_us_ = 0;  // answer time where the next chunk starts
  Performance pending_;           // generated, not yet handed out; times on the tokenizer clock
  double step_us_ = 20'000.0;     // running estimate of one token's compute time
};

}  // namespace tatumflow::daemon
