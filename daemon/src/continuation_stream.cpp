// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/continuation_stream.hpp"

#include <algorithm>
#include <cmath>

#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow::daemon {

namespace {

// From the chunk's hand-over to the event loop placing it.
constexpr std::int64_t kHandoverUs = 3'000;
// What tokens::decode gives a NOTE_ON whose DURATION never came.
constexpr auto kDanglingDurationToken =
    static_cast<tokens::Token>(tokens::kDurationBase + tokens::kDefaultDurationUs / tokens::kStepUs - 1);

}  // namespace

ContinuationStream::ContinuationStream(std::unique_ptr<Continuer> continuer,
                                       std::vector<tokens::Token> context)
    : continuer_(std::move(continuer)),
      context_(std::move(context)),
      clock_us_(tokens::end_time_us(context_)) {}

std::int64_t ContinuationStream::stop_margin_us() const { return std::llround(1.5 * step_us_) + kHandoverUs; }

Performance ContinuationStream::next_chunk(const ChunkSpec& chunk, const std::atomic<bool>& cancel) {
  const std::int64_t end_us = position_us_ + chunk.length_us;  // answer time
  const std::int64_t stop_us = chunk.deadline_us - stop_margin_us();
  while (!cancel.load(std::memory_order_acquire)) {
    // Until the model plays a note, its silence is dropped: the clock's end
    // stands for where this chunk starts.
    const std::int64_t origin_us = origin_us_.value_or(clock_us_ - position_us_);
    const std::int64_t missing_us = origin_us + end_us - clock_us_;
    const std::int64_t started_us = steady_now_us();
    if (missing_us <= 0 || started_us >= stop_us) break;
    Continuation step = continuer_->next(context_, missing_us, stop_us, cancel);
    if (!step.tokens.empty()) {
      const double per_token_us =
          static_cast<double>(steady_now_us() - started_us) / static_cast<double>(step.tokens.size());
      step_us_ = 0.75 * step_us_ + 0.25 * per_token_us;
    }
    const bool done = step.stopped || step.length_us <= 0;  // no progress: do not spin
    append(std::move(step));
    if (done) break;
  }

  Performance out;
  out.length_us = chunk.length_us;
  if (!origin_us_) {
    position_us_ = end_us;
    return out;  // nothing played yet; pedal changes wait for the first note
  }
  // Cut short: the rest of the chunk is silence, and the model goes on after it.
  if (clock_us_ < *origin_us_ + end_us) skip_to(*origin_us_ + end_us);
  const std::int64_t chunk_start_us = *origin_us_ + position_us_;
  const std::int64_t chunk_end_us = *origin_us_ + end_us;
  const auto due = [&](std::int64_t time_us) { return time_us < chunk_end_us; };
  for (const Note& note : pending_.notes) {
    if (!due(note.onset_us)) continue;
    Note placed = note;
    placed.onset_us -= chunk_start_us;
    out.notes.push_back(placed);
  }
  for (const PedalChange& pedal : pending_.pedals) {
    // Pedal changes in the silence before the first note move onto it.
    if (due(pedal.time_us))
      out.pedals.push_back(
          {std::max(pedal.time_us - chunk_start_us, std::int64_t{0}), pedal.down, pedal.channel});
  }
  std::erase_if(pending_.notes, [&](const Note& note) { return due(note.onset_us); });
  std::erase_if(pending_.pedals, [&](const PedalChange& pedal) { return due(pedal.time_us); });
  position_us_ = end_us;
  return out;
}

void ContinuationStream::append(Continuation&& step) {
  for (Note& note : step.notes) {
    note.onset_us += clock_us_;
    pending_.notes.push_back(note);
  }
  for (PedalChange& pedal : step.pedals) {
    pedal.time_us += clock_us_;
    pending_.pedals.push_back(pedal);
  }
  context_.insert(context_.end(), step.tokens.begin(), step.tokens.end());
  clock_us_ += step.length_us;
  if (!context_.empty() && tokens::kind_of(context_.back()) == tokens::Kind::NoteOn)
    context_.push_back(kDanglingDurationToken);
  if (!origin_us_ && !pending_.notes.empty()) {
    const auto first = std::min_element(pending_.notes.begin(), pending_.notes.end(),
                                        [](const Note& a, const Note& b) { return a.onset_us < b.onset_us; });
    origin_us_ = first->onset_us - position_us_;
  }
}

void ContinuationStream::skip_to(std::int64_t clock_us) {
  // The tokenizer's clock: <T> to each 5 s chunk boundary crossed, then one
  // TIME_SHIFT (tokenizer.hpp); rounded up to its 10 ms step.
  std::int64_t now_steps = clock_us_ / tokens::kStepUs;
  const std::int64_t target_steps = (clock_us + tokens::kStepUs - 1) / tokens::kStepUs;
  while (target_steps / tokens::kStepsPerChunk > now_steps / tokens::kStepsPerChunk) {
    context_.push_back(tokens::kChunk);
    now_steps = (now_steps / tokens::kStepsPerChunk + 1) * tokens::kStepsPerChunk;
  }
  if (target_steps > now_steps)
    context_.push_back(static_cast<tokens::Token>(tokens::kTimeShiftBase + (target_steps - now_steps) - 1));
  clock_us_ = target_steps * tokens::kStepUs;
}

}  // namespace tatumflow::daemon
