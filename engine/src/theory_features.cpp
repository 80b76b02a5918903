// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/theory_features.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <span>
#include <stdexcept>
#include <tuple>

namespace tatumflow {

namespace {

constexpr double kUsPerSecond = 1e6;
constexpr std::int64_t kMaxTimeUs = std::int64_t{1} << 52;
constexpr std::int64_t kMaxSpanUs = std::int64_t{24} * 3600 * 1'000'000;
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

// A released key under the pedal keeps sounding, but a piano string has mostly
// decayed after about two seconds, and has died away after ten however long
// the key is held (the tokenizer's duration cap too).
constexpr std::int64_t kPedalRingUs = 2'000'000;
constexpr std::int64_t kMaxSoundingUs = 10'000'000;
// A pitch must sound this long in a chord window to be its bass (a pedal tail
// or a grace note is not).
constexpr std::int64_t kBassMinOverlapUs = 50'000;
// Breaks ties between chords with the same notes (C6 / Am7, the four dim7
// roots) in favour of the one whose root is in the bass, without overruling a
// better template match.
constexpr double kBassRootBonus = 0.02;

// Beat tracking.
constexpr std::int64_t kMinPeriodUs = 250'000;    // 240 bpm
constexpr std::int64_t kMaxPeriodUs = 1'500'000;  // 40 bpm
constexpr double kLagBinUs = 5'000;
constexpr double kLagSmoothingBins = 3;          // human timing spreads a lag by ~15 ms
constexpr double kTempoPriorCentreUs = 350'000;  // 171 bpm, a typical jazz tempo
constexpr double kTempoPriorOctaves = 1.0;
constexpr std::int64_t kFrameUs = 10'000;
constexpr double kEnvelopeSmoothingFrames = 2;
constexpr double kTightness = 100;  // librosa's default for the Ellis tracker
constexpr std::int64_t kSegmentGapUs = 4'000'000;
constexpr std::size_t kMinGroupsToTrack = 4;
constexpr double kOnBeatTolerance = 0.125;             // of a beat: a 32nd note
constexpr std::int64_t kMinBeatUs = 100'000;           // 600 bpm: no beat grid is denser
constexpr std::int64_t kMaxGivenPeriodUs = 3'000'000;  // 20 bpm

// Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
constexpr std::array<double, 12> kMajorProfile = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09,
                                                  2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
constexpr std::array<double, 12> kMinorProfile = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53,
                                                  2.54, 4.75, 3.98, 2.69, 3.34, 3.17};
constexpr std::array<bool, 12> kMajorScale = {true,  false, true,  false, true,  true,
                                              false, true,  false, true,  false, true};
constexpr std::array<bool, 12> kMinorScale = {true,  false, true, true,  false, true,
                                              false, true,  true, false, true,  true};

struct ChordTemplate {
  ChordType type;
  const char* suffix;  // as chord_name writes it
  const char* label;   // as to_string writes it
  std::array<bool, 12> tones;
  int family;  // harmony layout: 0 major, 1 dominant, 2 minor, 3 diminished
};

constexpr std::array<bool, 12> tones_of(std::initializer_list<int> intervals) {
  std::array<bool, 12> tones{};
  for (int interval : intervals) tones[static_cast<std::size_t>(interval)] = true;
  return tones;
}

// In ChordType order.
constexpr std::array<ChordTemplate, kChordTypeCount> kTemplates = {{
    {ChordType::kMajor, "", "maj", tones_of({0, 4, 7}), 0},
    {ChordType::kMinor, "m", "m", tones_of({0, 3, 7}), 2},
    {ChordType::kDominant7, "7", "7", tones_of({0, 4, 7, 10}), 1},
    {ChordType::kMajor7, "maj7", "maj7", tones_of({0, 4, 7, 11}), 0},
    {ChordType::kMinor7, "m7", "m7", tones_of({0, 3, 7, 10}), 2},
    {ChordType::kHalfDiminished7, "m7b5", "m7b5", tones_of({0, 3, 6, 10}), 3},
    {ChordType::kDiminished7, "dim7", "dim7", tones_of({0, 3, 6, 9}), 3},
    {ChordType::kAugmented, "aug", "aug", tones_of({0, 4, 8}), 1},
    {ChordType::kSus4, "sus4", "sus4", tones_of({0, 5, 7}), 1},
}};

const ChordTemplate& template_of(ChordType type) { return kTemplates[static_cast<std::size_t>(type)]; }

std::size_t tone_count(const ChordTemplate& t) {
  return static_cast<std::size_t>(std::count(t.tones.begin(), t.tones.end(), true));
}

struct QualityAlias {
  std::string_view text;
  ChordType type;
};

constexpr auto kQualities = std::to_array<QualityAlias>({
    {"", ChordType::kMajor},
    {"maj", ChordType::kMajor},
    {"M", ChordType::kMajor},
    {"6", ChordType::kMajor},
    {"m", ChordType::kMinor},
    {"min", ChordType::kMinor},
    {"-", ChordType::kMinor},
    {"m6", ChordType::kMinor},
    {"7", ChordType::kDominant7},
    {"dom7", ChordType::kDominant7},
    {"9", ChordType::kDominant7},
    {"13", ChordType::kDominant7},
    {"7b9", ChordType::kDominant7},
    {"7#9", ChordType::kDominant7},
    {"7#11", ChordType::kDominant7},
    {"7b13", ChordType::kDominant7},
    {"7alt", ChordType::kDominant7},
    {"maj7", ChordType::kMajor7},
    {"M7", ChordType::kMajor7},
    {"\u0394", ChordType::kMajor7},
    {"\u03947", ChordType::kMajor7},
    {"maj9", ChordType::kMajor7},
    {"m7", ChordType::kMinor7},
    {"min7", ChordType::kMinor7},
    {"-7", ChordType::kMinor7},
    {"m9", ChordType::kMinor7},
    {"m11", ChordType::kMinor7},
    {"m7b5", ChordType::kHalfDiminished7},
    {"min7b5", ChordType::kHalfDiminished7},
    {"-7b5", ChordType::kHalfDiminished7},
    {"\u00f8", ChordType::kHalfDiminished7},
    {"\u00f87", ChordType::kHalfDiminished7},
    {"dim7", ChordType::kDiminished7},
    {"\u00b07", ChordType::kDiminished7},
    {"o7", ChordType::kDiminished7},
    {"dim", ChordType::kDiminished7},
    {"\u00b0", ChordType::kDiminished7},
    {"o", ChordType::kDiminished7},
    {"aug", ChordType::kAugmented},
    {"+", ChordType::kAugmented},
    {"sus", ChordType::kSus4},
    {"sus4", ChordType::kSus4},
    {"7sus", ChordType::kSus4},
    {"7sus4", ChordType::kSus4},
    {"M9", ChordType::kMajor7},
    {"min9", ChordType::kMinor7},
});

constexpr std::array<const char*, 12> kPitchClassNames = {"C",  "C#", "D",  "D#", "E",  "F",
                                                          "F#", "G",  "G#", "A",  "A#", "B"};

// --- small numeric helpers -------------------------------------------------

double squash(double x, double half_point) { return x <= 0 ? 0.0 : x / (x + half_point); }

float to_float(double x) { return static_cast<float>(x); }

float clamp_signed(double x) { return to_float(std::clamp(x, -1.0, 1.0)); }

float clamp_unit(double x) { return to_float(std::clamp(x, 0.0, 1.0)); }

double seconds(std::int64_t us) { return static_cast<double>(us) / kUsPerSecond; }

std::size_t pitch_class(int pitch) { return static_cast<std::size_t>(((pitch % 12) + 12) % 12); }

// Writes `counts` normalised to sum 1 (or zeros) at out[offset...].
template <std::size_t N>
void write_distribution(std::span<float> out, std::size_t offset, const std::array<double, N>& counts) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  for (std::size_t i = 0; i < N; ++i) out[offset + i] = total > 0 ? to_float(counts[i] / total) : 0.0F;
}

