// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/theory_features.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tatumflow/protocol/smf.hpp"

namespace tatumflow {
namespace {

Note note_at(double onset_s, double duration_s, int pitch, int velocity = 80) {
  return {std::llround(onset_s * 1e6), std::llround(duration_s * 1e6), static_cast<std::uint8_t>(pitch),
          static_cast<std::uint8_t>(velocity), 0};
}

Performance sorted(Performance p) {
  p.sort();
  return p;
}

// An eighth-note line at `bpm`, the first of each pair `ratio` times as long as
// the second, played legato.
Performance eighth_line(double bpm, double ratio, int beats, double jitter_s = 0) {
  const double beat_s = 60.0 / bpm;
  const double long_s = beat_s * ratio / (1 + ratio);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> jitter(-jitter_s, jitter_s);
  Performance p;
  static constexpr std::array<int, 8> kLine = {60, 62, 64, 65, 67, 65, 64, 62};
  for (int b = 0; b < beats; ++b) {
    const double t = b * beat_s;
    p.notes.push_back(note_at(t + jitter(rng), long_s * 0.95, kLine[static_cast<std::size_t>(2 * b) % 8]));
    p.notes.push_back(note_at(t + long_s + jitter(rng), (beat_s - long_s) * 0.95,
                              kLine[static_cast<std::size_t>(2 * b + 1) % 8]));
  }
  return sorted(p);
}

// A walking bass on the beats under a straight eighth line whose accents fall
// on the beats or between them.
Performance accented_line(bool accents_off_beat, int beats = 16) {
  constexpr double kBeatS = 0.5;
  Performance p;
  for (int b = 0; b < beats; ++b) {
    const double t = b * kBeatS;
    p.notes.push_back(note_at(t, 0.45, 36 + (b % 4) * 2, 70));
    p.notes.push_back(note_at(t, 0.24, 72, accents_off_beat ? 60 : 100));
    p.notes.push_back(note_at(t + kBeatS / 2, 0.24, 74, accents_off_beat ? 100 : 60));
  }
  return sorted(p);
}

void expect_well_formed(const TheoryFeatures& f) {
  const auto check = [](std::span<const float> v, const char* name) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      EXPECT_TRUE(std::isfinite(v[i])) << name << "[" << i << "]";
      EXPECT_GE(v[i], -1.0F) << name << "[" << i << "]";
      EXPECT_LE(v[i], 1.0F) << name << "[" << i << "]";
    }
  };
  check(f.harmony, "harmony");
  check(f.melody, "melody");
  check(f.rhythm, "rhythm");
  check(f.dynamics, "dynamics");
}

float block_sum(std::span<const float> v, std::size_t offset, std::size_t size) {
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(offset),
                         v.begin() + static_cast<std::ptrdiff_t>(offset + size), 0.0F);
}

TEST(TheoryFeatures, EmptyPerformanceGivesZeros) {
  const TheoryFeatures f = compute_theory_features(Performance{});
  for (float x : f.harmony) EXPECT_EQ(x, 0.0F);
  for (float x : f.melody) EXPECT_EQ(x, 0.0F);
  for (float x : f.rhythm) EXPECT_EQ(x, 0.0F);
  for (float x : f.dynamics) EXPECT_EQ(x, 0.0F);
  EXPECT_EQ(f.key_mode, KeyMode::kNone);
  EXPECT_EQ(f.key_tonic, -1);
  EXPECT_EQ(f.swing_ratio, 0.0F);
  EXPECT_TRUE(f.chords.empty());
}

