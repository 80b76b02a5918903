// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/augment.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace tatumflow::augment {
namespace {

Performance sample_performance() {
  Performance performance;
  Rng rng(99);
  for (int i = 0; i < 200; ++i) {
    Note note;
    note.onset_us = i * 137'000 + static_cast<std::int64_t>(rng.below(5000));
    note.duration_us = 30'000 + static_cast<std::int64_t>(rng.below(800'000));
    note.pitch = static_cast<std::uint8_t>(40 + rng.below(50));
    note.velocity = static_cast<std::uint8_t>(1 + rng.below(127));
    performance.notes.push_back(note);
  }
  performance.pedals = {
      {500'000, true, 0}, {3'210'000, false, 0}, {9'999'000, true, 0}, {20'000'000, false, 0}};
  performance.sort();
  return performance;
}

AugmentOptions only(double AugmentOptions::*probability) {
  AugmentOptions options;
  options.pitch_shift_probability = 0;
  options.time_stretch_probability = 0;
  options.velocity_scale_probability = 0;
  options.note_dropout_probability = 0;
  options.*probability = 1.0;
  return options;
}

std::multiset<std::pair<std::int64_t, int>> onsets_and_pitches(const Performance& performance) {
  std::multiset<std::pair<std::int64_t, int>> result;
  for (const Note& note : performance.notes) result.emplace(note.onset_us, note.pitch);
  return result;
}

TEST(Rng, IsReproducibleAndUniform) {
  Rng a(5);
  Rng b(5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
  Rng rng(11);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[rng.below(7)];
  for (const int count : counts) EXPECT_NEAR(count, 10000, 500);
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform(0.9, 1.1);
    ASSERT_GE(u, 0.9);
    ASSERT_LT(u, 1.1);
  }
}

TEST(Augment, DefaultsMatchTheTrainingRecipe) {
  const AugmentOptions options;
  EXPECT_EQ(options.pitch_shift_probability, 0.3);
  EXPECT_EQ(options.max_pitch_shift, 6);
  EXPECT_EQ(options.time_stretch_probability, 0.2);
  EXPECT_EQ(options.min_time_stretch, 0.9);
  EXPECT_EQ(options.max_time_stretch, 1.1);
  EXPECT_EQ(options.velocity_scale_probability, 0.2);
  EXPECT_EQ(options.min_velocity_scale, 0.8);
  EXPECT_EQ(options.max_velocity_scale, 1.2);
  EXPECT_EQ(options.note_dropout_probability, 0.1);
  EXPECT_EQ(options.min_note_dropout, 0.05);
  EXPECT_EQ(options.max_note_dropout, 0.10);
}

TEST(Augment, SameSeedSameResultAndSeedsDiffer) {
  const Performance original = sample_performance();
  AugmentOptions all;
  all.pitch_shift_probability = all.time_stretch_probability = all.velocity_scale_probability =
      all.note_dropout_probability = 1.0;
  int differing = 0;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Performance a = original;
    Performance b = original;
    Rng rng_a(seed);
    Rng rng_b(seed);
    augment(a, rng_a, all);
    augment(b, rng_b, all);
    EXPECT_EQ(a.notes, b.notes);
    EXPECT_EQ(a.pedals, b.pedals);
    Performance c = original;
    Rng rng_c(seed + 1000);
    augment(c, rng_c, all);
    differing += c.notes != a.notes ? 1 : 0;
  }
  EXPECT_EQ(differing, 20);
}

TEST(Augment, PitchShiftMovesEveryNoteByOneNonZeroAmountWithinSixSemitones) {
  const Performance original = sample_performance();
  std::map<int, int> counts;
  for (std::uint64_t seed = 0; seed < 2400; ++seed) {
    Performance shifted = original;
    Rng rng(seed);
    const Applied applied = augment(shifted, rng, only(&AugmentOptions::pitch_shift_probability));
    ASSERT_NE(applied.pitch_shift, 0);
    ASSERT_LE(std::abs(applied.pitch_shift), 6);
    ++counts[applied.pitch_shift];
    std::multiset<std::pair<std::int64_t, int>> expected;
    for (const Note& note : original.notes) expected.emplace(note.onset_us, note.pitch + applied.pitch_shift);
    ASSERT_EQ(onsets_and_pitches(shifted), expected);
    ASSERT_EQ(shifted.pedals, original.pedals);
  }
  ASSERT_EQ(counts.size(), 12U);
  for (const auto& [shift, count] : counts) EXPECT_NEAR(count, 200, 60) << shift;
}