template <std::size_t N>
double normalised_entropy(const std::array<double, N>& counts) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  if (total <= 0) return 0;
  double entropy = 0;
  for (double c : counts) {
    if (c > 0) entropy -= (c / total) * std::log(c / total);
  }
  return entropy / std::log(static_cast<double>(N));
}

// Mean and variance in one pass.
struct Moments {
  double n = 0, sum = 0, sum_sq = 0;
  void add(double x, double weight = 1) {
    n += weight;
    sum += weight * x;
    sum_sq += weight * x * x;
  }
  [[nodiscard]] double mean() const { return n > 0 ? sum / n : 0; }
  [[nodiscard]] double stddev() const {
    if (n <= 0) return 0;
    return std::sqrt(std::max(0.0, sum_sq / n - mean() * mean()));
  }
};

// Nearest-rank percentile of integer values 0-127 held as counts.
double percentile(const std::array<double, 128>& counts, double fraction) {
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  if (total <= 0) return 0;
  const double rank = std::max(1.0, std::ceil(fraction * total));
  double cumulative = 0;
  for (std::size_t v = 0; v < counts.size(); ++v) {
    cumulative += counts[v];
    if (cumulative >= rank) return static_cast<double>(v);
  }
  return 127;
}

std::size_t clipped_bin(double x, std::size_t bins) {
  if (!(x > 0)) return 0;
  return std::min(static_cast<std::size_t>(x), bins - 1);
}

// --- the prepared input ----------------------------------------------------

struct Group {
  std::int64_t time_us = 0;
  std::size_t first = 0, end = 0;  // note range
  std::size_t top = 0;             // highest note
  double strength = 0;             // for the beat tracker: chords and long notes mark beats
  double mean_velocity = 0;
  int max_velocity = 0;
};

struct Input {
  std::vector<Note> notes;                    // sorted by (onset, pitch)
  std::vector<std::int64_t> sounding_end_us;  // release, extended by the pedal
  std::vector<Group> groups;
  std::int64_t start_us = 0;           // first onset
  std::int64_t end_us = 0;             // last key release
  std::int64_t sounding_until_us = 0;  // last sounding end
  double held_s = 0;                   // time with at least one key down
  double pedal_down_s = 0;             // within [start, end]
};

void check_time(std::int64_t time_us, const char* what, std::size_t index) {
  if (time_us > kMaxTimeUs || time_us < -kMaxTimeUs) {
    throw std::invalid_argument("theory features: " + std::string(what) + " " + std::to_string(index) +
                                " has time " + std::to_string(time_us) + " us, beyond +-2^52 us");
  }
}

void check_option(const char* name, std::int64_t value, std::int64_t low, std::int64_t high) {
  if (value < low || value > high) {
    throw std::invalid_argument("theory features: " + std::string(name) + " = " + std::to_string(value) +
                                " is outside " + std::to_string(low) + ".." + std::to_string(high));
  }
}