TEST(TheoryFeatures, SingleNoteIsFiniteAndSensible) {
  Performance p;
  p.notes.push_back(note_at(1.0, 0.5, 64, 90));
  const TheoryFeatures f = compute_theory_features(sorted(p));
  expect_well_formed(f);
  EXPECT_FLOAT_EQ(f.harmony[harmony_index::kPitchClass + 4], 1.0F);
  EXPECT_FLOAT_EQ(f.velocity_mean, 90.0F);
  EXPECT_FLOAT_EQ(f.notes_per_second, 2.0F);
  EXPECT_EQ(f.swing_ratio, 0.0F);
  EXPECT_EQ(f.tempo_bpm, 0.0F);

  Performance silent;  // a zero-length note sounds nothing
  silent.notes.push_back(note_at(0.0, 0.0, 60));
  expect_well_formed(compute_theory_features(sorted(silent)));
}

TEST(TheoryFeatures, Cmaj7ChordIsEstimatedAsCmaj7) {
  Performance p;
  for (int pitch : {48, 64, 67, 71}) p.notes.push_back(note_at(0.0, 2.0, pitch));
  const TheoryFeatures f = compute_theory_features(sorted(p));
  ASSERT_EQ(f.chords.size(), 1U);
  EXPECT_EQ(f.chords[0].chord, (Chord{0, ChordType::kMajor7}));
  EXPECT_EQ(chord_name(f.chords[0].chord), "Cmaj7");
  EXPECT_NEAR(f.chords[0].score, 1.0F, 1e-6);
  EXPECT_FLOAT_EQ(f.harmony[harmony_index::kChordTypes + static_cast<std::size_t>(ChordType::kMajor7)], 1.0F);
}

TEST(TheoryFeatures, SymmetricChordsTakeTheirRootFromTheBass) {
  for (const auto& [bass, name] : {std::pair{51, "D#dim7"}, std::pair{57, "Adim7"}}) {
    Performance p;
    p.notes.push_back(note_at(0.0, 1.0, bass));
    for (int pitch : {63, 66, 69, 72}) p.notes.push_back(note_at(0.0, 1.0, pitch));
    const TheoryFeatures f = compute_theory_features(sorted(p));
    ASSERT_EQ(f.chords.size(), 1U);
    EXPECT_EQ(chord_name(f.chords[0].chord), name);
  }
}

TEST(TheoryFeatures, FMajorScaleGivesFMajor) {
  Performance p;
  const std::array<int, 8> scale = {65, 67, 69, 70, 72, 74, 76, 77};
  for (std::size_t i = 0; i < scale.size(); ++i)
    p.notes.push_back(note_at(0.5 * static_cast<double>(i), 0.45, scale[i]));
  const TheoryFeatures f = compute_theory_features(sorted(p));
  EXPECT_EQ(f.key_tonic, 5);
  EXPECT_EQ(f.key_mode, KeyMode::kMajor);
  EXPECT_EQ(key_name(f.key_tonic, f.key_mode), "F major");
  EXPECT_GT(f.key_correlation, 0.7F);
  EXPECT_FLOAT_EQ(f.harmony[harmony_index::kScalars], 1.0F);  // major
  EXPECT_FLOAT_EQ(f.harmony[harmony_index::kMajorKeys + 5], f.key_correlation);
  // An ascending scale: every melodic step goes up, and is a step.
  EXPECT_FLOAT_EQ(f.contour_up, 1.0F);
  EXPECT_EQ(f.melody_range_semitones, 12.0F);
  EXPECT_FLOAT_EQ(f.melody[melody_index::kContour], 1.0F);
}

TEST(TheoryFeatures, AMinorMelodyGivesAMinor) {
  Performance p;
  const std::array<int, 9> line = {69, 72, 76, 74, 72, 71, 68, 69, 57};
  for (std::size_t i = 0; i < line.size(); ++i)
    p.notes.push_back(note_at(0.5 * static_cast<double>(i), 0.45, line[i]));
  p.notes.push_back(note_at(0.0, 4.5, 45));  // a held A in the bass
  const TheoryFeatures f = compute_theory_features(sorted(p));
  EXPECT_EQ(key_name(f.key_tonic, f.key_mode), "A minor");
}

