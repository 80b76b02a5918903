// SPDX-License-Identifier: GPL-3.0-or-later
// Music-theory features of a performance: the four vectors the theory encoder
// reads (harmony 128, melody 128, rhythm 64, dynamics 64) plus named scalars in
// musical units for reports and the daemon.
//
// Computed from the notes in one pass: one sort of the notes, then linear scans
// (onset groups, a beat tracker, chord windows, the skyline melody). Everything
// here is a pure function of its arguments: any thread may call it, except a
// real-time thread (it allocates).
//
// Vector conventions, because they feed a neural network: every histogram sums
// to 1 (or is all zeros when it has nothing to count), every scalar lies in
// [0, 1] or [-1, 1]; "squash(x, c)" below means x / (x + c), so c maps to 0.5.
// An empty performance gives all zeros; nothing is ever NaN.
//
// Onset groups: notes whose onsets lie within TheoryOptions::onset_group_us of
// the group's first onset are one onset (a chord, a rolled chord, a flam).
// Beat grid: TheoryOptions::beats_us if given; else a period (the option, or the
// peak of the onset-pair lag histogram, scored at the period, twice and half
// of it, with a log-normal tempo prior centred on 171 bpm) and dynamic-
// programming beat tracking (Ellis 2007) over each stretch of music without a
// gap longer than 4 s. Like any tracker it may count a beat at half or double
// speed; swing is measured either way. Everything marked "(beats)" is zero
// when no grid could be found (fewer than 4 onsets, or nothing periodic).
//
// Chord windows are TheoryOptions::chord_window_beats beats long on the beat
// grid and chord_window_us elsewhere; each window with notes gets the best
// cosine match among 12 roots x 9 ChordType templates (ties go to the root in
// the bass). Histograms over windows are weighted by window length.
//
// harmony (index: size, meaning)
//   0: 12   pitch-class histogram, weighted by sounding time (sustain pedal
//           extends a released note by up to 2 s; none sounds over 10 s), C..B
//  12: 12   the same histogram rotated so that index 12 is the key's tonic
//  24: 12   Krumhansl-Kessler correlation with the major keys C..B, in [-1, 1]
//  36: 12   correlation with the minor keys C..B
//  48: 9    chord-type histogram over the chord windows, ChordType order
//  57: 12   root-motion histogram: (next root - root) mod 12 at each chord
//           change (a change of type only counts as 0)
//  69: 48   chord root relative to the tonic x function: index 69 + 4 * interval
//           + family (0 major: maj maj7; 1 dominant: 7 aug sus4; 2 minor: m m7;
//           3 diminished: m7b5 dim7)
// 117: key mode: +1 major, -1 minor, 0 none
// 118: key correlation (best of the 24)
// 119: key clarity: best minus runner-up correlation, clamped to [0, 1]
// 120: chord changes per window boundary, [0, 1]
// 121: squash(chord changes per second, 1)
// 122: mean cosine score of the chosen chord templates
// 123: pitch-class entropy / log 12
// 124: chord-type entropy / log 9
// 125: share of pitch-class weight outside the key's scale (major: Ionian;
//      minor: natural minor plus the leading tone)
// 126: squash(mean number of keys held while any is held, 4)
// 127: share of the span covered by chord windows with notes in them
//
// melody: the skyline (at each onset group its highest note, unless a higher
// melody note is still held), in order
//   0: 25   interval histogram, -12..+12 semitones (wider intervals clipped)
//  25: 3    contour: share of up, down, same
//  28: 9    contour bigrams: 3 * previous + next, each in (up, down, same)
//  37: 12   melody pitch-class histogram (one count per note), C..B
//  49: 12   the same relative to the key's tonic
//  61: 16   register histogram, 6-semitone bins from MIDI 24 (clipped)
//  77: 12   melody note relative to the root of the chord sounding under it
//  89: 25   two-step interval histogram (pitch[i+2] - pitch[i]), -12..+12
// 114: range (max - min) / 87        115: (mean pitch - 21) / 87
// 116: squash(pitch std, 6)           117: (lowest - 21) / 87
// 118: (highest - 21) / 87            119: squash(mean |interval|, 3)
// 120: share of steps (|interval| 1-2) 121: share of leaps (|interval| >= 5)
// 122: share of chromatic steps (|interval| = 1)
// 123: squash(melody notes per second, 4)
// 124: melody notes / all notes
// 125: articulation: mean of min(duration / time to next melody note, 1)
// 126: squash(mean length of runs of one contour direction, 2)
// 127: share of melody notes that are chord tones of the chord under them
// (the pitch scalars 114-118 are clamped to [0, 1] for pitches off the piano)
//
// rhythm
//   0: 16   inter-onset-interval histogram (between onset groups), bins centred
//           on log2(seconds) = -5, -4.5, ... +2.5 (clipped)
//  16: 24   (beats) IOI relative to the local beat, bins centred on
//           log2(IOI / beat) = -4, -3.75, ... +1.75 (index 28 = an eighth,
//           32 = a beat)
//  40: 12   (beats) onset position within the beat, bin k centred on k/12 of a
//           beat (6 = straight "and", 8 = swung "and")
//  52: (beats) swing: log2(swing ratio) / 2 clamped to [-1, 1] (2:1 gives 0.5)
//  53: (beats) share of beat intervals that gave an eighth pair (the swing
//      evidence): onsets on both beats and one between them
//  54: (beats) syncopation index, [0, 1]
//  55: squash(notes per second, 10)   56: squash(onset groups per second, 6)
//  57: (beats) tempo: log2(beat / 0.5 s) clamped to [-1, 1] (120 bpm gives 0)
//  58: (beats) share of beats with an onset on them
//  59: squash(coefficient of variation of the IOIs, 1)
//  60: share of onset groups with 3 or more notes (chords)
//  61: (beats) share of onset groups off the beat
//  62: (beats) squash(std of log2 beat intervals, 0.05): tempo instability
//  63: share of the span where no key is held (rests)
//
// dynamics
//   0: 32   velocity histogram, 4 velocities per bin (the tokenizer's bins)
//  32: 12   (beats) mean velocity / 127 of the notes at each position within
//           the beat (the bins of rhythm 40), 0 where there are none
//  44: 8    mean velocity / 127 per octave from MIDI 24 (clipped), 0 if none
//  52: mean velocity / 127            53: squash(velocity std, 16)
//  54: (p95 - p5) / 127               55: p5 / 127       56: p95 / 127
//  57: accent rate: share of notes louder than the mean of the notes around
//      them (TheoryOptions::accent_window_us either side) by accent_margin
//  58: least-squares velocity slope x span / 127, clamped to [-1, 1]
//  59: (melody mean - accompaniment mean velocity) / 64, clamped to [-1, 1]
//  60: squash(mean |velocity - local mean|, 8)
//  61: lag-1 autocorrelation of the onset groups' mean velocities
//  62: (p90 - p10) / 127 of the mean velocity per 2 s window (the dynamic arc)
//  63: share of the span with the sustain pedal down
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/protocol/performance.hpp"