// The option limits keep the work linear in the input: windows, beats and
// onset groups can never be packed denser than these.
void validate(const Performance& performance, const TheoryOptions& options) {
  check_option("onset_group_us", options.onset_group_us, 1'000, kMaxPeriodUs);
  check_option("accent_margin", options.accent_margin, 1, 127);
  check_option("accent_window_us", options.accent_window_us, 0, kMaxSpanUs);
  check_option("chord_window_beats", options.chord_window_beats, 1, 64);
  check_option("chord_window_us", options.chord_window_us, kMinBeatUs, kMaxSpanUs);
  if (options.beat_period_us != 0)
    check_option("beat_period_us", options.beat_period_us, kMinBeatUs, kMaxGivenPeriodUs);
  if (options.beats_us.size() == 1)
    throw std::invalid_argument("theory features: beats_us needs at least 2 beats");
  for (std::size_t i = 0; i < options.beats_us.size(); ++i) {
    check_time(options.beats_us[i], "beat", i);
    if (i > 0 && options.beats_us[i] - options.beats_us[i - 1] < kMinBeatUs) {
      throw std::invalid_argument("theory features: beats_us[" + std::to_string(i) +
                                  "] = " + std::to_string(options.beats_us[i]) + " us is not " +
                                  std::to_string(kMinBeatUs) + " us or more after the beat before it");
    }
  }
  for (std::size_t i = 0; i < performance.notes.size(); ++i) {
    const Note& n = performance.notes[i];
    const auto fail = [i](const std::string& what) {
      return std::invalid_argument("theory features: note " + std::to_string(i) + " has " + what);
    };
    if (n.pitch > 127) throw fail("pitch " + std::to_string(n.pitch) + " (> 127)");
    if (n.velocity > 127) throw fail("velocity " + std::to_string(n.velocity) + " (> 127)");
    if (n.duration_us < 0) throw fail("negative duration " + std::to_string(n.duration_us) + " us");
    check_time(n.onset_us, "note", i);
    check_time(n.duration_us, "note", i);
  }
  for (std::size_t i = 0; i < performance.pedals.size(); ++i) {
    check_time(performance.pedals[i].time_us, "pedal change", i);
  }
}

using Interval = std::pair<std::int64_t, std::int64_t>;

struct PedalUse {
  std::array<std::vector<Interval>, 16> down;  // per channel, [press, release) in time order
  double down_s = 0;                           // with any channel down, within [start, end]
};

// From pedal changes in time order; a pedal never released is down for good.
PedalUse pedal_use(const std::vector<PedalChange>& pedals, std::int64_t start_us, std::int64_t end_us) {
  PedalUse use;
  std::array<std::int64_t, 16> down_since{};
  std::uint32_t down_mask = 0;
  std::int64_t any_down_since = 0;
  const auto add_any_down = [&](std::int64_t until_us) {
    use.down_s +=
        seconds(std::max<std::int64_t>(0, std::min(until_us, end_us) - std::max(any_down_since, start_us)));
  };
  for (const PedalChange& change : pedals) {
    const std::size_t ch = change.channel & 15U;
    const std::uint32_t bit = 1U << ch;
    if (change.down == ((down_mask & bit) != 0)) continue;
    if (change.down) {
      if (down_mask == 0) any_down_since = change.time_us;
      down_mask |= bit;
      down_since[ch] = change.time_us;
    } else {
      down_mask &= ~bit;
      use.down[ch].emplace_back(down_since[ch], change.time_us);
      if (down_mask == 0) add_any_down(change.time_us);
    }
  }
  for (std::size_t ch = 0; ch < 16; ++ch) {
    if ((down_mask & (1U << ch)) != 0) use.down[ch].emplace_back(down_since[ch], kMaxTimeUs * 2);
  }
  if (down_mask != 0) add_any_down(end_us);
  return use;
}

Input prepare(const Performance& performance, const TheoryOptions& options) {
  validate(performance, options);
  Input in;
  in.notes = performance.notes;
  std::sort(in.notes.begin(), in.notes.end(), [](const Note& a, const Note& b) {
    return std::tie(a.onset_us, a.pitch) < std::tie(b.onset_us, b.pitch);
  });
  if (in.notes.empty()) return in;

  in.start_us = in.notes.front().onset_us;
  in.end_us = in.start_us;
  for (const Note& n : in.notes) in.end_us = std::max(in.end_us, n.offset_us());
  in.sounding_until_us = in.end_us;
  if (in.end_us - in.start_us > kMaxSpanUs) {
    throw std::invalid_argument("theory features: the notes span " +
                                std::to_string(seconds(in.end_us - in.start_us) / 3600) +
                                " h, more than the 24 h accepted");
  }

  const auto by_time = [](const PedalChange& a, const PedalChange& b) { return a.time_us < b.time_us; };
  PedalUse pedal;
  if (std::is_sorted(performance.pedals.begin(), performance.pedals.end(), by_time)) {
    pedal = pedal_use(performance.pedals, in.start_us, in.end_us);
  } else {
    std::vector<PedalChange> pedals = performance.pedals;
    std::stable_sort(pedals.begin(), pedals.end(), by_time);
    pedal = pedal_use(pedals, in.start_us, in.end_us);
  }
  in.pedal_down_s = pedal.down_s;
  in.sounding_end_us.reserve(in.notes.size());
  for (const Note& n : in.notes) {
    const std::vector<Interval>& held = pedal.down[n.channel & 15U];
    const std::int64_t release = n.offset_us();
    // The last interval starting at or before the release.
    auto it = std::upper_bound(held.begin(), held.end(), release,
                               [](std::int64_t t, const Interval& interval) { return t < interval.first; });
    std::int64_t end = release;
    if (it != held.begin() && std::prev(it)->second > release) {
      end = std::min(std::prev(it)->second, release + kPedalRingUs);
    }
    end = std::min(end, n.onset_us + kMaxSoundingUs);
    in.sounding_end_us.push_back(end);
    in.sounding_until_us = std::max(in.sounding_until_us, end);
  }
  std::int64_t held_until = std::numeric_limits<std::int64_t>::min();
  for (const Note& n : in.notes) {
    const std::int64_t from = std::max(n.onset_us, held_until);
    if (n.offset_us() > from) in.held_s += seconds(n.offset_us() - from);
    held_until = std::max(held_until, n.offset_us());
  }

  for (std::size_t i = 0; i < in.notes.size();) {
    Group g;
    g.time_us = in.notes[i].onset_us;
    g.first = i;
    g.top = i;
    double velocity_sum = 0;
    for (; i < in.notes.size() && in.notes[i].onset_us - g.time_us <= options.onset_group_us; ++i) {
      const Note& n = in.notes[i];
      if (n.pitch >= in.notes[g.top].pitch) g.top = i;
      g.strength += 0.5 + 0.5 * std::min(seconds(n.duration_us), 1.0);
      velocity_sum += n.velocity;
      g.max_velocity = std::max<int>(g.max_velocity, n.velocity);
    }
    g.end = i;
    g.mean_velocity = velocity_sum / static_cast<double>(g.end - g.first);
    in.groups.push_back(g);
  }
  return in;
}

// --- beat grid -------------------------------------------------------------

struct BeatGrid {
  std::vector<std::vector<std::int64_t>> segments;  // beat times; no beat interval spans two segments
  double period_us = 0;
};

// The period whose multiples and halves best explain the lags between onsets,
// weighted by a log-normal tempo prior (Ellis 2007, as a pairwise lag histogram).
double estimate_period_us(const std::vector<Group>& groups) {
  const double max_lag_us = 2.0 * static_cast<double>(kMaxPeriodUs);
  const auto bins = static_cast<std::size_t>(max_lag_us / kLagBinUs) + 1;
  std::vector<double> lags(bins, 0.0);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    for (std::size_t j = i + 1; j < groups.size(); ++j) {
      const auto lag = static_cast<double>(groups[j].time_us - groups[i].time_us);
      if (lag > max_lag_us) break;
      lags[static_cast<std::size_t>(std::lround(lag / kLagBinUs))] += groups[i].strength * groups[j].strength;
    }
  }
  const auto radius = static_cast<std::ptrdiff_t>(3 * kLagSmoothingBins);
  std::vector<double> smooth(bins, 0.0);
  for (std::size_t b = 0; b < bins; ++b) {
    if (lags[b] == 0) continue;
    for (std::ptrdiff_t d = -radius; d <= radius; ++d) {
      const auto target = static_cast<std::ptrdiff_t>(b) + d;
      if (target < 0 || target >= static_cast<std::ptrdiff_t>(bins)) continue;
      const double z = static_cast<double>(d) / kLagSmoothingBins;
      smooth[static_cast<std::size_t>(target)] += lags[b] * std::exp(-0.5 * z * z);
    }
  }
  const auto first = static_cast<std::size_t>(static_cast<double>(kMinPeriodUs) / kLagBinUs);
  const auto last = static_cast<std::size_t>(static_cast<double>(kMaxPeriodUs) / kLagBinUs);
  std::vector<double> score(last + 2, 0.0);
  for (std::size_t p = first - 1; p <= last + 1; ++p) {
    const double octaves =
        std::log2(static_cast<double>(p) * kLagBinUs / kTempoPriorCentreUs) / kTempoPriorOctaves;
    // A beat recurs at twice its period and is usually split in two; the split
    // term prefers binary meter over grouping an even pulse in threes.
    score[p] = (smooth[p] + 0.5 * smooth[std::min(2 * p, bins - 1)] + 0.5 * smooth[p / 2]) *
               std::exp(-0.5 * octaves * octaves);
  }
  std::size_t best = first;
  for (std::size_t p = first; p <= last; ++p) {
    if (score[p] > score[best]) best = p;
  }
  if (score[best] <= 0) return 0;
  // Parabolic interpolation between bins.
  const double left = score[best - 1], mid = score[best], right = score[best + 1];
  const double curvature = left - 2 * mid + right;
  const double shift = curvature < 0 ? std::clamp(0.5 * (left - right) / curvature, -0.5, 0.5) : 0.0;
  return (static_cast<double>(best) + shift) * kLagBinUs;
}

// Dynamic-programming beat tracking (Ellis 2007) over one stretch of onsets:
// beats land on strong onsets while their spacing stays close to the period.
std::vector<std::int64_t> track_segment(std::span<const Group> groups, double period_us) {
  const std::int64_t origin_us = groups.front().time_us;
  const auto frames = static_cast<std::size_t>((groups.back().time_us - origin_us) / kFrameUs) + 1;
  std::vector<double> envelope(frames, 0.0);
  const auto radius = static_cast<std::ptrdiff_t>(3 * kEnvelopeSmoothingFrames);
  for (const Group& g : groups) {
    const auto centre = static_cast<std::ptrdiff_t>((g.time_us - origin_us + kFrameUs / 2) / kFrameUs);
    for (std::ptrdiff_t d = -radius; d <= radius; ++d) {
      const std::ptrdiff_t f = centre + d;
      if (f < 0 || f >= static_cast<std::ptrdiff_t>(frames)) continue;
      const double z = static_cast<double>(d) / kEnvelopeSmoothingFrames;
      envelope[static_cast<std::size_t>(f)] += g.strength * std::exp(-0.5 * z * z);
    }
  }
  Moments moments;
  for (double e : envelope) moments.add(e);
  const double scale = moments.stddev() > 0 ? moments.stddev() : 1.0;
  for (double& e : envelope) e /= scale;

  const double period_frames = period_us / static_cast<double>(kFrameUs);
  const auto shortest = std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(period_frames / 2)));
  const auto longest = static_cast<std::size_t>(std::lround(2 * period_frames));
  std::vector<double> penalty(longest + 1, 0.0);
  for (std::size_t d = shortest; d <= longest; ++d) {
    const double l = std::log(static_cast<double>(d) / period_frames);
    penalty[d] = kTightness * l * l;
  }
  std::vector<double> score(frames, 0.0);
  std::vector<std::size_t> previous(frames, kNone);
  for (std::size_t f = 0; f < frames; ++f) {
    double best = -std::numeric_limits<double>::infinity();
    std::size_t best_from = kNone;
    for (std::size_t d = shortest; d <= longest && d <= f; ++d) {
      const double candidate = score[f - d] - penalty[d];
      if (candidate > best) {
        best = candidate;
        best_from = f - d;
      }
    }
    // A chain may start afresh within the first two periods; later, every
    // frame has a predecessor in range.
    if (f < longest && best < 0) best_from = kNone;
    score[f] = envelope[f] + (best_from == kNone ? 0.0 : best);
    previous[f] = best_from;
  }
  std::size_t last = frames - 1;
  for (std::size_t f = frames > longest ? frames - longest : 0; f < frames; ++f) {
    if (score[f] > score[last] || (score[f] == score[last] && envelope[f] > envelope[last])) last = f;
  }
  std::vector<std::int64_t> beats;
  for (std::size_t f = last; f != kNone; f = previous[f]) {
    beats.push_back(origin_us + static_cast<std::int64_t>(f) * kFrameUs);
  }
  std::reverse(beats.begin(), beats.end());
  return beats;
}

