// SPDX-License-Identifier: GPL-3.0-or-later
// ContinuationStream, the model's path into an answer, with a scripted token
// model in place of the neural one: a metronome on the tokenizer clock.
#include "tatumflow/daemon/continuation_stream.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow::daemon {
namespace {

constexpr std::int64_t kPeriodUs = 250'000;
constexpr std::int64_t kChunkUs = 2'000'000;  // a bar at 120 bpm

// The call: four notes, the last at 1.0 s.
std::vector<tokens::Token> call_tokens() {
  Performance call;
  for (int i = 0; i < 4; ++i) call.notes.push_back({i * 250'000 + 250'000, 200'000, 60, 80, 0});
  return tokens::encode(call, {.add_sos = true, .add_eos = false});
}

// Plays a note every 250 ms of the tokenizer clock from `first_note_us` on,
// like a model that rests after the call and then keeps a pulse. Like the
// model, a step ends with the time shift that passes the length asked for (to
// its next note, up to 250 ms further); one step can be made to stop early
// after some notes, its last one left without a DURATION.
class Metronome final : public Continuer {
 public:
  explicit Metronome(std::int64_t first_note_us) : first_note_us_(first_note_us) {}

  Continuation next(std::span<const tokens::Token> context, std::int64_t length_us, std::int64_t stop_us,
                    const std::atomic<bool>&) override {
    contexts.emplace_back(context.begin(), context.end());
    stop_times_us.push_back(stop_us);
    std::this_thread::sleep_for(delay_per_call);
    const std::int64_t clock_us = tokens::end_time_us(context);
    std::int64_t now_steps = clock_us / tokens::kStepUs;
    Continuation out;
    const std::int64_t from_us = std::max(clock_us, first_note_us_);
    std::int64_t t = first_note_us_ + (from_us - first_note_us_ + kPeriodUs - 1) / kPeriodUs * kPeriodUs;
    for (; t < clock_us + length_us; t += kPeriodUs) {
      advance(out.tokens, now_steps, t / tokens::kStepUs);
      const auto pitch = static_cast<std::uint8_t>(60 + (t / kPeriodUs) % 12);
      out.tokens.push_back(static_cast<tokens::Token>(tokens::kVelocityBase + 20));
      out.tokens.push_back(static_cast<tokens::Token>(tokens::kNoteOnBase + pitch - tokens::kMinPitch));
      if (--stop_after_notes == 0) {
        out.notes.push_back({t - clock_us, tokens::kDefaultDurationUs, pitch, tokens::bin_velocity(20), 0});
        out.stopped = true;
        break;
      }
      out.tokens.push_back(static_cast<tokens::Token>(tokens::kDurationBase + 10 - 1));
      out.notes.push_back({t - clock_us, 100'000, pitch, tokens::bin_velocity(20), 0});
    }
    if (!out.stopped) advance(out.tokens, now_steps, t / tokens::kStepUs);
    out.length_us = now_steps * tokens::kStepUs - clock_us;
    return out;
  }

  int stop_after_notes = -1;  // counts down; 0 stops the step that reaches it
  std::chrono::milliseconds delay_per_call{0};
  std::vector<std::vector<tokens::Token>> contexts;
  std::vector<std::int64_t> stop_times_us;

 private:
  static void advance(std::vector<tokens::Token>& out, std::int64_t& now_steps, std::int64_t to_steps) {
    while (to_steps / tokens::kStepsPerChunk > now_steps / tokens::kStepsPerChunk) {
      out.push_back(tokens::kChunk);
      now_steps = (now_steps / tokens::kStepsPerChunk + 1) * tokens::kStepsPerChunk;
    }
    if (to_steps > now_steps) {
      out.push_back(static_cast<tokens::Token>(tokens::kTimeShiftBase + (to_steps - now_steps) - 1));
      now_steps = to_steps;
    }
  }

  std::int64_t first_note_us_;
};

ChunkSpec chunk_due_in(std::int64_t deadline_from_now_us) {
  ChunkSpec spec;
  spec.length_us = kChunkUs;
  spec.deadline_us = steady_now_us() + deadline_from_now_us;
  spec.expires_us = spec.deadline_us + kChunkUs;
  return spec;
}

// Answer-time onsets of `count` chunks.
std::vector<std::int64_t> answer_onsets(ContinuationStream& stream, int count,
                                        std::int64_t deadline_from_now_us = 10'000'000) {
  const std::atomic<bool> cancel{false};
  std::vector<std::int64_t> onsets;
  for (int chunk = 0; chunk < count; ++chunk) {
    const Performance notes = stream.next_chunk(chunk_due_in(deadline_from_now_us), cancel);
    EXPECT_EQ(notes.length_us, kChunkUs);
    for (const Note& note : notes.notes) {
      EXPECT_GE(note.onset_us, 0) << "chunk " << chunk;
      EXPECT_LT(note.onset_us, kChunkUs) << "chunk " << chunk;
      onsets.push_back(chunk * kChunkUs + note.onset_us);
    }
  }
  return onsets;
}

std::vector<std::int64_t> pulse(std::int64_t from_us, std::int64_t to_us) {
  std::vector<std::int64_t> out;
  for (std::int64_t t = from_us; t < to_us; t += kPeriodUs) out.push_back(t);
  return out;
}

TEST(ContinuationStream, TheFirstNoteIsOnTheDownbeatAndNoNoteIsLostAcrossChunks) {
  auto model = std::make_unique<Metronome>(1'300'000);  // a 300 ms rest after the call
  Metronome& metronome = *model;
  ContinuationStream stream(std::move(model), call_tokens());
  // Steps overshoot chunk ends and start on their notes: each note comes once, on its chunk.
  EXPECT_EQ(answer_onsets(stream, 4), pulse(0, 4 * kChunkUs));
  // The model continued its own output: each context extends the previous one.
  for (std::size_t i = 1; i < metronome.contexts.size(); ++i) {
    ASSERT_GT(metronome.contexts[i].size(), metronome.contexts[i - 1].size());
    EXPECT_TRUE(std::equal(metronome.contexts[i - 1].begin(), metronome.contexts[i - 1].end(),
                           metronome.contexts[i].begin()));
  }
}

TEST(ContinuationStream, AChunkCutShortStaysSilentAndTheRestKeepsTheGrid) {
  auto model = std::make_unique<Metronome>(1'300'000);
  Metronome& metronome = *model;
  metronome.stop_after_notes = 3;  // the model runs out of time on the third note
  ContinuationStream stream(std::move(model), call_tokens());
  std::vector<std::int64_t> expected = pulse(0, 3 * kPeriodUs);
  for (const std::int64_t t : pulse(kChunkUs, 3 * kChunkUs)) expected.push_back(t);
  EXPECT_EQ(answer_onsets(stream, 3), expected);
  // The note it had started without a DURATION got the one it was played
  // with, and the clock skipped the silence to the next chunk.
  ASSERT_GE(metronome.contexts.size(), 2u);
  const std::vector<tokens::Token>& context = metronome.contexts[1];
  const auto note_on = std::find_if(context.rbegin(), context.rend(), [](tokens::Token t) {
    return tokens::kind_of(t) == tokens::Kind::NoteOn;
  });
  ASSERT_NE(note_on, context.rend());
  ASSERT_NE(note_on, context.rbegin());
  const tokens::Token duration = *(note_on - 1);
  EXPECT_EQ(tokens::kind_of(duration), tokens::Kind::Duration);
  EXPECT_EQ(tokens::value_of(duration) * tokens::kStepUs, tokens::kDefaultDurationUs);
  EXPECT_EQ(tokens::end_time_us(context), 1'300'000 + kChunkUs);
}

TEST(ContinuationStream, AChunkPastItsDeadlineIsSilentAndTheAnswerStartsInTheNext) {
  auto model = std::make_unique<Metronome>(1'300'000);
  Metronome& metronome = *model;
  ContinuationStream stream(std::move(model), call_tokens());
  const std::atomic<bool> cancel{false};
  EXPECT_TRUE(stream.next_chunk(chunk_due_in(-1'000), cancel).notes.empty());
  EXPECT_TRUE(metronome.contexts.empty()) << "the model ran for a chunk already due";
  const Performance next = stream.next_chunk(chunk_due_in(10'000'000), cancel);
  ASSERT_FALSE(next.notes.empty());
  EXPECT_EQ(next.notes.front().onset_us, 0);
}

TEST(ContinuationStream, TheModelIsStoppedInTimeToHandTheChunkOver) {
  auto model = std::make_unique<Metronome>(1'300'000);
  Metronome& metronome = *model;
  metronome.delay_per_call = std::chrono::milliseconds(30);
  ContinuationStream stream(std::move(model), call_tokens());
  const std::atomic<bool> cancel{false};
  const ChunkSpec spec = chunk_due_in(5'000'000);
  const std::int64_t margin_us = stream.stop_margin_us();
  (void)stream.next_chunk(spec, cancel);
  ASSERT_FALSE(metronome.stop_times_us.empty());
  EXPECT_EQ(metronome.stop_times_us[0], spec.deadline_us - margin_us);
  EXPECT_GT(margin_us, 3'000);  // at least the hand-over to the event loop
  // Slow steps (30 ms for 8 notes, ~1 ms a token) teach it the model's pace.
  EXPECT_NE(stream.stop_margin_us(), margin_us);
}

TEST(ContinuationStream, ACancelledAnswerRunsNoModel) {
  auto model = std::make_unique<Metronome>(1'300'000);
  Metronome& metronome = *model;
  ContinuationStream stream(std::move(model), call_tokens());
  const std::atomic<bool> cancel{true};
  EXPECT_TRUE(stream.next_chunk(chunk_due_in(10'000'000), cancel).notes.empty());
  EXPECT_TRUE(metronome.contexts.empty());
}

}  // namespace
}  // namespace tatumflow::daemon