namespace tatumflow {

inline constexpr std::size_t kHarmonySize = 128;
inline constexpr std::size_t kMelodySize = 128;
inline constexpr std::size_t kRhythmSize = 64;
inline constexpr std::size_t kDynamicsSize = 64;

// First index of each block of the vectors (layout above).
namespace harmony_index {
inline constexpr std::size_t kPitchClass = 0;
inline constexpr std::size_t kPitchClassFromTonic = 12;
inline constexpr std::size_t kMajorKeys = 24;
inline constexpr std::size_t kMinorKeys = 36;
inline constexpr std::size_t kChordTypes = 48;
inline constexpr std::size_t kRootMotion = 57;
inline constexpr std::size_t kRootFunction = 69;
inline constexpr std::size_t kScalars = 117;
}  // namespace harmony_index

namespace melody_index {
inline constexpr std::size_t kIntervals = 0;
inline constexpr std::size_t kContour = 25;
inline constexpr std::size_t kContourBigrams = 28;
inline constexpr std::size_t kPitchClass = 37;
inline constexpr std::size_t kPitchClassFromTonic = 49;
inline constexpr std::size_t kRegister = 61;
inline constexpr std::size_t kOverChordRoot = 77;
inline constexpr std::size_t kTwoStepIntervals = 89;
inline constexpr std::size_t kScalars = 114;
}  // namespace melody_index

namespace rhythm_index {
inline constexpr std::size_t kIoi = 0;
inline constexpr std::size_t kIoiInBeats = 16;
inline constexpr std::size_t kBeatPosition = 40;
inline constexpr std::size_t kSwing = 52;
inline constexpr std::size_t kSwingEvidence = 53;
inline constexpr std::size_t kSyncopation = 54;
inline constexpr std::size_t kScalars = 52;
}  // namespace rhythm_index

namespace dynamics_index {
inline constexpr std::size_t kVelocity = 0;
inline constexpr std::size_t kVelocityByBeatPosition = 32;
inline constexpr std::size_t kVelocityByOctave = 44;
inline constexpr std::size_t kMean = 52;
inline constexpr std::size_t kAccentRate = 57;
inline constexpr std::size_t kSlope = 58;
inline constexpr std::size_t kScalars = 52;
}  // namespace dynamics_index

enum class ChordType : std::uint8_t {
  kMajor,
  kMinor,
  kDominant7,
  kMajor7,
  kMinor7,
  kHalfDiminished7,
  kDiminished7,
  kAugmented,
  kSus4,
};
inline constexpr int kChordTypeCount = 9;

struct Chord {
  int root = 0;  // pitch class, 0 = C .. 11 = B
  ChordType type = ChordType::kMajor;
  friend bool operator==(const Chord&, const Chord&) = default;
};

struct ChordEstimate {
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  Chord chord;
  float score = 0;  // cosine of the chroma with the chord template, 1 for a parsed symbol
};

enum class KeyMode : std::uint8_t { kNone, kMajor, kMinor };

// Limits keep the work linear in the input; compute_theory_features names the
// option that breaks one.
struct TheoryOptions {
  // Explicit beat times, at least 2, each at least 100 ms after the one before,
  // e.g. from the daemon's beat clock; overrides the tracker.
  std::vector<std::int64_t> beats_us;
  // Beat period for the tracker, 100 ms .. 3 s; 0 estimates it from the onsets.
  std::int64_t beat_period_us = 0;
  int chord_window_beats = 2;                 // 1..64; 2 is half a 4/4 bar
  std::int64_t chord_window_us = 1'000'000;   // >= 100 ms, where there is no beat grid
  std::int64_t onset_group_us = 30'000;       // 1 ms .. 1.5 s
  int accent_margin = 10;                     // velocity units, 1..127
  std::int64_t accent_window_us = 1'000'000;  // either side of the note, <= 24 h
};

struct TheoryFeatures {
  std::array<float, kHarmonySize> harmony{};
  std::array<float, kMelodySize> melody{};
  std::array<float, kRhythmSize> rhythm{};
  std::array<float, kDynamicsSize> dynamics{};