BeatGrid find_beats(const std::vector<Group>& groups, const TheoryOptions& options) {
  BeatGrid grid;
  if (!options.beats_us.empty()) {
    const auto& beats = options.beats_us;
    grid.segments.push_back(beats);
    grid.period_us =
        static_cast<double>(beats.back() - beats.front()) / static_cast<double>(beats.size() - 1);
    return grid;
  }
  if (groups.size() < kMinGroupsToTrack) return grid;
  grid.period_us =
      options.beat_period_us > 0 ? static_cast<double>(options.beat_period_us) : estimate_period_us(groups);
  if (grid.period_us < static_cast<double>(kFrameUs)) return grid;
  for (std::size_t begin = 0; begin < groups.size();) {
    std::size_t end = begin + 1;
    while (end < groups.size() && groups[end].time_us - groups[end - 1].time_us <= kSegmentGapUs) ++end;
    const std::span<const Group> segment(groups.data() + begin, end - begin);
    const auto span_us = static_cast<double>(segment.back().time_us - segment.front().time_us);
    if (segment.size() >= kMinGroupsToTrack && span_us >= 2 * grid.period_us) {
      std::vector<std::int64_t> beats = track_segment(segment, grid.period_us);
      if (beats.size() >= 2) grid.segments.push_back(std::move(beats));
    }
    begin = end;
  }
  return grid;
}

// Where each onset group falls on the beat grid.
struct Placement {
  std::size_t segment = kNone;  // kNone: outside the grid
  std::size_t beat = 0;         // the beat at or before it
  double fraction = 0;          // of the beat interval after that beat
  bool on_beat = false;
};

struct PlacedGrid {
  std::vector<Placement> groups;
  std::vector<std::vector<std::size_t>> beat_group;  // per segment and beat: the first group on it, or kNone
};

PlacedGrid place_groups(const std::vector<Group>& groups, const BeatGrid& grid) {
  PlacedGrid placed;
  placed.groups.resize(groups.size());
  const double tol = kOnBeatTolerance * grid.period_us;
  std::size_t g = 0;
  for (std::size_t s = 0; s < grid.segments.size(); ++s) {
    const auto& beats = grid.segments[s];
    placed.beat_group.emplace_back(beats.size(), kNone);
    while (g < groups.size() &&
           static_cast<double>(groups[g].time_us) < static_cast<double>(beats.front()) - tol)
      ++g;
    std::size_t k = 0;
    for (; g < groups.size() &&
           static_cast<double>(groups[g].time_us) <= static_cast<double>(beats.back()) + tol;
         ++g) {
      const auto t = static_cast<double>(groups[g].time_us);
      while (k + 1 < beats.size() && static_cast<double>(beats[k + 1]) - tol <= t) ++k;
      Placement& p = placed.groups[g];
      p.segment = s;
      p.beat = k;
      const double interval =
          k + 1 < beats.size() ? static_cast<double>(beats[k + 1] - beats[k]) : grid.period_us;
      p.fraction = (t - static_cast<double>(beats[k])) / interval;
      p.on_beat = std::abs(t - static_cast<double>(beats[k])) <= tol;
      if (p.on_beat && placed.beat_group[s][k] == kNone) placed.beat_group[s][k] = g;
    }
  }
  return placed;
}

std::size_t beat_position_bin(double fraction) {
  const long bin = std::lround(fraction * 12) % 12;
  return static_cast<std::size_t>((bin + 12) % 12);
}

// --- harmony ---------------------------------------------------------------

struct Key {
  int tonic = -1;
  KeyMode mode = KeyMode::kNone;
  double correlation = 0;
  double clarity = 0;
  std::array<double, 24> correlations{};  // major C..B, minor C..B
};

double pearson(const std::array<double, 12>& x, const std::array<double, 12>& profile, std::size_t tonic) {
  Moments mx, my;
  double cross = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    const double y = profile[(i + 12 - tonic) % 12];
    mx.add(x[i]);
    my.add(y);
    cross += x[i] * y;
  }
  const double denominator = mx.stddev() * my.stddev();
  if (denominator <= 0) return 0;
  return (cross / 12 - mx.mean() * my.mean()) / denominator;
}

Key find_key(const std::array<double, 12>& pitch_class) {
  Key key;
  for (std::size_t tonic = 0; tonic < 12; ++tonic) {
    key.correlations[tonic] = pearson(pitch_class, kMajorProfile, tonic);
    key.correlations[12 + tonic] = pearson(pitch_class, kMinorProfile, tonic);
  }
  std::size_t best = 0, second = kNone;
  for (std::size_t i = 1; i < 24; ++i) {
    if (key.correlations[i] > key.correlations[best]) {
      second = best;
      best = i;
    } else if (second == kNone || key.correlations[i] > key.correlations[second]) {
      second = i;
    }
  }
  if (key.correlations[best] <= 0) return key;
  key.tonic = static_cast<int>(best % 12);
  key.mode = best < 12 ? KeyMode::kMajor : KeyMode::kMinor;
  key.correlation = key.correlations[best];
  key.clarity = key.correlations[best] - key.correlations[second];
  return key;
}

// The best chord template for a chroma vector (cosine similarity).
ChordEstimate best_chord(const std::array<double, 12>& chroma, int bass_pc) {
  double norm = 0;
  for (double c : chroma) norm += c * c;
  norm = std::sqrt(norm);
  ChordEstimate best;
  double best_score = -1;
  for (const ChordTemplate& t : kTemplates) {
    const double template_norm = std::sqrt(static_cast<double>(tone_count(t)));
    for (std::size_t root = 0; root < 12; ++root) {
      double dot = 0;
      for (std::size_t i = 0; i < 12; ++i) {
        if (t.tones[i]) dot += chroma[(root + i) % 12];
      }
      const double cosine = norm > 0 ? dot / (norm * template_norm) : 0;
      const double score = cosine + (static_cast<int>(root) == bass_pc ? kBassRootBonus : 0.0);
      if (score > best_score) {
        best_score = score;
        best.chord = {static_cast<int>(root), t.type};
        best.score = to_float(cosine);
      }
    }
  }
  return best;
}

// Everything the harmony vector is made from; filled from notes or from a chord list.
struct HarmonySource {
  std::array<double, 12> pitch_class{};  // sounding seconds per pitch class
  std::vector<ChordEstimate> windows;    // windows with a chord, in time order
  double span_s = 0;                     // the stretch the windows cover
  double polyphony = 0;                  // mean keys held while any is held
};

struct HarmonySummary {
  Key key;
  double change_rate = 0;  // per window boundary
};