TEST(TheoryFeatures, SwungEighthsGiveSwingRatioTwo) {
  for (double bpm : {120.0, 160.0, 200.0}) {
    const TheoryFeatures f = compute_theory_features(eighth_line(bpm, 2.0, 32));
    EXPECT_NEAR(f.swing_ratio, 2.0F, 0.1F) << bpm << " bpm";
    EXPECT_NEAR(f.tempo_bpm, bpm, bpm * 0.03) << bpm << " bpm";
    EXPECT_GE(f.swing_pairs, 25U);
    EXPECT_NEAR(f.rhythm[rhythm_index::kSwing], 0.5F, 0.04F);
    expect_well_formed(f);
  }
}

TEST(TheoryFeatures, StraightEighthsGiveSwingRatioOne) {
  const TheoryFeatures f = compute_theory_features(eighth_line(120, 1.0, 32));
  EXPECT_NEAR(f.swing_ratio, 1.0F, 0.1F);
  EXPECT_GE(f.swing_pairs, 25U);
  EXPECT_NEAR(f.rhythm[rhythm_index::kSwing], 0.0F, 0.04F);
}

TEST(TheoryFeatures, HumanisedSwingStillMeasures) {
  const TheoryFeatures swung = compute_theory_features(eighth_line(140, 2.0, 48, 0.008));
  EXPECT_NEAR(swung.swing_ratio, 2.0F, 0.15F);
  const TheoryFeatures straight = compute_theory_features(eighth_line(140, 1.0, 48, 0.008));
  EXPECT_NEAR(straight.swing_ratio, 1.0F, 0.1F);
}

TEST(TheoryFeatures, GivenTempoIsUsed) {
  TheoryOptions options;
  options.beat_period_us = 375'000;
  const TheoryFeatures f = compute_theory_features(eighth_line(160, 2.0, 32), options);
  EXPECT_NEAR(f.tempo_bpm, 160.0F, 2.0F);
  EXPECT_NEAR(f.swing_ratio, 2.0F, 0.1F);
}

