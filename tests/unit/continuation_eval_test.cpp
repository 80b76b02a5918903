// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/continuation_eval.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace tatumflow::continuation {
namespace {

constexpr std::int64_t kSecond = 1'000'000;

// A note every `step_us` from `from_us` to before `to_us`, pitches cycling C D E G,
// at a velocity the tokenizer keeps exactly (bin 20).
Performance scale_run(std::int64_t from_us, std::int64_t to_us, std::int64_t step_us,
                      std::int64_t duration_us) {
  constexpr int kPitches[] = {60, 62, 64, 67};
  Performance performance;
  int i = 0;
  for (std::int64_t t = from_us; t < to_us; t += step_us, ++i) {
    performance.notes.push_back({t, duration_us, static_cast<std::uint8_t>(kPitches[i % 4]), 82, 0});
  }
  performance.length_us = to_us;
  performance.sort();
  return performance;
}

TEST(ContinuationEval, ExcerptMovesCutsAndCarriesThePedal) {
  Performance p;
  p.notes = {{1 * kSecond, 500'000, 60, 80, 0},      // before the span
             {2 * kSecond, 3 * kSecond, 62, 81, 0},  // held past the end: cut
             {3 * kSecond, 100'000, 64, 82, 0}};
  p.pedals = {{1'500'000, true, 0}, {3'500'000, false, 0}, {3'800'000, true, 0}};
  p.length_us = 10 * kSecond;
  const Performance e = excerpt(p, 2 * kSecond, 4 * kSecond, -2 * kSecond);
  ASSERT_EQ(e.notes.size(), 2u);
  EXPECT_EQ(e.notes[0].onset_us, 0);
  EXPECT_EQ(e.notes[0].duration_us, 2 * kSecond);  // cut at the span's end
  EXPECT_EQ(e.notes[0].pitch, 62);
  EXPECT_EQ(e.notes[1].onset_us, 1 * kSecond);
  EXPECT_EQ(e.notes[1].duration_us, 100'000);
  EXPECT_EQ(e.length_us, 2 * kSecond);
  // Down at the start (pressed before it), up at 1.5 s, down at 1.8 s, released at the end.
  ASSERT_EQ(e.pedals.size(), 4u);
  EXPECT_EQ(e.pedals[0], (PedalChange{0, true, 0}));
  EXPECT_EQ(e.pedals[1], (PedalChange{1'500'000, false, 0}));
  EXPECT_EQ(e.pedals[2], (PedalChange{1'800'000, true, 0}));
  EXPECT_EQ(e.pedals[3], (PedalChange{2 * kSecond, false, 0}));
  EXPECT_THROW((void)excerpt(p, 2 * kSecond, 2 * kSecond, 0), std::invalid_argument);
}

TEST(ContinuationEval, OptionsRejectAContinuationLongerThanTheContext) {
  ClipOptions options;
  options.context_us = 5 * kSecond;
  options.continuation_us = 10 * kSecond;
  EXPECT_THROW(options.validate(), std::invalid_argument);
  options.continuation_us = 0;
  EXPECT_THROW(options.validate(), std::invalid_argument);
  EXPECT_NO_THROW(ClipOptions{}.validate());
}

TEST(ContinuationEval, CutClipsTilesFromTheFirstOnsetAndDropsSilentOnes) {
  // Notes from 1 s to 71 s, then silence from 31 s to 61 s punched out below.
  Performance p = scale_run(1 * kSecond, 91 * kSecond, 250'000, 200'000);
  std::erase_if(p.notes,
                [](const Note& n) { return n.onset_us >= 55 * kSecond && n.onset_us < 61 * kSecond; });
  const std::vector<Clip> clips = cut_clips(p, ClipOptions{});
  // Tiles start at 1, 31 and 61 s; the second's continuation (51-61 s) has
  // only 16 notes left, still >= 10, so craft the check on counts instead.
  ASSERT_EQ(clips.size(), 3u);
  EXPECT_EQ(clips[0].start_us, 1 * kSecond);
  EXPECT_EQ(clips[1].start_us, 31 * kSecond);
  EXPECT_EQ(clips[2].start_us, 61 * kSecond);
  EXPECT_EQ(clips[0].context.notes.size(), 80u);
  EXPECT_EQ(clips[0].continuation.notes.size(), 40u);
  EXPECT_EQ(clips[1].continuation.notes.size(), 16u);
  for (const Clip& clip : clips) {
    EXPECT_EQ(clip.context.notes.front().onset_us, 0);
    EXPECT_LT(clip.context.notes.back().onset_us, 20 * kSecond);
    EXPECT_GE(clip.continuation.notes.front().onset_us, 20 * kSecond);
    EXPECT_LT(clip.continuation.notes.back().onset_us, 30 * kSecond);
  }

  ClipOptions strict;
  strict.min_continuation_notes = 20;
  const std::vector<Clip> kept = cut_clips(p, strict);
  ASSERT_EQ(kept.size(), 2u);  // the clip with 16 continuation notes is dropped
  EXPECT_EQ(kept[1].start_us, 61 * kSecond);
  EXPECT_TRUE(cut_clips(Performance{}, strict).empty());
}

TEST(ContinuationEval, SpreadEvenly) {
  EXPECT_EQ(spread_evenly(10, 3), (std::vector<std::size_t>{0, 3, 6}));
  EXPECT_EQ(spread_evenly(2, 5), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(spread_evenly(4, 4), (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_TRUE(spread_evenly(0, 3).empty());
}

TEST(ContinuationEval, ContextTokensEndOnTheClockOfTheContextsEnd) {
  const Performance context = scale_run(0, 12'300'000, 500'000, 200'000);  // last onset 12.0 s
  const std::vector<tokens::Token> t = context_tokens(context, 20 * kSecond);
  EXPECT_EQ(t.front(), tokens::kSos);
  EXPECT_EQ(tokens::end_time_us(t), 20 * kSecond);
  EXPECT_EQ(tokens::decode(t).notes, context.notes);
  // A clip length off the chunk grid ends with a TIME_SHIFT.
  EXPECT_EQ(tokens::end_time_us(context_tokens(context, 17'250'000)), 17'250'000);
}

TEST(ContinuationEval, ContextWindowKeepsTheClockPhase) {
  // Dense enough that 5 s hold more than 64 tokens: the window cannot open at a <T>.
  const Performance context = scale_run(0, 20 * kSecond, 120'000, 100'000);
  const std::vector<tokens::Token> whole = context_tokens(context, 20 * kSecond);
  ASSERT_GT(whole.size(), 200u);
  EXPECT_EQ(context_window(whole, 0), whole);
  EXPECT_EQ(context_window(whole, whole.size()), whole);
  for (std::size_t limit : {64u, 150u}) {
    SCOPED_TRACE(limit);
    const std::vector<tokens::Token> window = context_window(whole, limit);
    ASSERT_LE(window.size(), limit);
    EXPECT_GE(window.size(), limit - 8);  // cut at the first time move in reach
    EXPECT_EQ(window.front(), tokens::kSos);
    // The same end of the clock within the chunk, and the same notes there.
    EXPECT_EQ(tokens::end_time_us(window) % tokens::kChunkUs, tokens::end_time_us(whole) % tokens::kChunkUs);
    const std::int64_t offset = tokens::end_time_us(whole) - tokens::end_time_us(window);
    EXPECT_EQ(offset % tokens::kChunkUs, 0);
    const Performance tail = tokens::decode(window);
    const Performance all = tokens::decode(whole);
    ASSERT_FALSE(tail.notes.empty());
    for (std::size_t i = 0; i < tail.notes.size(); ++i) {
      const Note& a = tail.notes[tail.notes.size() - 1 - i];
      const Note& b = all.notes[all.notes.size() - 1 - i];
      EXPECT_EQ(a.onset_us + offset, b.onset_us);
      EXPECT_EQ(a.pitch, b.pitch);
      EXPECT_EQ(a.duration_us, b.duration_us);
    }
  }
  // One note per chunk: SOS VELOCITY NOTE_ON DURATION, then <T> NOTE_ON DURATION per chunk; a cut
  // two tokens in lands on the first <T>, which the window opens with.
  const std::vector<tokens::Token> sparse =
      context_tokens(scale_run(0, 20 * kSecond, 5 * kSecond, 100'000), 20 * kSecond);
  const std::vector<tokens::Token> opened = context_window(sparse, sparse.size() - 2);
  ASSERT_FALSE(opened.empty());
  EXPECT_EQ(opened.front(), tokens::kChunk);
  EXPECT_EQ(tokens::end_time_us(sparse) - tokens::end_time_us(opened), 0);
}

TEST(ContinuationEval, CopyBaselineRepeatsTheLastPartOfTheContext) {
  ClipOptions options;
  const Performance context = scale_run(0, 20 * kSecond, 250'000, 200'000);
  const Performance copy = copy_baseline(context, options);
  ASSERT_EQ(copy.notes.size(), 40u);
  EXPECT_EQ(copy.notes.front().onset_us, 20 * kSecond);
  EXPECT_EQ(copy.notes.back().onset_us, 29'750'000);
  EXPECT_EQ(copy.length_us, 30 * kSecond);
  EXPECT_EQ(metrics::copy_rate(copy, context), 1.0);
}

TEST(ContinuationEval, ContinuationOfDecodesOnlyTheContinuationPart) {
  ClipOptions options;
  const Performance context = scale_run(0, 20 * kSecond, 500'000, 200'000);
  std::vector<tokens::Token> sequence = context_tokens(context, options.context_us);
  // 20.5 s: a one-second note; 29.9 s: a two-second note cut at 30 s.
  sequence.push_back(static_cast<tokens::Token>(tokens::kTimeShiftBase + 50 - 1));
  sequence.push_back(static_cast<tokens::Token>(tokens::kNoteOnBase + 70 - tokens::kMinPitch));
  sequence.push_back(static_cast<tokens::Token>(tokens::kDurationBase + 100 - 1));
  sequence.push_back(tokens::kChunk);
  sequence.push_back(static_cast<tokens::Token>(tokens::kTimeShiftBase + 490 - 1));
  sequence.push_back(static_cast<tokens::Token>(tokens::kNoteOnBase + 72 - tokens::kMinPitch));
  sequence.push_back(static_cast<tokens::Token>(tokens::kDurationBase + 200 - 1));
  const Performance part = continuation_of(sequence, options);
  ASSERT_EQ(part.notes.size(), 2u);
  EXPECT_EQ(part.notes[0].onset_us, 20'500'000);
  EXPECT_EQ(part.notes[0].duration_us, 1 * kSecond);
  EXPECT_EQ(part.notes[0].pitch, 70);
  EXPECT_EQ(part.notes[1].onset_us, 29'900'000);
  EXPECT_EQ(part.notes[1].duration_us, 100'000);
}

TEST(ContinuationEval, JoinPartsCancelsTheReleaseAndPressAtTheSeam) {
  Performance p = scale_run(0, 30 * kSecond, 1 * kSecond, 500'000);
  p.pedals = {{5 * kSecond, true, 0}, {25 * kSecond, false, 0}};
  const Performance joined =
      join_parts(excerpt(p, 0, 20 * kSecond, 0), excerpt(p, 20 * kSecond, 30 * kSecond, 0));
  EXPECT_EQ(joined.notes, p.notes);
  EXPECT_EQ(joined.pedals, p.pedals);
  EXPECT_EQ(joined.length_us, 30 * kSecond);
}

TEST(ContinuationEval, MarkovContinuationReachesTheEndWithoutSpecialTokens) {
  MarkovModel markov(3);
  const Performance training = scale_run(0, 60 * kSecond, 250'000, 200'000);
  markov.train(tokens::encode(training));
  const std::vector<tokens::Token> context =
      context_tokens(scale_run(0, 20 * kSecond, 250'000, 200'000), 20 * kSecond);
  const MarkovContinuation a = markov_continuation(markov, context, 30 * kSecond, 7, 4000);
  EXPECT_FALSE(a.capped);
  std::vector<tokens::Token> whole = context;
  whole.insert(whole.end(), a.tokens.begin(), a.tokens.end());
  EXPECT_GE(tokens::end_time_us(whole), 30 * kSecond);
  for (tokens::Token t : a.tokens) {
    const tokens::Kind kind = tokens::kind_of(t);
    EXPECT_NE(kind, tokens::Kind::Eos);
    EXPECT_NE(kind, tokens::Kind::Sos);
    EXPECT_NE(kind, tokens::Kind::Pad);
    EXPECT_NE(kind, tokens::Kind::Mask);
  }
  EXPECT_GT(continuation_of(whole, ClipOptions{}).notes.size(), 10u);  // it learned the run
  EXPECT_EQ(markov_continuation(markov, context, 30 * kSecond, 7, 4000).tokens, a.tokens);
  const MarkovContinuation capped = markov_continuation(markov, context, 30 * kSecond, 7, 5);
  EXPECT_TRUE(capped.capped);
  EXPECT_EQ(capped.tokens.size(), 5u);
}

TEST(ContinuationEval, ScoreAgainstItselfIsPerfectAndCountsCopies) {
  const Performance p = scale_run(0, 30 * kSecond, 250'000, 200'000);
  const std::vector<Clip> clips = cut_clips(p, ClipOptions{});
  ASSERT_EQ(clips.size(), 1u);
  const Clip& clip = clips[0];
  const metrics::ClipMeasures real = metrics::measure_clip(clip.continuation);
  const Score self = score_continuation(clip, real, clip.continuation, real);
  EXPECT_NEAR(self.pair.pitch_class_kl, 0.0, 1e-12);
  EXPECT_NEAR(self.pair.pctm_cosine, 1.0, 1e-12);
  EXPECT_NEAR(*self.pair.note_density_relative_gap, 0.0, 1e-12);
  EXPECT_EQ(*self.pair.copy_rate_generated, 1.0);  // the run repeats C D E G
  EXPECT_EQ(*self.pair.copy_rate_reference, 1.0);

  Performance other = scale_run(20 * kSecond, 30 * kSecond, 500'000, 200'000);
  for (Note& n : other.notes) n.pitch = static_cast<std::uint8_t>(n.pitch + 1);
  const Score moved = score_continuation(clip, real, other, metrics::measure_clip(other));
  EXPECT_GT(moved.pair.pitch_class_kl, 1.0);
  EXPECT_EQ(*moved.pair.copy_rate_generated, 0.0);
  EXPECT_NEAR(*moved.pair.note_density_relative_gap, -0.5, 1e-9);
}

Score synthetic(double kl, double generated_density, double real_density, std::optional<double> p) {
  Score s;
  s.pair.pitch_class_kl = kl;
  s.pair.note_density_generated = generated_density;
  s.pair.note_density_reference = real_density;
  s.p_art_tatum = p;
  return s;
}

TEST(ContinuationEval, SummarizeAveragesClipsThenSeeds) {
  const std::vector<std::vector<Score>> runs = {
      {synthetic(0.2, 30, 20, 0.5), synthetic(0.4, 10, 20, std::nullopt)},  // run means: kl 0.3, gap 0
      {synthetic(0.6, 30, 20, 0.7), synthetic(0.6, 30, 20, 0.9)},           // kl 0.6, gap 0.5
  };
  const std::vector<MetricSummary> summary = summarize(runs);
  const MetricSummary* kl = find_metric(summary, "pitch_class_kl");
  ASSERT_NE(kl, nullptr);
  EXPECT_EQ(kl->per_run, (std::vector<double>{0.30000000000000004, 0.6}));
  EXPECT_NEAR(kl->mean, 0.45, 1e-12);
  EXPECT_NEAR(kl->run_std, 0.15, 1e-12);
  EXPECT_NEAR(kl->clip_std, 0.05, 1e-12);  // (0.1 + 0) / 2
  EXPECT_EQ(kl->values, 4u);
  const MetricSummary* gap = find_metric(summary, "note_density_gap");
  ASSERT_NE(gap, nullptr);
  EXPECT_NEAR(gap->per_run[0], 0.0, 1e-12);
  EXPECT_NEAR(gap->per_run[1], 0.5, 1e-12);
  const MetricSummary* p = find_metric(summary, "p_art_tatum");
  ASSERT_NE(p, nullptr);
  EXPECT_NEAR(p->per_run[0], 0.5, 1e-12);
  EXPECT_NEAR(p->per_run[1], 0.8, 1e-12);
  EXPECT_EQ(p->values, 3u);
  EXPECT_EQ(find_metric(summary, "swing_ratio_generated"), nullptr);  // no clip has one
  EXPECT_EQ(find_metric(summary, "no_such_metric"), nullptr);
}

TEST(ContinuationEval, TargetsPassOrSayHowFarShort) {
  const Target& kl = kTargets[0];
  const Target& cosine = kTargets[1];
  const Target& density = kTargets[2];
  EXPECT_TRUE(check(kl, 0.25).pass);
  const TargetCheck short_kl = check(kl, 0.42);
  EXPECT_FALSE(short_kl.pass);
  EXPECT_NEAR(short_kl.shortfall, 0.12, 1e-12);
  EXPECT_EQ(describe_check(kl, short_kl), "short by 0.12");
  EXPECT_EQ(describe_check(cosine, check(cosine, 0.54985)), "short by 0.00015");
  EXPECT_EQ(describe_limit(kl), "≤0.30");
  EXPECT_NEAR(check(cosine, 0.5).shortfall, 0.05, 1e-12);
  EXPECT_TRUE(check(cosine, 0.6).pass);
  EXPECT_TRUE(check(density, -0.04).pass);
  const TargetCheck off = check(density, -0.15);
  EXPECT_FALSE(off.pass);
  EXPECT_EQ(describe_check(density, off), "short by 10.0 points");
  EXPECT_EQ(describe_check(density, check(density, 0.01)), "pass");
}

TEST(ContinuationEval, MarkdownTableMarksTargetsOnlyForGeneratedSystems) {
  const std::vector<std::vector<Score>> good = {{synthetic(0.1, 20, 20, 0.9)}};
  const std::vector<std::vector<Score>> bad = {{synthetic(0.5, 30, 20, 0.1)}};
  const std::vector<SystemSummary> systems = {
      {"real", "real continuation", true, summarize(good)},
      {"model", "the model", false, summarize(bad)},
  };
  const std::string table = markdown_table(systems);
  EXPECT_NE(table.find("| real continuation | 0.100 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| the model | 0.500 — **fail**, short by 0.2 |"), std::string::npos) << table;
  EXPECT_NE(table.find("+50.0% — **fail**, short by 45.0 points"), std::string::npos) << table;
  EXPECT_NE(table.find("PC-KL ↓ (≤0.30)"), std::string::npos) << table;
  EXPECT_EQ(table.find("real continuation | 0.100 — pass"), std::string::npos) << table;
  const std::string secondary = markdown_secondary_table(systems);
  EXPECT_NE(secondary.find("| the model |"), std::string::npos);
}

TEST(ContinuationEval, NearestCentroidSeparatesClusters) {
  const std::vector<std::vector<double>> points = {{0, 0},   {0, 1},   {1, 0}, {10, 10},
                                                   {10, 11}, {11, 10}, {5, 5}};
  const std::vector<std::size_t> labels = {0, 0, 0, 1, 1, 1, 2};  // class 2 has one point: not scored
  EXPECT_EQ(nearest_centroid_accuracy(points, labels), 1.0);
  // A point sitting in the other cluster is misassigned.
  const std::vector<std::size_t> swapped = {0, 0, 1, 1, 1, 1, 2};
  EXPECT_NEAR(*nearest_centroid_accuracy(points, swapped), 5.0 / 6.0, 1e-12);
  EXPECT_FALSE(nearest_centroid_accuracy({{1.0}}, {0}).has_value());
  EXPECT_THROW((void)nearest_centroid_accuracy(points, {0, 1}), std::invalid_argument);
  EXPECT_THROW((void)nearest_centroid_accuracy({{0, 0}, {1}}, {0, 0}), std::invalid_argument);
}

}  // namespace
}  // namespace tatumflow::continuation