HarmonySummary fill_harmony(const HarmonySource& source, std::span<float> out) {
  namespace hi = harmony_index;
  HarmonySummary summary;
  const Key& key = summary.key = find_key(source.pitch_class);
  write_distribution(out, hi::kPitchClass, source.pitch_class);
  for (std::size_t i = 0; i < 24; ++i) out[hi::kMajorKeys + i] = clamp_signed(key.correlations[i]);

  const auto tonic = static_cast<std::size_t>(std::max(key.tonic, 0));
  std::array<double, 12> from_tonic{};
  double outside_scale = 0, total = 0;
  for (std::size_t pc = 0; pc < 12; ++pc) {
    const std::size_t degree = (pc + 12 - tonic) % 12;
    from_tonic[degree] = source.pitch_class[pc];
    total += source.pitch_class[pc];
    const bool in_scale = key.mode == KeyMode::kMinor ? kMinorScale[degree] : kMajorScale[degree];
    if (!in_scale) outside_scale += source.pitch_class[pc];
  }
  if (key.mode != KeyMode::kNone) write_distribution(out, hi::kPitchClassFromTonic, from_tonic);

  std::array<double, kChordTypeCount> types{};
  std::array<double, 12> motion{};
  std::array<double, 48> root_function{};
  Moments chord_score;
  double voiced_s = 0;
  std::size_t changes = 0;
  for (std::size_t i = 0; i < source.windows.size(); ++i) {
    const ChordEstimate& w = source.windows[i];
    const double weight = seconds(w.end_us - w.start_us);
    voiced_s += weight;
    const ChordTemplate& t = template_of(w.chord.type);
    types[static_cast<std::size_t>(w.chord.type)] += weight;
    chord_score.add(w.score, weight);
    if (key.mode != KeyMode::kNone) {
      const auto degree = (static_cast<std::size_t>(w.chord.root) + 12 - tonic) % 12;
      root_function[4 * degree + static_cast<std::size_t>(t.family)] += weight;
    }
    if (i > 0 && w.chord != source.windows[i - 1].chord) {
      ++changes;
      motion[static_cast<std::size_t>((w.chord.root - source.windows[i - 1].chord.root + 12) % 12)] += 1;
    }
  }
  write_distribution(out, hi::kChordTypes, types);
  write_distribution(out, hi::kRootMotion, motion);
  write_distribution(out, hi::kRootFunction, root_function);
  if (source.windows.size() > 1) {
    summary.change_rate = static_cast<double>(changes) / static_cast<double>(source.windows.size() - 1);
  }

  std::size_t s = hi::kScalars;
  out[s++] = key.mode == KeyMode::kMajor ? 1.0F : (key.mode == KeyMode::kMinor ? -1.0F : 0.0F);
  out[s++] = clamp_signed(key.correlation);
  out[s++] = clamp_unit(key.clarity);
  out[s++] = to_float(summary.change_rate);
  out[s++] = to_float(squash(voiced_s > 0 ? static_cast<double>(changes) / voiced_s : 0, 1));
  out[s++] = clamp_unit(chord_score.mean());
  out[s++] = to_float(normalised_entropy(source.pitch_class));
  out[s++] = to_float(normalised_entropy(types));
  out[s++] = key.mode != KeyMode::kNone && total > 0 ? to_float(outside_scale / total) : 0.0F;
  out[s++] = to_float(squash(source.polyphony, 4));
  out[s++] = source.span_s > 0 ? clamp_unit(voiced_s / source.span_s) : 0.0F;
  return summary;
}

// Joins adjacent windows with the same chord; windows have positive length.
std::vector<ChordEstimate> merge_runs(const std::vector<ChordEstimate>& windows) {
  std::vector<ChordEstimate> runs;
  std::vector<double> score_us;  // per run: score x length
  for (const ChordEstimate& w : windows) {
    if (runs.empty() || runs.back().chord != w.chord || runs.back().end_us != w.start_us) {
      runs.push_back(w);
      score_us.push_back(0);
    }
    runs.back().end_us = w.end_us;
    score_us.back() += w.score * static_cast<double>(w.end_us - w.start_us);
  }
  for (std::size_t i = 0; i < runs.size(); ++i) {
    runs[i].score = to_float(score_us[i] / static_cast<double>(runs[i].end_us - runs[i].start_us));
  }
  return runs;
}

struct Window {
  std::int64_t start_us, end_us;
};

// Chord windows: chord_window_beats beats where there is a beat grid, fixed
// chord_window_us elsewhere, covering [start, end).
std::vector<Window> chord_windows(const BeatGrid& grid, std::int64_t start_us, std::int64_t end_us,
                                  const TheoryOptions& options) {
  std::vector<Window> windows;
  std::int64_t cursor = start_us;
  auto fill_to = [&](std::int64_t until_us) {
    while (cursor < until_us) {
      const std::int64_t next = std::min(until_us, cursor + options.chord_window_us);
      windows.push_back({cursor, next});
      cursor = next;
    }
  };
  const auto step = static_cast<std::size_t>(options.chord_window_beats);
  for (const auto& beats : grid.segments) {
    fill_to(beats.front());
    for (std::size_t k = 0; k + 1 < beats.size(); k += step) {
      const std::int64_t until = beats[std::min(k + step, beats.size() - 1)];
      if (until <= cursor) continue;
      windows.push_back({std::max(beats[k], cursor), until});
      cursor = until;
    }
  }
  fill_to(end_us);
  return windows;
}

// --- per-component results the others need ---------------------------------

struct Melody {
  std::vector<std::size_t> notes;  // indices into Input::notes
  std::vector<bool> is_melody;     // per note
};

Melody skyline(const Input& in, const TheoryOptions& options) {
  Melody melody;
  melody.is_melody.assign(in.notes.size(), false);
  for (const Group& g : in.groups) {
    const Note& top = in.notes[g.top];
    if (!melody.notes.empty()) {
      const Note& held = in.notes[melody.notes.back()];
      if (held.offset_us() > g.time_us + options.onset_group_us && held.pitch > top.pitch) continue;
    }
    melody.notes.push_back(g.top);
    melody.is_melody[g.top] = true;
  }
  return melody;
}

void compute_harmony(const Input& in, const BeatGrid& grid, const TheoryOptions& options, TheoryFeatures& out,
                     HarmonySource& source) {
  const std::int64_t end_us = in.sounding_until_us;
  const std::vector<Window> windows = chord_windows(grid, in.start_us, end_us, options);
  std::vector<std::array<double, 12>> chroma(windows.size());
  std::vector<int> bass(windows.size(), 128);
  double sounding_s = 0;
  std::size_t first_window = 0;
  for (std::size_t i = 0; i < in.notes.size(); ++i) {
    const Note& n = in.notes[i];
    const std::int64_t end = in.sounding_end_us[i];
    source.pitch_class[pitch_class(n.pitch)] += seconds(end - n.onset_us);
    sounding_s += seconds(n.duration_us);
    while (first_window < windows.size() && windows[first_window].end_us <= n.onset_us) ++first_window;
    for (std::size_t w = first_window; w < windows.size() && windows[w].start_us < end; ++w) {
      const std::int64_t overlap =
          std::min(end, windows[w].end_us) - std::max(n.onset_us, windows[w].start_us);
      if (overlap <= 0) continue;
      chroma[w][pitch_class(n.pitch)] += seconds(overlap);
      if (overlap >= std::min(kBassMinOverlapUs, end - n.onset_us)) bass[w] = std::min<int>(bass[w], n.pitch);
    }
  }
  for (std::size_t w = 0; w < windows.size(); ++w) {
    if (bass[w] > 127) continue;  // silent
    ChordEstimate estimate = best_chord(chroma[w], static_cast<int>(pitch_class(bass[w])));
    estimate.start_us = windows[w].start_us;
    estimate.end_us = windows[w].end_us;
    source.windows.push_back(estimate);
  }
  source.span_s = seconds(end_us - in.start_us);
  source.polyphony = in.held_s > 0 ? sounding_s / in.held_s : 0;

  const HarmonySummary summary = fill_harmony(source, out.harmony);
  out.key_tonic = summary.key.tonic;
  out.key_mode = summary.key.mode;
  out.key_correlation = to_float(summary.key.correlation);
  out.chord_change_rate = to_float(summary.change_rate);
  out.chords = merge_runs(source.windows);
}