TEST(TheoryFeatures, OffBeatAccentsAreMoreSyncopated) {
  const TheoryFeatures off = compute_theory_features(accented_line(true));
  const TheoryFeatures on = compute_theory_features(accented_line(false));
  EXPECT_NEAR(off.tempo_bpm, 120.0F, 3.0F);
  EXPECT_GT(off.syncopation, on.syncopation + 0.3F);
  EXPECT_LT(on.syncopation, 0.05F);
  EXPECT_FLOAT_EQ(off.rhythm[rhythm_index::kSyncopation], off.syncopation);

  // The same with the beat grid given, as the daemon's beat clock does.
  TheoryOptions options;
  for (int b = 0; b <= 16; ++b) options.beats_us.push_back(std::int64_t{500'000} * b);
  EXPECT_GT(compute_theory_features(accented_line(true), options).syncopation,
            compute_theory_features(accented_line(false), options).syncopation + 0.3F);
}

TEST(TheoryFeatures, AnticipationsAreSyncopated) {
  // Notes on the "and" held over the next beat, with nothing on that beat.
  Performance anticipated, square;
  for (int b = 0; b < 16; b += 2) {
    anticipated.notes.push_back(note_at(b * 0.5, 0.24, 36));
    anticipated.notes.push_back(note_at(b * 0.5 + 0.25, 0.7, 67));
    square.notes.push_back(note_at(b * 0.5, 0.24, 36));
    square.notes.push_back(note_at(b * 0.5 + 0.5, 0.45, 67));
  }
  TheoryOptions options;
  for (int b = 0; b <= 16; ++b) options.beats_us.push_back(std::int64_t{500'000} * b);
  EXPECT_GT(compute_theory_features(sorted(anticipated), options).syncopation, 0.4F);
  EXPECT_EQ(compute_theory_features(sorted(square), options).syncopation, 0.0F);
}

TEST(TheoryFeatures, CrescendoHasRisingDynamics) {
  Performance crescendo, decrescendo;
  for (int i = 0; i < 32; ++i) {
    crescendo.notes.push_back(note_at(0.25 * i, 0.2, 60 + i % 5, 30 + 2 * i));
    decrescendo.notes.push_back(note_at(0.25 * i, 0.2, 60 + i % 5, 92 - 2 * i));
  }
  const TheoryFeatures up = compute_theory_features(sorted(crescendo));
  const TheoryFeatures down = compute_theory_features(sorted(decrescendo));
  EXPECT_NEAR(up.velocity_slope_per_s, 8.0F, 0.01F);  // 2 per note, 4 notes per second
  EXPECT_NEAR(down.velocity_slope_per_s, -8.0F, 0.01F);
  EXPECT_GT(up.dynamics[dynamics_index::kSlope], 0.4F);
  EXPECT_LT(down.dynamics[dynamics_index::kSlope], -0.4F);
  EXPECT_FLOAT_EQ(up.velocity_mean, 61.0F);
  EXPECT_NEAR(up.velocity_range, 56.0F, 4.0F);
  EXPECT_EQ(up.accent_rate, 0.0F);  // smooth: no note stands out
  EXPECT_FLOAT_EQ(block_sum(up.dynamics, dynamics_index::kVelocity, 32), 1.0F);
  expect_well_formed(up);
}

TEST(TheoryFeatures, SustainPedalKeepsTheBassInTheChord) {
  Performance p;
  p.notes.push_back(note_at(0.0, 0.5, 36));  // C, released early
  for (int pitch : {64, 67, 71}) p.notes.push_back(note_at(1.0, 1.0, pitch));
  const TheoryFeatures dry = compute_theory_features(sorted(p));
  ASSERT_EQ(dry.chords.size(), 2U);
  EXPECT_EQ(chord_name(dry.chords[1].chord), "Em");
  EXPECT_EQ(dry.dynamics[dynamics_index::kScalars + 11], 0.0F);

  p.pedals = {{0, true, 0}, {3'000'000, false, 0}};
  const TheoryFeatures pedalled = compute_theory_features(sorted(p));
  ASSERT_EQ(pedalled.chords.size(), 2U);
  EXPECT_EQ(chord_name(pedalled.chords[1].chord), "Cmaj7");
  EXPECT_FLOAT_EQ(pedalled.dynamics[dynamics_index::kScalars + 11], 1.0F);  // pedal down throughout
}

TEST(TheoryFeatures, AccentsAreCounted) {
  Performance p;
  for (int i = 0; i < 40; ++i) p.notes.push_back(note_at(0.2 * i, 0.15, 60, i % 4 == 0 ? 110 : 60));
  const TheoryFeatures f = compute_theory_features(sorted(p));
  EXPECT_FLOAT_EQ(f.accent_rate, 0.25F);
}

TEST(TheoryFeatures, SkylineFollowsTheTopVoice) {
  Performance p;
  const std::array<int, 4> melody = {79, 77, 76, 74};
  for (int i = 0; i < 4; ++i) {
    p.notes.push_back(note_at(i, 1.0, melody[static_cast<std::size_t>(i)], 90));
    for (int pitch : {48, 52, 55}) p.notes.push_back(note_at(i, 1.0, pitch, 50));
    // An inner voice under the held melody note is not melody.
    p.notes.push_back(note_at(i + 0.5, 0.4, 64, 50));
  }
  const TheoryFeatures f = compute_theory_features(sorted(p));
  EXPECT_FLOAT_EQ(f.contour_down, 1.0F);
  EXPECT_FLOAT_EQ(f.melody_range_semitones, 5.0F);
  EXPECT_FLOAT_EQ(f.melody_mean_pitch, 76.5F);
  // -2, -1, -2 semitones.
  EXPECT_NEAR(f.melody[melody_index::kIntervals + 10], 2.0F / 3, 1e-6);
  EXPECT_NEAR(f.melody[melody_index::kIntervals + 11], 1.0F / 3, 1e-6);
  // Melody is louder than the accompaniment.
  EXPECT_GT(f.dynamics[dynamics_index::kScalars + 7], 0.5F);
}

TEST(TheoryFeatures, PlayedProgressionMatchesItsChordList) {
  Performance p;
  const std::array<std::array<int, 4>, 3> voicings = {{{50, 65, 69, 72}, {43, 65, 71, 74}, {48, 64, 67, 71}}};
  for (std::size_t c = 0; c < voicings.size(); ++c) {
    for (int pitch : voicings[c]) p.notes.push_back(note_at(2.0 * static_cast<double>(c), 1.9, pitch));
  }
  const TheoryFeatures f = compute_theory_features(sorted(p));
  ASSERT_EQ(f.chords.size(), 3U);
  EXPECT_EQ(chord_name(f.chords[0].chord), "Dm7");
  EXPECT_EQ(chord_name(f.chords[1].chord), "G7");
  EXPECT_EQ(chord_name(f.chords[2].chord), "Cmaj7");

  const auto from_list = harmony_from_chords("Dm7 G7 Cmaj7", 2.0);
  for (std::size_t i = 0; i < kChordTypeCount; ++i) {
    EXPECT_NEAR(f.harmony[harmony_index::kChordTypes + i], from_list[harmony_index::kChordTypes + i], 0.02F)
        << i;
  }
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_NEAR(f.harmony[harmony_index::kRootMotion + i], from_list[harmony_index::kRootMotion + i], 1e-6)
        << i;
  }
}

TEST(TheoryFeatures, HarmonyFromChordsDescribesATwoFiveOne) {
  namespace hi = harmony_index;
  const auto h = harmony_from_chords("Dm7 | G7 | Cmaj7 | Cmaj7", 2.0);
  EXPECT_FLOAT_EQ(h[hi::kScalars], 1.0F);         // major
  EXPECT_GT(h[hi::kMajorKeys + 0], 0.7F);         // C major
  EXPECT_FLOAT_EQ(h[hi::kRootMotion + 5], 1.0F);  // both changes go up a fourth
  EXPECT_FLOAT_EQ(h[hi::kChordTypes + static_cast<std::size_t>(ChordType::kMajor7)], 0.5F);
  EXPECT_FLOAT_EQ(h[hi::kRootFunction + 4 * 2 + 2], 0.25F);  // ii minor
  EXPECT_FLOAT_EQ(h[hi::kRootFunction + 4 * 7 + 1], 0.25F);  // V dominant
  EXPECT_FLOAT_EQ(h[hi::kRootFunction + 4 * 0 + 0], 0.5F);   // I major
  EXPECT_NEAR(h[hi::kScalars + 3], 2.0F / 3, 1e-6);          // 2 changes over 3 boundaries
  EXPECT_FLOAT_EQ(block_sum(h, hi::kPitchClass, 12), 1.0F);
  EXPECT_FLOAT_EQ(h[hi::kScalars + 10], 1.0F);  // every window has a chord
}

TEST(TheoryFeatures, ParsesChordSymbols) {
  EXPECT_EQ(parse_chord_symbol("Dm7"), (Chord{2, ChordType::kMinor7}));
  EXPECT_EQ(parse_chord_symbol("Bb7"), (Chord{10, ChordType::kDominant7}));
  EXPECT_EQ(parse_chord_symbol("F#\u00f8"), (Chord{6, ChordType::kHalfDiminished7}));
  EXPECT_EQ(parse_chord_symbol("Ebmaj7/G"), (Chord{3, ChordType::kMajor7}));
  EXPECT_EQ(parse_chord_symbol("C\u00b07"), (Chord{0, ChordType::kDiminished7}));
  EXPECT_EQ(parse_chord_symbol("Cb"), (Chord{11, ChordType::kMajor}));
  EXPECT_EQ(parse_chord_symbol("G+"), (Chord{7, ChordType::kAugmented}));
  EXPECT_EQ(parse_chord_symbol("Asus"), (Chord{9, ChordType::kSus4}));
  EXPECT_EQ(parse_chord_symbol("AM"), (Chord{9, ChordType::kMajor}));
  EXPECT_EQ(parse_chord_symbol("Am"), (Chord{9, ChordType::kMinor}));
  for (int root = 0; root < 12; ++root) {
    for (int type = 0; type < kChordTypeCount; ++type) {
      const Chord chord{root, static_cast<ChordType>(type)};
      EXPECT_EQ(parse_chord_symbol(chord_name(chord)), chord) << chord_name(chord);
    }
  }
  const auto list = parse_chord_list("Dm7, G7 |Cmaj7", 1.5);
  ASSERT_EQ(list.size(), 3U);
  EXPECT_EQ(list[2].start_us, 3'000'000);
  EXPECT_EQ(list[2].end_us, 4'500'000);
}

void expect_error_naming(const std::function<void()>& call, const std::string& needle) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one naming " << needle;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TheoryFeatures, ChordParsingErrorsNameTheSymbol) {
  expect_error_naming([] { (void)parse_chord_symbol("H7"); }, "\"H7\"");
  expect_error_naming([] { (void)parse_chord_symbol("Cxyz"); }, "\"xyz\"");
  expect_error_naming([] { (void)parse_chord_symbol("C/H"); }, "\"C/H\"");
  expect_error_naming([] { (void)parse_chord_symbol(""); }, "root");
  expect_error_naming([] { (void)harmony_from_chords("Dm7 G7 Qmaj7", 2.0); }, "symbol 3");
  expect_error_naming([] { (void)harmony_from_chords("Dm7 G7 Qmaj7", 2.0); }, "\"Qmaj7\"");
  expect_error_naming([] { (void)harmony_from_chords(" | ", 2.0); }, "no chord symbols");
  expect_error_naming([] { (void)harmony_from_chords("C", 0.0); }, "seconds per chord");
  expect_error_naming([] { (void)harmony_from_chords("C", std::nan("")); }, "seconds per chord");
}

TEST(TheoryFeatures, BadInputIsRejected) {
  Performance p;
  p.notes.push_back(note_at(0, 1, 60));
  p.notes.push_back(note_at(1, 1, 200));
  expect_error_naming([&] { (void)compute_theory_features(p); }, "note 1 has pitch 200");
  p.notes[1] = note_at(1, 1, 60);
  p.notes[1].duration_us = -5;
  expect_error_naming([&] { (void)compute_theory_features(p); }, "note 1 has negative duration");
  p.notes[1] = note_at(1, 1, 60);
  p.notes[1].onset_us = std::numeric_limits<std::int64_t>::max() - 10;
  expect_error_naming([&] { (void)compute_theory_features(p); }, "note 1");
  p.notes[1] = note_at(30 * 3600, 1, 60);
  expect_error_naming([&] { (void)compute_theory_features(p); }, "24 h");
  p.notes[1] = note_at(1, 1, 60);
  TheoryOptions options;
  options.beats_us = {0, 500'000, 400'000};
  expect_error_naming([&] { (void)compute_theory_features(p, options); }, "beats_us[2]");
  options.beats_us = {0, 500'000, 550'000};  // 1200 bpm
  expect_error_naming([&] { (void)compute_theory_features(p, options); }, "beats_us[2]");
  options = {};
  options.accent_margin = 0;
  expect_error_naming([&] { (void)compute_theory_features(p, options); }, "accent_margin = 0");
  options = {};
  options.onset_group_us = 0;
  expect_error_naming([&] { (void)compute_theory_features(p, options); }, "onset_group_us = 0");
  options = {};
  options.beat_period_us = 50'000;
  expect_error_naming([&] { (void)compute_theory_features(Performance{}, options); }, "beat_period_us");
}

// A random but seeded performance: two hands, pedal, wide velocities.
Performance random_performance(unsigned seed, int notes) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> gap(0.0, 0.4), length(0.02, 2.0);
  std::uniform_int_distribution<int> pitch(21, 108), velocity(1, 127);
  Performance p;
  double t = 0;
  for (int i = 0; i < notes; ++i) {
    t += gap(rng);
    p.notes.push_back(note_at(t, length(rng), pitch(rng), velocity(rng)));
    if (i % 10 == 0) p.pedals.push_back({std::llround(t * 1e6), (i / 10) % 2 == 0, 0});
  }
  return sorted(p);
}

TEST(TheoryFeatures, VectorsAreNormalised) {
  for (unsigned seed = 1; seed <= 5; ++seed) {
    const TheoryFeatures f = compute_theory_features(random_performance(seed, 400));
    expect_well_formed(f);
    EXPECT_NEAR(block_sum(f.harmony, harmony_index::kPitchClass, 12), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.harmony, harmony_index::kChordTypes, kChordTypeCount), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.harmony, harmony_index::kRootFunction, 48), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.melody, melody_index::kIntervals, 25), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.melody, melody_index::kContour, 3), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.melody, melody_index::kRegister, 16), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.rhythm, rhythm_index::kIoi, 16), 1.0F, 1e-5);
    EXPECT_NEAR(block_sum(f.dynamics, dynamics_index::kVelocity, 32), 1.0F, 1e-5);
    EXPECT_FALSE(f.chords.empty());
    for (std::size_t i = 1; i < f.chords.size(); ++i) {
      EXPECT_EQ(f.chords[i - 1].end_us <= f.chords[i].start_us, true);
      EXPECT_FALSE(f.chords[i - 1].chord == f.chords[i].chord &&
                   f.chords[i - 1].end_us == f.chords[i].start_us);
    }
  }
}

