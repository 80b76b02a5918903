// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/session.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "tatumflow/daemon/echo_generator.hpp"

namespace tatumflow::daemon {
namespace {

constexpr std::int64_t kOrigin = 2'000'000'000;
constexpr std::int64_t kBeat = 500'000;  // 120 bpm
constexpr std::int64_t kBar = 4 * kBeat;

// Keeps what a session submits and schedules, as the real pool and scheduler would receive it.
class RecordingOutputs final : public SessionOutputs {
 public:
  bool submit(WorkItem item) override {
    if (full) return false;
    items.push_back(std::move(item));
    return true;
  }
  std::size_t schedule(std::span<const MidiEvent> events, std::uint16_t source) override {
    for (const MidiEvent& e : events) scheduled.push_back({e, source});
    return events.size();
  }
  void cancel_output(std::uint16_t source) override { cancelled.push_back(source); }

  GenerationRequest& request(std::size_t i = 0) { return std::get<GenerationRequest>(items.at(i)); }

  struct Scheduled {
    MidiEvent event;
    std::uint16_t source;
  };
  std::vector<WorkItem> items;
  std::vector<Scheduled> scheduled;
  std::vector<std::uint16_t> cancelled;
  bool full = false;
};

// Runs the echo generator over a request's chunks, as a worker would.
std::vector<ChunkResult> generate(const GenerationRequest& request) {
  EchoGenerator echo;
  const std::unique_ptr<AnswerStream> stream = echo.begin(request);
  std::vector<ChunkResult> results;
  for (std::size_t k = 0; k < request.chunks.size(); ++k) {
    ChunkResult r;
    r.session = request.session;
    r.generation = request.generation;
    r.chunk = static_cast<int>(k);
    r.last = k + 1 == request.chunks.size();
    r.notes = stream->next_chunk(request.chunks[k], *request.cancel);
    results.push_back(std::move(r));
  }
  return results;
}

MidiEvent midi(std::int64_t t, std::uint8_t status, std::uint8_t d1, std::uint8_t d2) {
  return MidiEvent{t, {status, d1, d2}, 3, 0};
}

SessionSettings trading_settings() {
  SessionSettings s;
  s.name = "piano";
  s.output_channel = 2;
  s.phrase_end.silence_ms = 0;
  s.phrase_end.bars = 4;
  s.bars = 4;
  return s;
}

struct Rig {
  explicit Rig(const SessionSettings& settings, double tempo_bpm = 120.0)
      : clock(tempo_bpm, 4, kOrigin),
        session(0, settings, SessionTiming{}, 1, clock, outputs, log, initial_style_state(settings)) {}
  // A call of one note per beat for `beats` beats from `start`.
  void play(std::int64_t start, int beats, std::int64_t beat_us = kBeat) {
    for (int b = 0; b < beats; ++b) {
      const std::int64_t t = start + b * beat_us;
      session.on_midi(midi(t, 0x90, static_cast<std::uint8_t>(60 + b % 12), 90));
      session.on_midi(midi(t + beat_us / 2, 0x80, static_cast<std::uint8_t>(60 + b % 12), 0));
      session.tick(t + beat_us / 2);
    }
  }
  BarClock clock;
  RecordingOutputs outputs;
  Logger log{LogLevel::error, false, stderr};
  Session session;
};

TEST(Session, TradingFoursAnswersExactlyOnBarFive) {
  Rig rig(trading_settings());
  rig.play(kOrigin, 15);  // bars 0-3, the last beat rests
  rig.session.tick(kOrigin + 4 * kBar - kBeat - 1);
  EXPECT_TRUE(rig.outputs.items.empty());
  rig.session.tick(kOrigin + 4 * kBar - kBeat);  // one beat of look-ahead
  ASSERT_EQ(rig.outputs.items.size(), 1u);
  const GenerationRequest& request = rig.outputs.request();
  EXPECT_EQ(request.chunks.size(), 4u);
  EXPECT_EQ(request.chunks[0].length_us, kBar);
  EXPECT_EQ(request.chunks[0].deadline_us, kOrigin + 4 * kBar - 5'000);
  EXPECT_EQ(request.chunks[3].expires_us, kOrigin + 8 * kBar);
  EXPECT_EQ(request.call_phase_us, 0);
  ASSERT_TRUE(rig.session.plan());
  EXPECT_EQ(rig.session.plan()->start_bar, 4);

  const std::int64_t now = kOrigin + 4 * kBar - kBeat + 20'000;
  for (ChunkResult& r : generate(request)) rig.session.on_result(std::move(r), now);
  const auto& scheduled = rig.outputs.scheduled;
  ASSERT_FALSE(scheduled.empty());
  const auto first_on = std::find_if(scheduled.begin(), scheduled.end(),
                                     [](const auto& s) { return (s.event.status() & 0xF0) == 0x90; });
  ASSERT_NE(first_on, scheduled.end());
  EXPECT_EQ(first_on->event.time_us, kOrigin + 4 * kBar);  // bar 5, to the microsecond
  EXPECT_EQ(first_on->event.status(), 0x91);               // output channel 2
  EXPECT_EQ(first_on->event.port, 1);
  EXPECT_EQ(first_on->event.bytes[1], 65);  // the echo: 60 a fourth up
  int ons = 0;
  int offs = 0;
  for (const auto& s : scheduled) {
    EXPECT_LE(s.event.time_us, kOrigin + 8 * kBar);  // nothing after the answer's last bar
    EXPECT_GE(s.event.time_us, kOrigin + 4 * kBar);
    ons += (s.event.status() & 0xF0) == 0x90;
    offs += (s.event.status() & 0xF0) == 0x80;
  }
  EXPECT_EQ(ons, 15);
  EXPECT_EQ(offs, 15);
  EXPECT_TRUE(std::any_of(scheduled.begin(), scheduled.end(), [](const auto& s) {
    return s.event.status() == 0xB1 && s.event.bytes[1] == 64 && s.event.bytes[2] == 0 &&
           s.event.time_us == kOrigin + 8 * kBar;
  }));
  EXPECT_EQ(rig.session.stats().late_notes, 0u);
  EXPECT_TRUE(rig.session.answering(kOrigin + 8 * kBar - 1));
  EXPECT_FALSE(rig.session.answering(kOrigin + 8 * kBar));
}

TEST(Session, TradingFoursAt240Bpm) {
  Rig rig(trading_settings(), 240.0);
  constexpr std::int64_t kBeat240 = 250'000;
  rig.play(kOrigin, 14, kBeat240);
  rig.session.tick(kOrigin + 16 * kBeat240 - kBeat240);
  ASSERT_EQ(rig.outputs.items.size(), 1u);
  for (ChunkResult& r : generate(rig.outputs.request()))
    rig.session.on_result(std::move(r), kOrigin + 15 * kBeat240 + 10'000);
  const auto first_on = std::find_if(rig.outputs.scheduled.begin(), rig.outputs.scheduled.end(),
                                     [](const auto& s) { return (s.event.status() & 0xF0) == 0x90; });
  ASSERT_NE(first_on, rig.outputs.scheduled.end());
  EXPECT_EQ(first_on->event.time_us, kOrigin + 4'000'000);  // bar 5 at 240 bpm: 4 bars of 1 s
}

TEST(Session, NotesDuringTheAnswerDoNotStartACallButAPickupDoes) {
  Rig rig(trading_settings());
  rig.play(kOrigin, 14);
  rig.session.tick(kOrigin + 4 * kBar - kBeat);
  ASSERT_EQ(rig.outputs.items.size(), 1u);
  rig.session.on_midi(midi(kOrigin + 4 * kBar - 100'000, 0x90, 70, 80));  // the call's last beat, late
  EXPECT_FALSE(rig.session.in_call());
  rig.session.on_midi(midi(kOrigin + 6 * kBar, 0x90, 72, 80));  // during the answer
  EXPECT_FALSE(rig.session.in_call());
  rig.session.on_midi(midi(kOrigin + 8 * kBar - 200'000, 0x90, 74, 80));  // pickup into bar 9
  EXPECT_TRUE(rig.session.in_call());
}

TEST(Session, LateFirstChunkMovesTheAnswerToTheNextDownbeat) {
  Rig rig(trading_settings());
  rig.play(kOrigin, 14);
  rig.session.tick(kOrigin + 4 * kBar - kBeat);
  std::vector<ChunkResult> results = generate(rig.outputs.request());
  // The first chunk arrives 100 ms into bar 5.
  rig.session.on_result(std::move(results[0]), kOrigin + 4 * kBar + 100'000);
  ASSERT_TRUE(rig.session.plan());
  EXPECT_EQ(rig.session.plan()->start_bar, 5);
  EXPECT_EQ(rig.session.stats().start_moves, 1u);
  const auto first_on = std::find_if(rig.outputs.scheduled.begin(), rig.outputs.scheduled.end(),
                                     [](const auto& s) { return (s.event.status() & 0xF0) == 0x90; });
  ASSERT_NE(first_on, rig.outputs.scheduled.end());
  EXPECT_EQ(first_on->event.time_us, kOrigin + 5 * kBar);
  EXPECT_EQ(rig.session.stats().late_notes, 0u);
}

TEST(Session, LaterChunkIsShortenedAndStaleResultsDropped) {
  Rig rig(trading_settings());
  rig.play(kOrigin, 14);
  rig.session.tick(kOrigin + 4 * kBar - kBeat);
  std::vector<ChunkResult> results = generate(rig.outputs.request());
  rig.session.on_result(std::move(results[0]), kOrigin + 4 * kBar - 300'000);
  // Chunk 1 (bar 6) arrives 1.2 beats into its bar: its first two notes are dropped.
  const std::size_t before = rig.outputs.scheduled.size();
  rig.session.on_result(std::move(results[1]), kOrigin + 5 * kBar + 600'000);
  EXPECT_EQ(rig.session.stats().late_notes, 2u);
  for (std::size_t i = before; i < rig.outputs.scheduled.size(); ++i) {
    EXPECT_GE(rig.outputs.scheduled[i].event.time_us, kOrigin + 5 * kBar + 605'000);
  }
  ChunkResult stale = results[2];
  stale.generation = 99;
  rig.session.on_result(std::move(stale), kOrigin + 5 * kBar + 700'000);
  EXPECT_EQ(rig.session.stats().stale_results, 1u);
}

TEST(Session, SilenceEndAnswersOnTheNextDownbeatAndANewAnswerCancelsTheOld) {
  SessionSettings settings = trading_settings();
  settings.phrase_end.bars = 0;
  settings.phrase_end.silence_ms = 1000;
  Rig rig(settings);
  rig.play(kOrigin + 300'000, 3);  // the last release is at 1.55 s
  rig.session.tick(kOrigin + 2'549'999);
  EXPECT_TRUE(rig.outputs.items.empty());
  rig.session.tick(kOrigin + 2'550'000);
  ASSERT_EQ(rig.outputs.items.size(), 1u);
  // The downbeat after the call (2 s) has passed: the next one, 4 s.
  EXPECT_EQ(rig.session.plan()->start_bar, 2);
  EXPECT_EQ(rig.outputs.request().call_phase_us, 300'000);
  // The player plays again before the answer: the old generation is cancelled.
  const auto old_cancel = rig.outputs.request().cancel;
  rig.play(kOrigin + 3'000'000, 2);
  rig.session.tick(kOrigin + 5'000'000);
  ASSERT_EQ(rig.outputs.items.size(), 2u);
  EXPECT_TRUE(old_cancel->load());
  EXPECT_EQ(rig.outputs.cancelled, std::vector<std::uint16_t>{0});
  EXPECT_EQ(rig.session.stats().cancelled, 1u);
  // Results of the old generation are stale now.
  for (ChunkResult& r : generate(rig.outputs.request(0)))
    rig.session.on_result(std::move(r), kOrigin + 5'000'000);
  EXPECT_EQ(rig.session.stats().stale_results, 4u);
  EXPECT_TRUE(rig.outputs.scheduled.empty());
}

// A note-off lost between the player and the daemon must not hold the call
// open for ever: the player's All Notes Off (a controller's panic) ends it.
TEST(Session, AllNotesOffFromThePlayerEndsACallWithALostNoteOff) {
  SessionSettings settings = trading_settings();
  settings.phrase_end.bars = 0;
  settings.phrase_end.silence_ms = 1000;
  Rig rig(settings);
  rig.play(kOrigin + 300'000, 3);
  rig.session.on_midi(midi(kOrigin + 1'600'000, 0x90, 72, 90));  // its note-off never arrives
  rig.session.tick(kOrigin + 5'000'000);
  EXPECT_TRUE(rig.outputs.items.empty());
  rig.session.on_midi(midi(kOrigin + 5'000'000, 0xB5, kAllNotesOff, 0));
  rig.session.tick(kOrigin + 5'999'999);
  EXPECT_TRUE(rig.outputs.items.empty());
  rig.session.tick(kOrigin + 6'000'000);
  ASSERT_EQ(rig.outputs.items.size(), 1u);
  EXPECT_EQ(rig.outputs.request().call_length_us, 4'700'000);
}

TEST(Session, ChannelFilterTriggerAndBusyQueue) {
  SessionSettings settings = trading_settings();
  settings.input_channel = 3;
  settings.phrase_end.bars = 0;
  settings.phrase_end.silence_ms = 5000;
  Rig rig(settings);
  rig.session.on_midi(midi(kOrigin, 0x90, 60, 90));  // channel 1: not ours
  EXPECT_FALSE(rig.session.in_call());
  rig.session.on_midi(midi(kOrigin, 0x92, 60, 90));
  EXPECT_TRUE(rig.session.in_call());
  EXPECT_FALSE(rig.session.trigger(kOrigin + 100'000));  // shorter than min_call
  rig.outputs.full = true;
  EXPECT_TRUE(rig.session.trigger(kOrigin + 800'000));
  EXPECT_EQ(rig.session.stats().busy, 1u);
  EXPECT_FALSE(rig.session.plan());
}

TEST(Session, ClockJumpDropsCallAndAnswer) {
  Rig rig(trading_settings());
  rig.play(kOrigin, 14);
  rig.session.tick(kOrigin + 4 * kBar - kBeat);
  ASSERT_TRUE(rig.session.plan());
  rig.clock.set_beats_per_bar(3);
  rig.session.tick(kOrigin + 4 * kBar - kBeat + 1000);
  EXPECT_FALSE(rig.session.plan());
  EXPECT_EQ(rig.outputs.cancelled.size(), 1u);
  EXPECT_TRUE(rig.outputs.request().cancel->load());
}

TEST(Session, LearnsFromCallsAndPersistsTheStyle) {
  Rig rig(trading_settings());
  rig.session.load_style("learn", "/nonexistent");
  rig.play(kOrigin, 14);
  rig.session.tick(kOrigin + 4 * kBar - kBeat);
  ASSERT_EQ(rig.outputs.items.size(), 2u);
  const auto& learn = std::get<StyleRequest>(rig.outputs.items[1]);
  EXPECT_TRUE(learn.learn);
  EXPECT_EQ(learn.tokens, rig.outputs.request().call_tokens);
  StyleResult result;
  result.session = 0;
  result.learn = true;
  result.ok = true;
  result.style.mean.fill(0.5f);
  rig.session.on_style(result);
  EXPECT_EQ(rig.session.style().current().mean[0], 0.5f);
  EXPECT_EQ(rig.session.stats().learned, 1u);

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "tatumflow_session_test";
  std::filesystem::remove_all(dir);
  const std::filesystem::path path = style_state_path(dir, rig.session.name());
  rig.session.save_style_if_changed(path);
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(bitwise_equal(load_style_state(path), rig.session.style().state()));
  // A bundled style by name, from the styles directory.
  rig.session.load_style("piano", dir / "sessions");
  EXPECT_EQ(rig.session.style().state().source, "piano");
  EXPECT_THROW(rig.session.load_style("no such style!", dir), StyleError);
  EXPECT_THROW(rig.session.load_style("missing", dir), StyleError);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tatumflow::daemon