void compute_melody(const Input& in, const Melody& melody, const std::vector<ChordEstimate>& windows,
                    TheoryFeatures& out) {
  namespace mi = melody_index;
  std::span<float> v(out.melody);
  const std::vector<std::size_t>& m = melody.notes;
  if (m.empty()) return;
  auto pitch = [&](std::size_t k) { return static_cast<int>(in.notes[m[k]].pitch); };

  std::array<double, 25> intervals{}, two_step{};
  std::array<double, 3> contour{};
  std::array<double, 9> bigrams{};
  std::array<double, 12> pcs{}, from_tonic{}, over_root{};
  std::array<double, 16> reg{};
  Moments pitches, abs_interval, articulation, runs;
  int lowest = 127, highest = 0;
  double steps = 0, leaps = 0, chromatic = 0, chord_tones = 0, over_chord = 0;
  std::size_t run = 0, window = 0;
  auto direction = [](int interval) -> std::size_t { return interval > 0 ? 0 : (interval < 0 ? 1 : 2); };
  for (std::size_t k = 0; k < m.size(); ++k) {
    const int p = pitch(k);
    const Note& n = in.notes[m[k]];
    pitches.add(p);
    lowest = std::min(lowest, p);
    highest = std::max(highest, p);
    pcs[pitch_class(p)] += 1;
    if (out.key_tonic >= 0) from_tonic[pitch_class(p - out.key_tonic)] += 1;
    reg[std::min<std::size_t>(15, static_cast<std::size_t>(std::max(0, p - 24) / 6))] += 1;
    while (window < windows.size() && windows[window].end_us <= n.onset_us) ++window;
    if (window < windows.size() && windows[window].start_us <= n.onset_us) {
      const Chord& chord = windows[window].chord;
      const std::size_t rel = pitch_class(p - chord.root);
      over_root[rel] += 1;
      over_chord += 1;
      if (template_of(chord.type).tones[rel]) chord_tones += 1;
    }
    if (k + 1 < m.size()) {
      const int interval = pitch(k + 1) - p;
      intervals[static_cast<std::size_t>(std::clamp(interval, -12, 12) + 12)] += 1;
      contour[direction(interval)] += 1;
      abs_interval.add(std::abs(interval));
      if (std::abs(interval) >= 1 && std::abs(interval) <= 2) steps += 1;
      if (std::abs(interval) >= 5) leaps += 1;
      if (std::abs(interval) == 1) chromatic += 1;
      const auto ioi = static_cast<double>(in.notes[m[k + 1]].onset_us - n.onset_us);
      if (ioi > 0) articulation.add(std::min(static_cast<double>(n.duration_us) / ioi, 1.0));
      if (k + 2 < m.size()) {
        const int next = pitch(k + 2) - pitch(k + 1);
        bigrams[3 * direction(interval) + direction(next)] += 1;
        two_step[static_cast<std::size_t>(std::clamp(pitch(k + 2) - p, -12, 12) + 12)] += 1;
        ++run;
        if (direction(next) != direction(interval)) {
          runs.add(static_cast<double>(run));
          run = 0;
        }
      } else {
        runs.add(static_cast<double>(run + 1));
      }
    }
  }
  write_distribution(v, mi::kIntervals, intervals);
  write_distribution(v, mi::kContour, contour);
  write_distribution(v, mi::kContourBigrams, bigrams);
  write_distribution(v, mi::kPitchClass, pcs);
  write_distribution(v, mi::kPitchClassFromTonic, from_tonic);
  write_distribution(v, mi::kRegister, reg);
  write_distribution(v, mi::kOverChordRoot, over_root);
  write_distribution(v, mi::kTwoStepIntervals, two_step);

  const double interval_count = static_cast<double>(m.size() - 1);
  const double span_s = seconds(in.end_us - in.start_us);
  std::size_t s = mi::kScalars;
  v[s++] = clamp_unit((highest - lowest) / 87.0);
  v[s++] = clamp_unit((pitches.mean() - 21) / 87.0);
  v[s++] = to_float(squash(pitches.stddev(), 6));
  v[s++] = clamp_unit((lowest - 21) / 87.0);
  v[s++] = clamp_unit((highest - 21) / 87.0);
  v[s++] = to_float(squash(abs_interval.mean(), 3));
  v[s++] = interval_count > 0 ? to_float(steps / interval_count) : 0.0F;
  v[s++] = interval_count > 0 ? to_float(leaps / interval_count) : 0.0F;
  v[s++] = interval_count > 0 ? to_float(chromatic / interval_count) : 0.0F;
  v[s++] = span_s > 0 ? to_float(squash(static_cast<double>(m.size()) / span_s, 4)) : 0.0F;
  v[s++] = to_float(static_cast<double>(m.size()) / static_cast<double>(in.notes.size()));
  v[s++] = clamp_unit(articulation.mean());
  v[s++] = to_float(squash(runs.mean(), 2));
  v[s++] = over_chord > 0 ? to_float(chord_tones / over_chord) : 0.0F;

  out.melody_range_semitones = to_float(highest - lowest);
  out.melody_mean_pitch = to_float(pitches.mean());
  if (interval_count > 0) {
    out.contour_up = to_float(contour[0] / interval_count);
    out.contour_down = to_float(contour[1] / interval_count);
    out.contour_same = to_float(contour[2] / interval_count);
  }
}