TEST(TheoryFeatures, NoteOrderDoesNotMatter) {
  const Performance p = random_performance(11, 200);
  Performance shuffled = p;
  std::shuffle(shuffled.notes.begin(), shuffled.notes.end(), std::mt19937(3));
  const TheoryFeatures a = compute_theory_features(p);
  const TheoryFeatures b = compute_theory_features(shuffled);
  EXPECT_EQ(a.harmony, b.harmony);
  EXPECT_EQ(a.melody, b.melody);
  EXPECT_EQ(a.rhythm, b.rhythm);
  EXPECT_EQ(a.dynamics, b.dynamics);
}

// --- PiJAMA -----------------------------------------------------------------

std::filesystem::path pijama_dir() {
  if (const char* data = std::getenv("TATUMFLOW_DATA"); data != nullptr && *data != '\0') return data;
  return std::filesystem::path(TATUMFLOW_SOURCE_DIR) / ".." / "shared" / "data" / "pijama";
}

TEST(TheoryFeaturesPijama, ArtTatumFilesGiveWellFormedFeatures) {
  const std::filesystem::path folder = pijama_dir() / "midi_kong" / "studio" / "Art Tatum";
  if (!std::filesystem::is_directory(folder)) GTEST_SKIP() << "no PiJAMA data at " << folder;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    if (entry.path().extension() == ".midi") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  files.resize(std::min<std::size_t>(files.size(), 8));
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    const TheoryFeatures f = compute_theory_features(read_smf(file));
    expect_well_formed(f);
    EXPECT_NE(f.key_mode, KeyMode::kNone);
    EXPECT_GT(f.key_correlation, 0.5F);
    EXPECT_GE(f.tempo_bpm, 40.0F);
    EXPECT_LE(f.tempo_bpm, 300.0F);
    EXPECT_GT(f.swing_pairs, 10U);
    EXPECT_GE(f.swing_ratio, 1.0F);
    EXPECT_LE(f.swing_ratio, 4.0F);
    EXPECT_GT(f.chords.size(), 10U);
    EXPECT_NEAR(block_sum(f.harmony, harmony_index::kPitchClass, 12), 1.0F, 1e-5);
  }
}

}  // namespace
}  // namespace tatumflow