  int key_tonic = -1;  // pitch class, -1 with KeyMode::kNone
  KeyMode key_mode = KeyMode::kNone;
  float key_correlation = 0;

  float tempo_bpm = 0;  // 0 when no beat grid was found
  std::size_t beat_count = 0;
  float swing_ratio = 0;  // long / short of eighth pairs; 0 when no pair was found
  std::size_t swing_pairs = 0;
  float syncopation = 0;       // [0, 1]
  float notes_per_second = 0;  // over the span from the first onset to the last release

  float chord_change_rate = 0;  // changes per chord-window boundary
  float melody_range_semitones = 0;
  float melody_mean_pitch = 0;
  float contour_up = 0;
  float contour_down = 0;
  float contour_same = 0;

  float velocity_mean = 0;
  float velocity_p5 = 0;
  float velocity_p95 = 0;
  float velocity_range = 0;  // p95 - p5
  float accent_rate = 0;
  float velocity_slope_per_s = 0;

  // One entry per run of windows with the same chord, in time order.
  std::vector<ChordEstimate> chords;
};

// Notes need not be sorted. Throws std::invalid_argument naming the note (or
// pedal change) index when a note has a pitch or velocity over 127, a negative
// duration or a time beyond +-2^52 us, when the notes span more than 24 h, and
// naming the option when an option is out of range (beats_us not strictly
// increasing, accent_margin outside 1..127, ...). // any thread (not real-time)
[[nodiscard]] TheoryFeatures compute_theory_features(const Performance& performance,
                                                     const TheoryOptions& options = {});

// "Dm7", "Bb7", "F#ø", "Ebmaj7/G" (the bass after '/' is checked, then ignored).
// Roots A-G with '#' or 'b'; qualities: "" maj M (major), m min - (minor),
// 7 dom7 9 13 7b9 7#9 7#11 7b13 7alt (dominant 7th), maj7 M7 Δ Δ7 maj9 (major
// 7th), m7 min7 -7 m9 m11 (minor 7th), m7b5 min7b5 -7b5 ø ø7 (half-diminished),
// dim7 °7 o7 dim ° o (diminished 7th), aug + (augmented), sus sus4 7sus 7sus4
// (sus4), 6 (major), m6 (minor). Throws std::invalid_argument naming the symbol.
// // any thread
[[nodiscard]] Chord parse_chord_symbol(std::string_view symbol);

// Symbols separated by spaces, commas or bar lines, each lasting
// seconds_per_chord, from time 0. Throws std::invalid_argument naming the bad
// symbol and its position, for an empty list or a non-positive duration.
// // any thread
[[nodiscard]] std::vector<ChordEstimate> parse_chord_list(std::string_view chords, double seconds_per_chord);

// The harmony vector of a chord list, as if the chord tones were played for
// each chord's duration: the editing mode's replacement for a performance's
// harmony. Same layout and code as compute_theory_features. // any thread
[[nodiscard]] std::array<float, kHarmonySize> harmony_from_chords(std::string_view chords,
                                                                  double seconds_per_chord);

[[nodiscard]] const char* to_string(
    ChordType type);  // "maj", "m", "7", "maj7", "m7", "m7b5", "dim7", "aug", "sus4"
[[nodiscard]] std::string chord_name(const Chord& chord);     // "C#m7" (sharps)
[[nodiscard]] std::string key_name(int tonic, KeyMode mode);  // "F major", "none"

}  // namespace tatumflow