void compute_rhythm(const Input& in, const BeatGrid& grid, const PlacedGrid& placed,
                    const TheoryOptions& options, TheoryFeatures& out) {
  namespace ri = rhythm_index;
  std::span<float> v(out.rhythm);
  const auto& groups = in.groups;
  if (groups.empty()) return;
  const double span_s = seconds(in.end_us - in.start_us);

  std::array<double, 16> ioi{};
  Moments ioi_moments;
  for (std::size_t g = 0; g + 1 < groups.size(); ++g) {
    const double ioi_s = seconds(groups[g + 1].time_us - groups[g].time_us);
    ioi[clipped_bin(std::round((std::log2(ioi_s) + 5) * 2), 16)] += 1;
    ioi_moments.add(ioi_s);
  }
  write_distribution(v, ri::kIoi, ioi);

  // On the beat grid: beat-relative IOIs, positions, swing, syncopation.
  std::array<double, 24> ioi_beats{};
  std::array<double, 12> positions{};
  std::vector<double> swing_log_ratios;
  double syncopation = 0, placed_count = 0, off_beat = 0;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Placement& p = placed.groups[g];
    if (p.segment == kNone) continue;
    const auto& beats = grid.segments[p.segment];
    const auto& on_beat = placed.beat_group[p.segment];
    placed_count += 1;
    positions[beat_position_bin(p.fraction)] += 1;
    const double beat_us =
        p.beat + 1 < beats.size() ? static_cast<double>(beats[p.beat + 1] - beats[p.beat]) : grid.period_us;
    if (g + 1 < groups.size() && placed.groups[g + 1].segment == p.segment) {
      const double ratio = static_cast<double>(groups[g + 1].time_us - groups[g].time_us) / beat_us;
      ioi_beats[clipped_bin(std::round((std::log2(ratio) + 4) * 4), 24)] += 1;
    }
    if (p.on_beat) continue;
    off_beat += 1;
    if (p.beat + 1 >= beats.size()) continue;
    // Syncopation: a weak onset louder than the beat after it, or the last
    // onset before a beat that has none (an anticipation held over the beat).
    const std::size_t next_beat_group = on_beat[p.beat + 1];
    const bool last_before_beat = g + 1 >= groups.size() || placed.groups[g + 1].segment != p.segment ||
                                  placed.groups[g + 1].beat != p.beat || placed.groups[g + 1].on_beat;
    double contribution = 0;
    if (next_beat_group == kNone) {
      if (last_before_beat) contribution = 1;
    } else {
      const double louder = groups[g].max_velocity - groups[next_beat_group].max_velocity;
      contribution = std::clamp(louder / (2.0 * options.accent_margin), 0.0, 1.0);
    }
    syncopation += contribution;
  }
  write_distribution(v, ri::kIoiInBeats, ioi_beats);
  write_distribution(v, ri::kBeatPosition, positions);

  // Swing: beat intervals with onsets on both beats and one between them, or
  // three with the second in the middle (the tracker took two beats as one).
  const auto add_pair = [&](std::size_t a, std::size_t middle, std::size_t b) {
    const auto first = static_cast<double>(groups[middle].time_us - groups[a].time_us);
    const auto second = static_cast<double>(groups[b].time_us - groups[middle].time_us);
    const double ratio = first / second;
    if (ratio < 0.25 || ratio > 4) return false;
    swing_log_ratios.push_back(std::log2(ratio));
    return true;
  };
  std::size_t beat_intervals = 0, swung_intervals = 0, beats_hit = 0, beat_total = 0;
  Moments log_interval;
  for (std::size_t s = 0; s < grid.segments.size(); ++s) {
    const auto& beats = grid.segments[s];
    const auto& on_beat = placed.beat_group[s];
    beat_total += beats.size();
    for (std::size_t k = 0; k < beats.size(); ++k) {
      if (on_beat[k] != kNone) ++beats_hit;
      if (k + 1 >= beats.size()) continue;
      ++beat_intervals;
      log_interval.add(std::log2(static_cast<double>(beats[k + 1] - beats[k])));
      const std::size_t a = on_beat[k], b = on_beat[k + 1];
      if (a == kNone || b == kNone) continue;
      std::array<std::size_t, 3> inside{};
      std::size_t count = 0;
      for (std::size_t g = a + 1; g < b && count <= inside.size(); ++g) {
        if (placed.groups[g].beat != k || placed.groups[g].on_beat) continue;
        if (count < inside.size()) inside[count] = g;
        ++count;
      }
      bool swung = false;
      if (count == 1) {
        swung = add_pair(a, inside[0], b);
      } else if (count == 3 && std::abs(placed.groups[inside[1]].fraction - 0.5) < 0.15) {
        swung = add_pair(a, inside[0], inside[1]);
        swung = add_pair(inside[1], inside[2], b) || swung;
      }
      if (swung) ++swung_intervals;
    }
  }
  // The median's sign says whether the tracker put the beat on the long or the
  // short note; the ratio of long to short is its magnitude either way.
  double swing_log = 0;
  if (!swing_log_ratios.empty()) {
    const auto middle = swing_log_ratios.begin() + static_cast<std::ptrdiff_t>(swing_log_ratios.size() / 2);
    std::nth_element(swing_log_ratios.begin(), middle, swing_log_ratios.end());
    swing_log = std::abs(*middle);
    out.swing_ratio = to_float(std::exp2(swing_log));
    out.swing_pairs = swing_log_ratios.size();
  }
  out.syncopation = placed_count > 0 ? to_float(syncopation / placed_count) : 0.0F;
  out.notes_per_second = span_s > 0 ? to_float(static_cast<double>(in.notes.size()) / span_s) : 0.0F;
  out.beat_count = beat_total;
  if (beat_intervals > 0)
    out.tempo_bpm = to_float(60.0 / seconds(std::llround(std::exp2(log_interval.mean()))));

  std::size_t chords = 0;
  for (const Group& g : groups) chords += g.end - g.first >= 3 ? 1 : 0;
  const double silent_s = span_s - in.held_s;

  std::size_t s = ri::kScalars;
  v[s++] = out.swing_pairs > 0 ? clamp_signed(swing_log / 2) : 0.0F;
  v[s++] = beat_intervals > 0
               ? to_float(static_cast<double>(swung_intervals) / static_cast<double>(beat_intervals))
               : 0.0F;
  v[s++] = out.syncopation;
  v[s++] = to_float(squash(out.notes_per_second, 10));
  v[s++] = span_s > 0 ? to_float(squash(static_cast<double>(groups.size()) / span_s, 6)) : 0.0F;
  v[s++] = beat_intervals > 0 ? clamp_signed(log_interval.mean() - std::log2(500'000.0)) : 0.0F;
  v[s++] = beat_total > 0 ? to_float(static_cast<double>(beats_hit) / static_cast<double>(beat_total)) : 0.0F;
  v[s++] = ioi_moments.mean() > 0 ? to_float(squash(ioi_moments.stddev() / ioi_moments.mean(), 1)) : 0.0F;
  v[s++] = to_float(static_cast<double>(chords) / static_cast<double>(groups.size()));
  v[s++] = placed_count > 0 ? to_float(off_beat / placed_count) : 0.0F;
  v[s++] = beat_intervals > 0 ? to_float(squash(log_interval.stddev(), 0.05)) : 0.0F;
  v[s++] = span_s > 0 ? clamp_unit(silent_s / span_s) : 0.0F;
}

void compute_dynamics(const Input& in, const Melody& melody, const PlacedGrid& placed,
                      const TheoryOptions& options, TheoryFeatures& out) {
  namespace di = dynamics_index;
  std::span<float> v(out.dynamics);
  const auto& notes = in.notes;
  if (notes.empty()) return;

  std::array<double, 32> histogram{};
  std::array<double, 128> counts{};
  std::array<Moments, 12> by_position;
  std::array<Moments, 8> by_octave;
  Moments all, melody_v, accompaniment_v, deviation;
  double accents = 0;
  // Least squares of velocity against seconds since the first onset.
  double st = 0, sv = 0, stt = 0, stv = 0;
  // Local mean: a window of accent_window_us either side, by two pointers.
  std::size_t lo = 0, hi = 0;
  double window_sum = 0;
  for (std::size_t i = 0; i < notes.size(); ++i) {
    const Note& n = notes[i];
    const double vel = n.velocity;
    histogram[static_cast<std::size_t>(n.velocity >> 2)] += 1;
    counts[n.velocity] += 1;
    all.add(vel);
    (melody.is_melody[i] ? melody_v : accompaniment_v).add(vel);
    by_octave[std::min<std::size_t>(7, static_cast<std::size_t>(std::max(0, n.pitch - 24) / 12))].add(vel);
    const double t = seconds(n.onset_us - in.start_us);
    st += t;
    sv += vel;
    stt += t * t;
    stv += t * vel;
    while (hi < notes.size() && notes[hi].onset_us <= n.onset_us + options.accent_window_us) {
      window_sum += notes[hi++].velocity;
    }
    while (notes[lo].onset_us < n.onset_us - options.accent_window_us) window_sum -= notes[lo++].velocity;
    const std::size_t others = hi - lo - 1;
    if (others > 0) {
      const double local = (window_sum - vel) / static_cast<double>(others);
      deviation.add(std::abs(vel - local));
      if (vel > local + options.accent_margin) accents += 1;
    }
  }
  for (std::size_t g = 0; g < in.groups.size(); ++g) {
    const Placement& p = placed.groups[g];
    if (p.segment == kNone) continue;
    for (std::size_t i = in.groups[g].first; i < in.groups[g].end; ++i) {
      by_position[beat_position_bin(p.fraction)].add(notes[i].velocity);
    }
  }
  write_distribution(v, di::kVelocity, histogram);
  for (std::size_t b = 0; b < 12; ++b)
    v[di::kVelocityByBeatPosition + b] = to_float(by_position[b].mean() / 127);
  for (std::size_t b = 0; b < 8; ++b) v[di::kVelocityByOctave + b] = to_float(by_octave[b].mean() / 127);

  const double n_notes = static_cast<double>(notes.size());
  const double denominator = n_notes * stt - st * st;
  const double slope = denominator > 1e-9 ? (n_notes * stv - st * sv) / denominator : 0;
  const double span_s = seconds(in.end_us - in.start_us);

  // Lag-1 autocorrelation of the groups' mean velocities.
  Moments group_v;
  for (const Group& g : in.groups) group_v.add(g.mean_velocity);
  double lag1 = 0;
  if (in.groups.size() > 1 && group_v.stddev() > 0) {
    double cross = 0;
    for (std::size_t g = 0; g + 1 < in.groups.size(); ++g) {
      cross +=
          (in.groups[g].mean_velocity - group_v.mean()) * (in.groups[g + 1].mean_velocity - group_v.mean());
    }
    lag1 = cross / (static_cast<double>(in.groups.size() - 1) * group_v.stddev() * group_v.stddev());
  }

  // The dynamic arc: mean velocity per 2 s window.
  constexpr std::int64_t kArcWindowUs = 2'000'000;
  std::array<double, 128> window_means{};
  Moments current;
  std::int64_t window_end = in.start_us + kArcWindowUs;
  for (const Note& n : notes) {
    if (n.onset_us >= window_end) {
      if (current.n > 0) window_means[static_cast<std::size_t>(std::lround(current.mean()))] += 1;
      current = {};
      window_end += (n.onset_us - window_end) / kArcWindowUs * kArcWindowUs + kArcWindowUs;
    }
    current.add(n.velocity);
  }
  window_means[static_cast<std::size_t>(std::lround(current.mean()))] += 1;

  out.velocity_mean = to_float(all.mean());
  out.velocity_p5 = to_float(percentile(counts, 0.05));
  out.velocity_p95 = to_float(percentile(counts, 0.95));
  out.velocity_range = out.velocity_p95 - out.velocity_p5;
  out.accent_rate = to_float(accents / n_notes);
  out.velocity_slope_per_s = to_float(slope);

  std::size_t s = di::kScalars;
  v[s++] = to_float(all.mean() / 127);
  v[s++] = to_float(squash(all.stddev(), 16));
  v[s++] = to_float(out.velocity_range / 127);
  v[s++] = to_float(out.velocity_p5 / 127);
  v[s++] = to_float(out.velocity_p95 / 127);
  v[s++] = out.accent_rate;
  v[s++] = clamp_signed(slope * span_s / 127);
  v[s++] = melody_v.n > 0 && accompaniment_v.n > 0
               ? clamp_signed((melody_v.mean() - accompaniment_v.mean()) / 64)
               : 0.0F;
  v[s++] = to_float(squash(deviation.mean(), 8));
  v[s++] = clamp_signed(lag1);
  v[s++] = to_float((percentile(window_means, 0.9) - percentile(window_means, 0.1)) / 127);
  v[s++] = span_s > 0 ? clamp_unit(in.pedal_down_s / span_s) : 0.0F;
}

bool is_separator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '|'; }

