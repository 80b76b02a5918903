// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/music_metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "tatumflow/engine/random.hpp"

namespace tatumflow::metrics {
namespace {

constexpr std::int64_t kMs = 1000;
constexpr std::int64_t kSecond = 1'000'000;

Performance make(std::vector<Note> notes) {
  Performance p;
  p.notes = std::move(notes);
  p.sort();
  return p;
}

// One note every `step_us`, cycling through `pitches`.
Performance melody(const std::vector<int>& pitches, std::size_t count, std::int64_t step_us,
                   std::int64_t duration_us) {
  std::vector<Note> notes;
  for (std::size_t i = 0; i < count; ++i) {
    notes.push_back({static_cast<std::int64_t>(i) * step_us, duration_us,
                     static_cast<std::uint8_t>(pitches[i % pitches.size()]), 80, 0});
  }
  return make(std::move(notes));
}

Performance random_melody(std::uint64_t seed, std::size_t count, std::int64_t step_us) {
  Rng rng(seed);
  std::vector<Note> notes;
  for (std::size_t i = 0; i < count; ++i) {
    notes.push_back({static_cast<std::int64_t>(i) * step_us, step_us,
                     static_cast<std::uint8_t>(48 + rng.below(36)),
                     static_cast<std::uint8_t>(40 + rng.below(60)), 0});
  }
  return make(std::move(notes));
}

Performance transposed(Performance p, int semitones) {
  for (Note& n : p.notes) n.pitch = static_cast<std::uint8_t>(n.pitch + semitones);
  return p;
}

std::vector<double> flat(const PitchClassTransitions& m) { return {m.begin(), m.end()}; }

TEST(PitchClassHistogram, WeighsVelocityTimesSoundingFramesAndHoldsUnderThePedal) {
  Performance p = make({{0, 100 * kMs, 60, 100, 0}, {0, 1000 * kMs, 62, 100, 0}});
  // Without the pedal C sounds 10 frames, D 100.
  PitchClassHistogram h = pitch_class_histogram(p);
  EXPECT_NEAR(h[0], 10.0 / 110.0, 1e-12);
  EXPECT_NEAR(h[2], 100.0 / 110.0, 1e-12);

  // Down at 50 ms, up at 1 s: C is held at velocity 100 to frame 100.
  p.pedals = {{50 * kMs, true, 0}, {1000 * kMs, false, 0}};
  h = pitch_class_histogram(p);
  EXPECT_NEAR(h[0], 0.5, 1e-12);
  EXPECT_NEAR(h[2], 0.5, 1e-12);

  // A pedal never released holds nothing (pretty_midi closes no open stretch).
  p.pedals = {{50 * kMs, true, 0}};
  h = pitch_class_histogram(p);
  EXPECT_NEAR(h[0], 10.0 / 110.0, 1e-12);
}

TEST(PitchClassHistogram, PedalHoldsTheRunningMaximumNotTheSum) {
  // Two C notes in a row under one pedal: the louder one is held to the release.
  Performance p =
      make({{0, 100 * kMs, 60, 40, 0}, {200 * kMs, 100 * kMs, 60, 120, 0}, {0, 1000 * kMs, 67, 100, 0}});
  p.pedals = {{0, true, 0}, {1000 * kMs, false, 0}};
  const PitchClassHistogram h = pitch_class_histogram(p);
  const double c = 40.0 * 20 + 120.0 * 80;  // 40 until frame 20, then 120 held to 100
  EXPECT_NEAR(h[0], c / (c + 100.0 * 100), 1e-12);
}

TEST(PitchClassKl, ZeroForIdenticalPositiveForTransposedAndNotSymmetric) {
  const Performance a = melody({60, 64, 67, 72}, 40, 250 * kMs, 200 * kMs);
  const PitchClassHistogram ha = pitch_class_histogram(a);
  EXPECT_NEAR(pitch_class_kl(ha, ha), 0.0, 1e-12);
  const PitchClassHistogram hb = pitch_class_histogram(transposed(a, 1));
  EXPECT_GT(pitch_class_kl(ha, hb), 1.0);

  // All C against all D: (1 + e) ln((1 + e) / e) + e ln(e / (1 + e)).
  PitchClassHistogram c{}, d{};
  c[0] = 1;
  d[2] = 1;
  const double e = kPitchClassKlEpsilon;
  EXPECT_NEAR(pitch_class_kl(c, d), (1 + e) * std::log((1 + e) / e) + e * std::log(e / (1 + e)), 1e-12);
  PitchClassHistogram spread{};
  spread.fill(1.0 / 12);
  EXPECT_NE(pitch_class_kl(c, spread), pitch_class_kl(spread, c));
}

TEST(PitchClassTransitions, CountsNotesStartingWithin50msOfAnOffset) {
  // C ends at 500 ms where E starts; E ends at 1000 ms where G starts 40 ms later.
  const Performance p = make(
      {{0, 500 * kMs, 60, 80, 0}, {500 * kMs, 500 * kMs, 64, 80, 0}, {1040 * kMs, 500 * kMs, 67, 80, 0}});
  const PitchClassTransitions m = pitch_class_transitions(p);
  EXPECT_DOUBLE_EQ(m[0 * 12 + 4], 0.5);
  EXPECT_DOUBLE_EQ(m[4 * 12 + 7], 0.5);
  // A note shorter than 50 ms transitions to itself, as in pretty_midi.
  const PitchClassTransitions grace = pitch_class_transitions(make({{0, 30 * kMs, 62, 80, 0}}));
  EXPECT_DOUBLE_EQ(grace[2 * 12 + 2], 1.0);
  // Nothing to count: all zeros.
  const PitchClassTransitions none = pitch_class_transitions(make({{0, 100 * kMs, 60, 80, 0}}));
  for (double v : none) EXPECT_EQ(v, 0.0);
}

TEST(PitchClassTransitions, CosineIsOneForIdenticalAndLowerForTransposed) {
  const Performance legato = melody({60, 62, 64, 65, 67}, 50, 300 * kMs, 300 * kMs);
  EXPECT_NEAR(cosine_similarity(flat(pitch_class_transitions(legato)), flat(pitch_class_transitions(legato))),
              1.0, 1e-12);
  EXPECT_LT(cosine_similarity(flat(pitch_class_transitions(legato)),
                              flat(pitch_class_transitions(transposed(legato, 6)))),
            0.1);
  EXPECT_EQ(cosine_similarity({0, 0}, {0, 0}), 1.0);
  EXPECT_EQ(cosine_similarity({0, 0}, {1, 0}), 0.0);
  EXPECT_THROW((void)cosine_similarity({1}, {1, 2}), std::invalid_argument);
}

TEST(CopyRate, OneForACopyZeroForADisjointMelodyEmptyBelowFourNotes) {
  const Performance prompt = melody({60, 62, 64, 65, 67, 69, 71}, 21, 200 * kMs, 150 * kMs);
  EXPECT_DOUBLE_EQ(*copy_rate(prompt, prompt), 1.0);
  const Performance disjoint = melody({40, 43, 47, 50}, 20, 200 * kMs, 150 * kMs);
  EXPECT_DOUBLE_EQ(*copy_rate(disjoint, prompt), 0.0);
  // Half the 4-grams of [copy | new] come from the prompt: 6 grams, 2 copied.
  const Performance half = make({{0, 100, 60, 80, 0},
                                 {1000, 100, 62, 80, 0},
                                 {2000, 100, 64, 80, 0},
                                 {3000, 100, 65, 80, 0},
                                 {4000, 100, 67, 80, 0},
                                 {5000, 100, 30, 80, 0},
                                 {6000, 100, 31, 80, 0},
                                 {7000, 100, 32, 80, 0},
                                 {8000, 100, 33, 80, 0}});
  EXPECT_DOUBLE_EQ(*copy_rate(half, prompt), 2.0 / 6.0);
  EXPECT_FALSE(copy_rate(make({{0, 100, 60, 80, 0}}), prompt).has_value());
}

TEST(NoteDensity, CountsNotesPerFiveSecondsOfSpan) {
  // 20 notes, onsets 0..9.5 s, the last ending at 10 s.
  const Performance p = melody({60}, 20, 500 * kMs, 500 * kMs);
  EXPECT_DOUBLE_EQ(*note_density_per_5s(p), 10.0);
  // The span starts at the first onset.
  Performance late = p;
  for (Note& n : late.notes) n.onset_us += 30 * kSecond;
  late.length_us = 0;
  late.sort();
  EXPECT_DOUBLE_EQ(*note_density_per_5s(late), 10.0);
  EXPECT_FALSE(note_density_per_5s(Performance{}).has_value());
}

TEST(SlidingEntropy, UniformPitchClassesGiveLog2Of12AndOnePitchZero) {
  std::vector<int> chromatic;
  for (int p = 60; p < 72; ++p) chromatic.push_back(p);
  // 30 s of one note per 250 ms through the chromatic scale: every 15 s
  // window holds 60 notes, 5 of each pitch class.
  const Performance uniform = melody(chromatic, 120, 250 * kMs, 250 * kMs);
  const std::optional<EntropyStats> stats = sliding_pitch_class_entropy(uniform);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->windows, 16U);  // starts 0..15 s
  EXPECT_NEAR(stats->mean_bits, std::log2(12.0), 1e-12);
  EXPECT_NEAR(stats->std_bits, 0.0, 1e-12);