TEST(Augment, PitchShiftKeepsNotesOnThePiano) {
  Performance high;
  high.notes = {{0, 100'000, 105, 80, 0}, {0, 100'000, 60, 80, 0}};
  Performance full;
  full.notes = {{0, 100'000, 21, 80, 0}, {0, 100'000, 108, 80, 0}};
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    Performance a = high;
    Rng rng(seed);
    const int shift = augment(a, rng, only(&AugmentOptions::pitch_shift_probability)).pitch_shift;
    ASSERT_LE(shift, 3);
    ASSERT_GE(shift, -6);
    ASSERT_NE(shift, 0);
    Performance b = full;
    Rng rng_b(seed);
    ASSERT_EQ(augment(b, rng_b, only(&AugmentOptions::pitch_shift_probability)).pitch_shift, 0);
    ASSERT_EQ(b.notes, full.notes);
  }
}

TEST(Augment, TimeStretchScalesEveryTime) {
  const Performance original = sample_performance();
  double lowest = 2.0;
  double highest = 0.0;
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    Performance stretched = original;
    Rng rng(seed);
    const double factor =
        augment(stretched, rng, only(&AugmentOptions::time_stretch_probability)).time_stretch;
    ASSERT_GE(factor, 0.9);
    ASSERT_LT(factor, 1.1);
    lowest = std::min(lowest, factor);
    highest = std::max(highest, factor);
    ASSERT_EQ(stretched.notes.size(), original.notes.size());
    for (std::size_t i = 0; i < original.notes.size(); ++i) {
      const Note& before = original.notes[i];
      const Note& after = stretched.notes[i];
      ASSERT_EQ(after.onset_us, std::llround(static_cast<double>(before.onset_us) * factor));
      ASSERT_EQ(after.duration_us, std::llround(static_cast<double>(before.duration_us) * factor));
      ASSERT_EQ(after.pitch, before.pitch);
      ASSERT_EQ(after.velocity, before.velocity);
    }
    for (std::size_t i = 0; i < original.pedals.size(); ++i) {
      ASSERT_EQ(stretched.pedals[i].time_us,
                std::llround(static_cast<double>(original.pedals[i].time_us) * factor));
    }
  }
  EXPECT_LT(lowest, 0.91);
  EXPECT_GT(highest, 1.09);
}

TEST(Augment, VelocityScaleStaysInMidiRange) {
  const Performance original = sample_performance();
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    Performance scaled = original;
    Rng rng(seed);
    const double factor =
        augment(scaled, rng, only(&AugmentOptions::velocity_scale_probability)).velocity_scale;
    ASSERT_GE(factor, 0.8);
    ASSERT_LT(factor, 1.2);
    for (std::size_t i = 0; i < original.notes.size(); ++i) {
      const long expected = std::clamp<long>(std::lround(original.notes[i].velocity * factor), 1, 127);
      ASSERT_EQ(scaled.notes[i].velocity, expected);
      ASSERT_EQ(scaled.notes[i].onset_us, original.notes[i].onset_us);
    }
  }
}

TEST(Augment, NoteDropoutRemovesFiveToTenPercent) {
  const Performance original = sample_performance();
  std::size_t dropped = 0;
  const int seeds = 1000;
  for (int seed = 0; seed < seeds; ++seed) {
    Performance thinned = original;
    Rng rng(static_cast<std::uint64_t>(seed));
    const Applied applied = augment(thinned, rng, only(&AugmentOptions::note_dropout_probability));
    ASSERT_GE(applied.note_dropout, 0.05);
    ASSERT_LT(applied.note_dropout, 0.10);
    ASSERT_EQ(thinned.notes.size() + applied.notes_dropped, original.notes.size());
    ASSERT_TRUE(std::includes(original.notes.begin(), original.notes.end(), thinned.notes.begin(),
                              thinned.notes.end(), [](const Note& a, const Note& b) {
                                return std::tie(a.onset_us, a.pitch) < std::tie(b.onset_us, b.pitch);
                              }));
    dropped += applied.notes_dropped;
  }
  // Mean rate 7.5% of 200 notes.
  EXPECT_NEAR(static_cast<double>(dropped) / seeds, 15.0, 1.0);
}

TEST(Augment, EachAugmentationFiresWithItsProbability) {
  const Performance original = sample_performance();
  const int seeds = 6000;
  int pitch = 0;
  int stretch = 0;
  int velocity = 0;
  int dropout = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    Performance p = original;
    Rng rng(static_cast<std::uint64_t>(seed) * 7919);
    const Applied applied = augment(p, rng);
    pitch += applied.pitch_shift != 0;
    stretch += applied.time_stretch != 1.0;
    velocity += applied.velocity_scale != 1.0;
    dropout += applied.note_dropout != 0.0;
  }
  // Four standard deviations of a binomial share over 6000 draws: <= 0.024.
  EXPECT_NEAR(pitch / double(seeds), 0.3, 0.024);
  EXPECT_NEAR(stretch / double(seeds), 0.2, 0.021);
  EXPECT_NEAR(velocity / double(seeds), 0.2, 0.021);
  EXPECT_NEAR(dropout / double(seeds), 0.1, 0.016);
}