// Parses a root ("C", "F#", "Bb") at the front of `text`; returns the number of
// characters used, 0 when there is no root.
std::size_t parse_root(std::string_view text, int& root) {
  static constexpr std::array<int, 7> kNatural = {9, 11, 0, 2, 4, 5, 7};  // A..G
  if (text.empty() || text[0] < 'A' || text[0] > 'G') return 0;
  root = kNatural[static_cast<std::size_t>(text[0] - 'A')];
  if (text.size() > 1 && (text[1] == '#' || text[1] == 'b')) {
    root = (root + (text[1] == '#' ? 1 : 11)) % 12;
    return 2;
  }
  return 1;
}

}  // namespace

TheoryFeatures compute_theory_features(const Performance& performance, const TheoryOptions& options) {
  TheoryFeatures out;
  const Input in = prepare(performance, options);
  const BeatGrid grid = find_beats(in.groups, options);
  if (in.notes.empty()) return out;
  const PlacedGrid placed = place_groups(in.groups, grid);
  const Melody melody = skyline(in, options);
  HarmonySource harmony;
  compute_harmony(in, grid, options, out, harmony);
  compute_melody(in, melody, harmony.windows, out);
  compute_rhythm(in, grid, placed, options, out);
  compute_dynamics(in, melody, placed, options, out);
  return out;
}

Chord parse_chord_symbol(std::string_view symbol) {
  const auto fail = [&](const std::string& why) {
    return std::invalid_argument("chord symbol \"" + std::string(symbol) + "\": " + why);
  };
  Chord chord;
  const std::size_t root_length = parse_root(symbol, chord.root);
  if (root_length == 0) throw fail("expected a root A-G");
  std::string_view quality = symbol.substr(root_length);
  if (const std::size_t slash = quality.find('/'); slash != std::string_view::npos) {
    const std::string_view bass = quality.substr(slash + 1);
    int bass_root = 0;
    if (bass.empty() || parse_root(bass, bass_root) != bass.size()) {
      throw fail("the bass after '/' must be a note A-G with an optional # or b");
    }
    quality = quality.substr(0, slash);
  }
  for (const QualityAlias& alias : kQualities) {
    if (alias.text == quality) {
      chord.type = alias.type;
      return chord;
    }
  }
  throw fail("unknown quality \"" + std::string(quality) + "\"");
}

std::vector<ChordEstimate> parse_chord_list(std::string_view chords, double seconds_per_chord) {
  if (!(seconds_per_chord > 0) || seconds_per_chord > seconds(kMaxSpanUs)) {
    throw std::invalid_argument("chord list: seconds per chord must be in (0, 86400], not " +
                                std::to_string(seconds_per_chord));
  }
  std::vector<ChordEstimate> list;
  std::size_t position = 0;
  while (position < chords.size()) {
    while (position < chords.size() && is_separator(chords[position])) ++position;
    const std::size_t end =
        std::find_if(chords.begin() + static_cast<std::ptrdiff_t>(position), chords.end(), is_separator) -
        chords.begin();
    if (end == position) break;
    ChordEstimate entry;
    try {
      entry.chord = parse_chord_symbol(chords.substr(position, end - position));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("chord list, symbol " + std::to_string(list.size() + 1) + ": " + e.what());
    }
    entry.start_us = std::llround(static_cast<double>(list.size()) * seconds_per_chord * kUsPerSecond);
    entry.end_us = std::llround(static_cast<double>(list.size() + 1) * seconds_per_chord * kUsPerSecond);
    entry.score = 1;
    list.push_back(entry);
    if (entry.end_us > kMaxSpanUs) throw std::invalid_argument("chord list: longer than 24 h");
    position = end;
  }
  if (list.empty())
    throw std::invalid_argument("chord list: no chord symbols in \"" + std::string(chords) + "\"");
  return list;
}

std::array<float, kHarmonySize> harmony_from_chords(std::string_view chords, double seconds_per_chord) {
  HarmonySource source;
  source.windows = parse_chord_list(chords, seconds_per_chord);
  double tones = 0;
  for (const ChordEstimate& entry : source.windows) {
    const ChordTemplate& t = template_of(entry.chord.type);
    const double length_s = seconds(entry.end_us - entry.start_us);
    for (std::size_t i = 0; i < 12; ++i) {
      if (t.tones[i]) source.pitch_class[(static_cast<std::size_t>(entry.chord.root) + i) % 12] += length_s;
    }
    tones += static_cast<double>(tone_count(t)) * length_s;
  }
  source.span_s = seconds(source.windows.back().end_us);
  source.polyphony = tones / source.span_s;
  std::array<float, kHarmonySize> harmony{};
  fill_harmony(source, harmony);
  return harmony;
}

const char* to_string(ChordType type) { return template_of(type).label; }

std::string chord_name(const Chord& chord) {
  return std::string(kPitchClassNames[pitch_class(chord.root)]) + template_of(chord.type).suffix;
}

std::string key_name(int tonic, KeyMode mode) {
  if (mode == KeyMode::kNone || tonic < 0) return "none";
  return std::string(kPitchClassNames[pitch_class(tonic)]) + (mode == KeyMode::kMajor ? " major" : " minor");
}

}  // namespace tatumflow
