// SPDX-License-Identifier: GPL-3.0-or-later
// The sample check's statistics and verdicts (sample_check.hpp, bench_stats.hpp)
// on synthetic performances and hand-made files: percentiles, clip statistics,
// corpus bands from a token cache and a MIDI folder, validity and hanging-note
// counting, and the pass rule.
#include "tatumflow/engine/sample_check.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include "../support/model_fixtures.hpp"
#include "tatumflow/engine/bench_stats.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::sample_check {
namespace {

namespace fs = std::filesystem;
using tokens::Token;

// Format 0, 480 ticks per quarter: pitches 60 and 64 start together, only 60 ends.
const std::vector<std::uint8_t> kHangingFile = {
    'M',  'T',  'h',  'd',  0, 0, 0, 6,  0, 0, 0, 1, 0x01, 0xE0,  //
    'M',  'T',  'r',  'k',  0, 0, 0, 18,                          //
    0x00, 0x90, 60,   64,                                         // note-on 60
    0x00, 0x90, 64,   64,                                         // note-on 64
    0x83, 0x60, 0x80, 60,   0,                                    // note-off 60
    0x83, 0x60, 0xFF, 0x2F, 0,                                    // end of track
};

void write_bytes(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Note note(double onset_seconds, int pitch) {
  return {static_cast<std::int64_t>(onset_seconds * 1e6), 200'000, static_cast<std::uint8_t>(pitch), 80, 0};
}

TEST(Percentile, InterpolatesBetweenClosestRanks) {
  const std::vector<double> values = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(percentile(values, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(values, 50), 3);
  EXPECT_DOUBLE_EQ(percentile(values, 100), 5);
  EXPECT_DOUBLE_EQ(percentile(values, 90), 4.6);
  EXPECT_DOUBLE_EQ(percentile({7}, 95), 7);
  const OrderStats stats = order_stats(values);
  EXPECT_DOUBLE_EQ(stats.median, 3);
  EXPECT_DOUBLE_EQ(stats.min, 1);
  EXPECT_DOUBLE_EQ(stats.p90, 4.6);
  EXPECT_THROW((void)percentile({}, 50), std::invalid_argument);
  EXPECT_THROW((void)percentile(values, 101), std::invalid_argument);
  EXPECT_THROW((void)percentile(values, -1), std::invalid_argument);
}

TEST(ClipStats, CountsNotesStartingInsideTheClip) {
  Performance performance;
  performance.notes = {note(0.5, 60), note(1.0, 72), note(9.99, 48), note(10.0, 100)};
  performance.sort();
  const ClipStats first = clip_stats(performance, 0, 10'000'000);
  EXPECT_EQ(first.notes, 3u);
  EXPECT_DOUBLE_EQ(first.pitch_range, 24);
  EXPECT_DOUBLE_EQ(first.notes_per_second, 0.3);
  const ClipStats second = clip_stats(performance, 10'000'000, 10'000'000);
  EXPECT_EQ(second.notes, 1u);
  EXPECT_DOUBLE_EQ(second.pitch_range, 0);
  EXPECT_DOUBLE_EQ(second.notes_per_second, 0.1);
  const ClipStats empty = clip_stats(performance, 20'000'000, 10'000'000);
  EXPECT_EQ(empty.notes, 0u);
  EXPECT_DOUBLE_EQ(empty.notes_per_second, 0);
  EXPECT_THROW((void)clip_stats(performance, 0, 0), std::invalid_argument);
}

TEST(ClipStats, PerformanceClipsAreWholeAndSkipSilence) {
  Performance performance;
  for (int second = 0; second < 35; ++second) {
    if (second >= 10 && second < 20) continue;  // a pause of one whole clip
    performance.notes.push_back(note(second, 40 + second));
  }
  performance.length_us = 35'000'000;
  performance.sort();
  const std::vector<ClipStats> clips = performance_clips(performance, 10'000'000);
  // [0, 10) and [20, 30); [10, 20) is silent and [30, 40) runs past the end.
  ASSERT_EQ(clips.size(), 2u);
  EXPECT_DOUBLE_EQ(clips[0].pitch_range, 9);
  EXPECT_DOUBLE_EQ(clips[0].notes_per_second, 1.0);
  EXPECT_DOUBLE_EQ(clips[1].pitch_range, 9);
}

TEST(CorpusBands, AreThePercentilesOfEachStatistic) {
  std::vector<ClipStats> clips;
  for (int i = 1; i <= 100; ++i) clips.push_back({1, double(i), double(i) / 10.0});
  const CorpusBands bands = corpus_bands(clips);
  EXPECT_DOUBLE_EQ(bands.pitch_range.low, 5.95);
  EXPECT_DOUBLE_EQ(bands.pitch_range.high, 95.05);
  EXPECT_DOUBLE_EQ(bands.notes_per_second.low, 0.595);
  EXPECT_DOUBLE_EQ(bands.notes_per_second.high, 9.505);
  EXPECT_TRUE(bands.pitch_range.contains(50));
  EXPECT_FALSE(bands.pitch_range.contains(5));
  EXPECT_THROW((void)corpus_bands({}), std::invalid_argument);
  EXPECT_THROW((void)corpus_bands(clips, 60, 40), std::invalid_argument);
}

// The synthetic pieces span two octaves (root to root + 24) every 8 beats and
// play 1.75 notes a beat at 300-380 ms beats (4.6-5.8 a second), give or take
// a three-note chord at either edge of a clip.
void expect_synthetic_clips(const CorpusClips& corpus) {
  ASSERT_FALSE(corpus.clips.empty());
  for (const ClipStats& clip : corpus.clips) {
    EXPECT_DOUBLE_EQ(clip.pitch_range, 24);
    EXPECT_GE(clip.notes_per_second, 4.2);
    EXPECT_LE(clip.notes_per_second, 6.2);
  }
}

TEST(CorpusClips, FromTheCacheTrainingSplitAndFromMidiFiles) {
  testing::TempDir dir("tf-sample-check");
  const fs::path cache = testing::build_synthetic_cache(dir.path(), 6, 30.0);

  const CorpusClips all = cache_clips(cache, 10'000'000);
  EXPECT_EQ(all.performances, 4u);  // every third of the 6 is validation
  expect_synthetic_clips(all);
  const CorpusClips tatum = cache_clips(cache, 10'000'000, "art tatum");
  EXPECT_EQ(tatum.performances, 2u);  // pieces 0 and 4
  EXPECT_LT(tatum.clips.size(), all.clips.size());

  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir.path() / "data"))
    files.push_back(entry.path());
  std::erase_if(files, [](const fs::path& path) { return !fs::is_regular_file(path); });
  const fs::path broken = dir.path() / "broken.mid";
  write_bytes(broken, {'n', 'o', 't', ' ', 'm', 'i', 'd', 'i'});
  files.push_back(broken);
  const CorpusClips folder = file_clips(files, 10'000'000);
  EXPECT_EQ(folder.performances, 6u);
  EXPECT_EQ(folder.unreadable_files, 1u);
  expect_synthetic_clips(folder);

  EXPECT_THROW((void)cache_clips(dir.path() / "missing", 10'000'000), dataset::CacheError);
}

TEST(SmfReadReport, CountsNotesLeftOpen) {
  SmfReadReport report;
  const Performance read = parse_smf(kHangingFile, &report);
  EXPECT_EQ(read.notes.size(), 2u);
  EXPECT_EQ(report.unterminated_notes, 1u);
  (void)parse_smf(encode_smf(read), &report);
  EXPECT_EQ(report.unterminated_notes, 0u);  // the writer ends every note
}

TEST(CheckSampleFile, ValidFileMatchesWhatWasWritten) {
  testing::TempDir dir("tf-sample-check");
  const Performance written = testing::synthetic_performance(1, 12.0);
  const fs::path file = dir.path() / "sample.mid";
  write_smf(file, written);
  const SampleCheck check = check_sample_file(file, written, 10'000'000);
  EXPECT_TRUE(check.valid) << check.error;
  EXPECT_EQ(check.hanging_notes, 0u);
  EXPECT_DOUBLE_EQ(check.stats.pitch_range, 24);
  EXPECT_EQ(check.notes, written.notes.size());
  EXPECT_GT(check.stats.notes, 40u);
  EXPECT_LT(check.stats.notes, check.notes);  // 12 s written, 10 s counted
}

TEST(CheckSampleFile, CountsInvalidAndHangingFiles) {
  testing::TempDir dir("tf-sample-check");
  const Performance written = testing::synthetic_performance(1, 12.0);

  const fs::path other = dir.path() / "other.mid";
  write_smf(other, testing::synthetic_performance(2, 12.0));
  const SampleCheck mismatch = check_sample_file(other, written, 10'000'000);
  EXPECT_FALSE(mismatch.valid);
  EXPECT_NE(mismatch.error.find("other.mid"), std::string::npos) << mismatch.error;

  const fs::path garbage = dir.path() / "garbage.mid";
  write_bytes(garbage, {'R', 'I', 'F', 'F', 0, 0, 0, 0});
  const SampleCheck unreadable = check_sample_file(garbage, written, 10'000'000);
  EXPECT_FALSE(unreadable.valid);
  EXPECT_NE(unreadable.error.find("MThd"), std::string::npos) << unreadable.error;

  EXPECT_FALSE(check_sample_file(dir.path() / "missing.mid", written, 10'000'000).valid);

  const fs::path hanging = dir.path() / "hanging.mid";
  write_bytes(hanging, kHangingFile);
  Performance two_notes;
  two_notes.notes = {note(0, 60), note(0, 64)};
  const SampleCheck open = check_sample_file(hanging, two_notes, 10'000'000);
  EXPECT_TRUE(open.valid) << open.error;
  EXPECT_EQ(open.hanging_notes, 1u);
}

TEST(NotesWithoutDuration, CountsNoteOnsNoDurationFollows) {
  const Token note_on = tokens::kNoteOnBase + 39;
  const Token duration = tokens::kDurationBase + 9;
  const Token shift = tokens::kTimeShiftBase + 9;
  const std::vector<Token> sequence = {tokens::kSos, note_on, duration, note_on,
                                       shift,        note_on, duration, note_on};
  EXPECT_EQ(notes_without_duration(sequence), 2u);
  EXPECT_EQ(notes_without_duration(std::vector<Token>{tokens::kSos}), 0u);
}

SampleCheck sample(double pitch_range, double notes_per_second) {
  SampleCheck check;
  check.valid = true;
  check.stats = {10, pitch_range, notes_per_second};
  return check;
}

TEST(Summarize, PassNeedsValidityNoHangingAndMediansInside) {
  CorpusBands bands;
  bands.pitch_range = {15, 60};
  bands.notes_per_second = {4, 10};
  std::vector<SampleCheck> samples = {sample(10, 5), sample(20, 6), sample(30, 7), sample(90, 50)};

  const CheckSummary good = summarize(samples, bands);
  EXPECT_EQ(good.count, 4u);
  EXPECT_EQ(good.valid, 4u);
  EXPECT_DOUBLE_EQ(good.pitch_range.median, 25);
  EXPECT_TRUE(good.pitch_range.median_inside);
  EXPECT_DOUBLE_EQ(good.pitch_range.inside_share, 0.5);
  EXPECT_DOUBLE_EQ(good.notes_per_second.median, 6.5);
  EXPECT_DOUBLE_EQ(good.notes_per_second.inside_share, 0.75);
  EXPECT_TRUE(good.pass);

  std::vector<SampleCheck> with_hanging = samples;
  with_hanging[1].hanging_notes = 2;
  const CheckSummary hanging = summarize(with_hanging, bands);
  EXPECT_EQ(hanging.hanging_notes, 2u);
  EXPECT_EQ(hanging.samples_with_hanging_notes, 1u);
  EXPECT_FALSE(hanging.pass);

  std::vector<SampleCheck> with_invalid = samples;
  with_invalid[2].valid = false;
  const CheckSummary invalid = summarize(with_invalid, bands);
  EXPECT_EQ(invalid.valid, 3u);
  EXPECT_DOUBLE_EQ(invalid.pitch_range.inside_share, 0.25);  // the invalid one counts as outside
  EXPECT_FALSE(invalid.pass);

  const std::vector<SampleCheck> sparse = {sample(20, 1), sample(25, 2), sample(30, 9)};
  const CheckSummary thin = summarize(sparse, bands);
  EXPECT_FALSE(thin.notes_per_second.median_inside);
  EXPECT_FALSE(thin.pass);

  EXPECT_THROW((void)summarize({}, bands), std::invalid_argument);
}

}  // namespace
}  // namespace tatumflow::sample_check