TEST(Augment, ChangingOneProbabilityLeavesTheOthersDrawsAlone) {
  const Performance original = sample_performance();
  AugmentOptions with_pitch;
  AugmentOptions without_pitch;
  without_pitch.pitch_shift_probability = 0.0;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    Performance a = original;
    Performance b = original;
    Rng rng_a(seed);
    Rng rng_b(seed);
    const Applied x = augment(a, rng_a, with_pitch);
    const Applied y = augment(b, rng_b, without_pitch);
    EXPECT_EQ(x.time_stretch, y.time_stretch);
    EXPECT_EQ(x.velocity_scale, y.velocity_scale);
    EXPECT_EQ(x.notes_dropped, y.notes_dropped);
    EXPECT_EQ(y.pitch_shift, 0);
  }
}

TEST(Augment, RejectsNonsenseOptions) {
  AugmentOptions options;
  options.pitch_shift_probability = 1.5;
  EXPECT_THROW(validate(options), std::invalid_argument);
  options = {};
  options.min_time_stretch = 1.2;
  EXPECT_THROW(validate(options), std::invalid_argument);
  options = {};
  options.min_velocity_scale = 0.0;
  EXPECT_THROW(validate(options), std::invalid_argument);
  options = {};
  options.max_note_dropout = 1.5;
  EXPECT_THROW(validate(options), std::invalid_argument);
  Performance p = sample_performance();
  Rng rng(1);
  options = {};
  options.max_pitch_shift = -1;
  EXPECT_THROW(augment(p, rng, options), std::invalid_argument);
  EXPECT_NO_THROW(validate(AugmentOptions{}));
}

TEST(AugmentTokens, NoAugmentationIsTheIdentity) {
  const std::vector<tokens::Token> sequence = tokens::encode(sample_performance());
  AugmentOptions none = only(&AugmentOptions::pitch_shift_probability);
  none.pitch_shift_probability = 0.0;
  Rng rng(3);
  EXPECT_EQ(augment_tokens(sequence, rng, none), sequence);
}

TEST(AugmentTokens, PitchShiftTransposesTheDecodedNotes) {
  const Performance original = sample_performance();
  const std::vector<tokens::Token> sequence = tokens::encode(original);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    Rng replay(seed);
    Performance expected = tokens::decode(sequence);
    const Applied applied = augment(expected, replay, only(&AugmentOptions::pitch_shift_probability));
    const std::vector<tokens::Token> shifted =
        augment_tokens(sequence, rng, only(&AugmentOptions::pitch_shift_probability));
    EXPECT_EQ(shifted.front(), tokens::kSos);
    EXPECT_EQ(shifted.back(), tokens::kEos);
    const Performance decoded = tokens::decode(shifted);
    ASSERT_EQ(decoded.notes.size(), original.notes.size());
    for (std::size_t i = 0; i < decoded.notes.size(); ++i) {
      EXPECT_EQ(decoded.notes[i].pitch, expected.notes[i].pitch);
    }
    EXPECT_NE(applied.pitch_shift, 0);
  }
}

TEST(AugmentTokens, StretchedWindowStillStartsOnItsChunk) {
  const std::vector<tokens::Token> sequence = tokens::encode(sample_performance());
  // A window the sampler could give: from the second <T> on, no SOS or EOS.
  const auto second_chunk = std::find(std::find(sequence.begin(), sequence.end(), tokens::kChunk) + 1,
                                      sequence.end(), tokens::kChunk);
  ASSERT_NE(second_chunk, sequence.end());
  const std::span<const tokens::Token> window(&*second_chunk, 80);
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    const std::vector<tokens::Token> stretched =
        augment_tokens(window, rng, only(&AugmentOptions::time_stretch_probability));
    ASSERT_GE(stretched.size(), 2U);
    // Decoding puts the window's leading <T> at 5 s; the stretch is anchored there.
    EXPECT_EQ(stretched.front(), tokens::kChunk);
    EXPECT_NE(stretched[1], tokens::kChunk);
    EXPECT_NE(stretched.back(), tokens::kEos);
    const Performance decoded = tokens::decode(stretched);
    const Performance unstretched = tokens::decode(window);
    ASSERT_FALSE(decoded.notes.empty());
    const std::int64_t offset_us = unstretched.notes.front().onset_us - tokens::kChunkUs;
    EXPECT_GE(decoded.notes.front().onset_us, tokens::kChunkUs + offset_us * 9 / 10 - tokens::kStepUs);
    EXPECT_LE(decoded.notes.front().onset_us, tokens::kChunkUs + offset_us * 11 / 10 + tokens::kStepUs);
  }
}

}  // namespace
}  // namespace tatumflow::augment