  const std::optional<EntropyStats> single =
      sliding_pitch_class_entropy(melody({60, 72}, 40, 250 * kMs, 250 * kMs));
  ASSERT_TRUE(single);
  EXPECT_EQ(single->windows, 1U);  // 10 s: one window
  EXPECT_EQ(single->mean_bits, 0.0);

  // Half C, half C and G: the entropy varies across windows.
  std::vector<Note> notes;
  for (int i = 0; i < 240; ++i) {
    const bool second_half = i >= 120;
    notes.push_back(
        {i * 250 * kMs, 250 * kMs, static_cast<std::uint8_t>(second_half && i % 2 == 1 ? 67 : 60), 80, 0});
  }
  const std::optional<EntropyStats> changing = sliding_pitch_class_entropy(make(notes));
  ASSERT_TRUE(changing);
  EXPECT_GT(changing->std_bits, 0.1);
  EXPECT_GT(changing->mean_bits, 0.1);
  EXPECT_LT(changing->mean_bits, 1.0);
}

TEST(Polyphony, MeanSoundingNotesAtOnsets) {
  std::vector<Note> chords;
  for (int i = 0; i < 8; ++i) {
    for (int p : {60, 64, 67})
      chords.push_back({i * kSecond, 900 * kMs, static_cast<std::uint8_t>(p), 80, 0});
  }
  EXPECT_DOUBLE_EQ(*polyphony(make(chords)), 3.0);
  EXPECT_DOUBLE_EQ(*polyphony(melody({60, 62}, 10, 500 * kMs, 500 * kMs)), 1.0);
  // A long bass note under four melody notes: 2 at each onset after the first.
  const Performance over_bass = make({{0, 4 * kSecond, 36, 80, 0},
                                      {0, kSecond, 72, 80, 0},
                                      {kSecond, kSecond, 74, 80, 0},
                                      {2 * kSecond, kSecond, 76, 80, 0},
                                      {3 * kSecond, kSecond, 77, 80, 0}});
  EXPECT_DOUBLE_EQ(*polyphony(over_bass), 2.0);
}

TEST(HistogramOverlap, OneForIdenticalZeroForDisjoint) {
  EXPECT_DOUBLE_EQ(histogram_overlap({0.5, 0.5, 0}, {0.5, 0.5, 0}), 1.0);
  EXPECT_DOUBLE_EQ(histogram_overlap({1, 0}, {0, 1}), 0.0);
  EXPECT_DOUBLE_EQ(histogram_overlap({0.75, 0.25}, {0.25, 0.75}), 0.5);
  EXPECT_THROW((void)histogram_overlap({1}, {0.5, 0.5}), std::invalid_argument);
}

TEST(SelfSimilarity, RepeatingPatternScoresHigherThanRandomNotes) {
  const Performance repeating = melody({60, 64, 67, 71}, 120, 250 * kMs, 250 * kMs);
  const Performance random = random_melody(7, 120, 250 * kMs);
  const std::optional<double> same = self_similarity(repeating);
  const std::optional<double> noise = self_similarity(random);
  ASSERT_TRUE(same && noise);
  EXPECT_NEAR(*same, 1.0, 1e-12);
  EXPECT_LT(*noise, 0.75);
  EXPECT_FALSE(self_similarity(melody({60}, 4, 500 * kMs, 500 * kMs)).has_value());  // under 4 s
}

TEST(Mgeval, FeaturesOfAKnownMelody) {
  // C E G C' as quarters at 120 bpm (0.5 s): mgeval's quarter class (index 2).
  const Performance p = melody({60, 64, 67, 72}, 4, 500 * kMs, 500 * kMs);
  const MgevalFeatures f = mgeval_features(p);
  EXPECT_EQ(f.pitch_count, 4);
  EXPECT_EQ(f.pitch_range, 12);
  EXPECT_DOUBLE_EQ(f.pitch_interval, (4 + 3 + 5) / 3.0);
  EXPECT_DOUBLE_EQ(f.avg_ioi_s, 0.5);
  EXPECT_DOUBLE_EQ(f.note_length_histogram[2], 1.0);
  EXPECT_DOUBLE_EQ(f.pitch_class_histogram[0], 0.5);
}

TEST(Mgeval, KdeOverlapAreaIsOneForTheSameSampleAndSmallForDistantOnes) {
  std::vector<double> a;
  std::vector<double> far;
  Rng rng(3);
  for (int i = 0; i < 200; ++i) {
    a.push_back(rng.uniform());
    far.push_back(10.0 + rng.uniform());
  }
  EXPECT_NEAR(kde_overlap_area(a, a), 1.0, 0.02);
  EXPECT_LT(kde_overlap_area(a, far), 0.01);
  EXPECT_EQ(kde_overlap_area({2, 2}, {2}), 1.0);
  EXPECT_THROW((void)kde_overlap_area({}, {1}), std::invalid_argument);
  // scipy's Silverman factor (3n/4)^(-1/5) times the unbiased std.
  EXPECT_NEAR(silverman_bandwidth({0, 2}, 0), std::sqrt(2.0) * std::pow(1.5, -0.2), 1e-12);
}

TEST(Mgeval, SetsFromOneGeneratorOverlapMoreThanDifferentOnes) {
  std::vector<MgevalFeatures> reference, similar, different;
  for (std::uint64_t s = 0; s < 20; ++s) {
    reference.push_back(mgeval_features(random_melody(100 + s, 60, 250 * kMs)));
    similar.push_back(mgeval_features(random_melody(200 + s, 60, 250 * kMs)));
    different.push_back(mgeval_features(melody({60, 62}, 60, 200 * kMs, 100 * kMs)));
  }
  const std::vector<MgevalOverlap> close = mgeval_overlaps(reference, similar);
  const std::vector<MgevalOverlap> apart = mgeval_overlaps(reference, different);
  ASSERT_EQ(close.size(), 6U);
  for (std::size_t i = 0; i < close.size(); ++i) {
    SCOPED_TRACE(close[i].feature);
    ASSERT_TRUE(close[i].reference_intra_vs_inter && apart[i].reference_intra_vs_inter);
    EXPECT_GT(*close[i].reference_intra_vs_inter, *apart[i].reference_intra_vs_inter);
  }
  EXPECT_FALSE(mgeval_overlaps({reference[0]}, similar)[0].reference_intra_vs_inter.has_value());
}

TEST(PairMetrics, IdenticalClipsCompareAsIdenticalAndAggregatesAverage) {
  const Performance a = random_melody(11, 120, 250 * kMs);
  const ClipMeasures m = measure_clip(a);
  const PairMetrics same = compare_clips(m, m);
  EXPECT_NEAR(same.pitch_class_kl, 0.0, 1e-12);
  EXPECT_NEAR(same.pctm_cosine, 1.0, 1e-12);
  EXPECT_NEAR(same.ioi_histogram_overlap, 1.0, 1e-6);
  EXPECT_NEAR(same.velocity_histogram_overlap, 1.0, 1e-6);
  ASSERT_TRUE(same.note_density_relative_gap);
  EXPECT_EQ(*same.note_density_relative_gap, 0.0);

  const Performance sparse = random_melody(12, 60, 500 * kMs);  // same 30 s, half the notes
  const PairMetrics other = compare_clips(m, measure_clip(sparse));
  EXPECT_NEAR(*other.note_density_relative_gap, -0.5, 0.02);

  const std::vector<Aggregate> totals = aggregate({same, other});
  const auto gap = std::find_if(totals.begin(), totals.end(),
                                [](const Aggregate& x) { return x.name == "note_density_relative_gap"; });
  ASSERT_NE(gap, totals.end());
  EXPECT_EQ(gap->count, 2U);
  EXPECT_NEAR(gap->mean, *other.note_density_relative_gap / 2, 1e-12);
  EXPECT_NEAR(gap->std, std::abs(*other.note_density_relative_gap) / 2, 1e-12);
  const auto copy = std::find_if(totals.begin(), totals.end(),
                                 [](const Aggregate& x) { return x.name == "copy_rate_generated"; });
  ASSERT_NE(copy, totals.end());
  EXPECT_EQ(copy->count, 0U);
}

TEST(PairMetrics, EmptyClipsGiveEmptyValuesNotErrors) {
  const ClipMeasures empty = measure_clip(Performance{});
  EXPECT_FALSE(empty.note_density_per_5s.has_value());
  EXPECT_FALSE(empty.entropy.has_value());
  EXPECT_FALSE(empty.polyphony.has_value());
  const PairMetrics p = compare_clips(empty, measure_clip(random_melody(1, 40, 250 * kMs)));
  EXPECT_TRUE(std::isfinite(p.pitch_class_kl));
  EXPECT_EQ(p.pctm_cosine, 0.0);
  EXPECT_FALSE(p.note_density_relative_gap.has_value());
}

TEST(PairMetrics, UnsortedNotesAreRejected) {
  Performance p;
  p.notes = {{kSecond, 100, 60, 80, 0}, {0, 100, 62, 80, 0}};
  try {
    (void)measure_clip(p);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("not sorted"), std::string::npos);
  }
}

}  // namespace
}  // namespace tatumflow::metrics
