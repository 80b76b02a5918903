// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/smf.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace tatumflow {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes varlen(std::uint32_t value) {
  Bytes groups;
  do {
    groups.insert(groups.begin(), static_cast<std::uint8_t>((value & 0x7F) | (groups.empty() ? 0 : 0x80)));
    value >>= 7;
  } while (value != 0);
  return groups;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes u32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

Bytes chunk(const char* id, const Bytes& body) {
  return cat({Bytes(id, id + 4), u32(static_cast<std::uint32_t>(body.size())), body});
}

Bytes header(std::uint16_t format, std::uint16_t tracks, std::uint16_t division) {
  return chunk("MThd", {static_cast<std::uint8_t>(format >> 8), static_cast<std::uint8_t>(format),
                        static_cast<std::uint8_t>(tracks >> 8), static_cast<std::uint8_t>(tracks),
                        static_cast<std::uint8_t>(division >> 8), static_cast<std::uint8_t>(division)});
}

// A delta time followed by the event's bytes.
Bytes ev(std::uint32_t delta, Bytes bytes) { return cat({varlen(delta), bytes}); }

Bytes tempo(std::uint32_t delta, std::uint32_t us_per_quarter) {
  return ev(delta,
            {0xFF, 0x51, 0x03, static_cast<std::uint8_t>(us_per_quarter >> 16),
             static_cast<std::uint8_t>(us_per_quarter >> 8), static_cast<std::uint8_t>(us_per_quarter)});
}

Bytes end_of_track(std::uint32_t delta) { return ev(delta, {0xFF, 0x2F, 0x00}); }

Bytes track(std::initializer_list<Bytes> events) { return chunk("MTrk", cat(events)); }

Note note(std::int64_t onset_us, std::int64_t duration_us, std::uint8_t pitch, std::uint8_t velocity = 64,
          std::uint8_t channel = 0) {
  return Note{onset_us, duration_us, pitch, velocity, channel};
}

Performance round_trip(const Performance& performance) { return parse_smf(encode_smf(performance)); }

std::vector<Note> by_voice(std::vector<Note> notes) {
  std::stable_sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    return std::tie(a.channel, a.pitch, a.onset_us) < std::tie(b.channel, b.pitch, b.onset_us);
  });
  return notes;
}

// --- writer and round trip --------------------------------------------------

TEST(SmfWriter, RoundTripKeepsEveryNoteAndPedalWithinHalfATick) {
  std::mt19937 random(7);
  Performance original;
  std::int64_t time_us = 0;
  for (int i = 0; i < 2000; ++i) {
    time_us += 1000 + static_cast<std::int64_t>(random() % 40'000);
    original.notes.push_back(
        note(time_us, static_cast<std::int64_t>(random() % 2'000'000), static_cast<std::uint8_t>(i % 128),
             static_cast<std::uint8_t>(1 + random() % 127), static_cast<std::uint8_t>(random() % 16)));
  }
  for (int i = 0; i < 200; ++i) {
    original.pedals.push_back(
        PedalChange{i * 300'001LL + 17, (i / 3) % 2 == 0, static_cast<std::uint8_t>(i % 3)});
  }
  // One note per pitch and channel at a time, so that nothing is cut.
  std::map<int, std::int64_t> free_from_us;
  for (Note& n : original.notes) {
    std::int64_t& free_us = free_from_us[n.channel * 128 + n.pitch];
    if (n.onset_us < free_us + 1000) n.onset_us = free_us + 1000;
    free_us = n.offset_us();
  }
  original.sort();

  const Performance back = round_trip(original);
  // Rounding may reorder onsets less than a tick apart, but not within one voice.
  const std::vector<Note> expected = by_voice(original.notes);
  const std::vector<Note> actual = by_voice(back.notes);
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Note& a = expected[i];
    const Note& b = actual[i];
    EXPECT_LE(std::abs(a.onset_us - b.onset_us), 250) << "note " << i;
    EXPECT_LE(std::abs(a.duration_us - b.duration_us), 250) << "note " << i;
    EXPECT_EQ(a.pitch, b.pitch) << "note " << i;
    EXPECT_EQ(a.velocity, b.velocity) << "note " << i;
    EXPECT_EQ(a.channel, b.channel) << "note " << i;
  }
  ASSERT_EQ(back.pedals.size(), original.pedals.size());
  for (std::size_t i = 0; i < original.pedals.size(); ++i) {
    EXPECT_LE(std::abs(original.pedals[i].time_us - back.pedals[i].time_us), 250) << "pedal " << i;
    EXPECT_EQ(original.pedals[i].down, back.pedals[i].down) << "pedal " << i;
    EXPECT_EQ(original.pedals[i].channel, back.pedals[i].channel) << "pedal " << i;
  }
}

TEST(SmfWriter, WritesFormat0WithTempoAndEndOfTrack) {
  Performance p;
  p.notes = {note(0, 500'000, 60)};
  p.length_us = 2'000'000;
  const Bytes bytes = encode_smf(p);
  const Bytes expected =
      cat({header(0, 1, 1000),
           track({tempo(0, 500'000), ev(0, {0x90, 60, 64}), ev(1000, {60, 0}), end_of_track(3000)})});
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(parse_smf(bytes).length_us, 2'000'000);
}

TEST(SmfWriter, ClampsVelocity) {
  Performance p;
  p.notes = {note(0, 1000, 60, 0), note(5000, 1000, 62, 200)};
  const Performance back = round_trip(p);
  ASSERT_EQ(back.notes.size(), 2u);
  EXPECT_EQ(back.notes[0].velocity, 1);
  EXPECT_EQ(back.notes[1].velocity, 127);
}

TEST(SmfWriter, CutsOverlappingNotesOfOnePitchAtTheNextOnset) {
  Performance p;
  p.notes = {note(0, 1'000'000, 60), note(400'000, 1'000'000, 60), note(400'000, 2'000'000, 60, 64, 1),
             note(100'000, 5'000'000, 61)};
  const Performance back = round_trip(p);
  ASSERT_EQ(back.notes.size(), 4u);
  EXPECT_EQ(back.notes[0], note(0, 400'000, 60));
  EXPECT_EQ(back.notes[1], note(100'000, 5'000'000, 61));
  // Channel 1 is its own voice: not cut.
  EXPECT_EQ(back.notes[2], note(400'000, 1'000'000, 60));
  EXPECT_EQ(back.notes[3], note(400'000, 2'000'000, 60, 64, 1));
}

TEST(SmfWriter, KeepsZeroLengthNotesPairedAtOneTick) {
  Performance p;
  // At 10 ms: the first note ends, a zero-length note sounds, a third starts,
  // all on one pitch; then two notes with the same onset.
  p.notes = {note(0, 10'000, 60, 10), note(10'000, 0, 60, 20), note(10'000, 5'000, 60, 30),
             note(50'000, 7'000, 64, 40), note(50'000, 9'000, 64, 50)};
  const Performance back = round_trip(p);
  ASSERT_EQ(back.notes.size(), 5u);
  EXPECT_EQ(back.notes[0], note(0, 10'000, 60, 10));
  EXPECT_EQ(back.notes[1], note(10'000, 0, 60, 20));
  EXPECT_EQ(back.notes[2], note(10'000, 5'000, 60, 30));
  EXPECT_EQ(back.notes[3], note(50'000, 0, 64, 40));
  EXPECT_EQ(back.notes[4], note(50'000, 9'000, 64, 50));
}

TEST(SmfWriter, RejectsWhatItCannotWrite) {
  Performance p;
  p.notes = {note(0, 1000, 128)};
  EXPECT_THROW((void)encode_smf(p), std::invalid_argument);
  p.notes = {note(-1, 1000, 60)};
  EXPECT_THROW((void)encode_smf(p), std::invalid_argument);
  p.notes = {note(0, -5, 60)};
  EXPECT_THROW((void)encode_smf(p), std::invalid_argument);
  p.notes = {note(kSmfMaxTimeUs, 1, 60)};
  EXPECT_THROW((void)encode_smf(p), std::invalid_argument);
  p.notes = {note(kSmfMaxTimeUs - 1, 1, 60, 64, 15)};
  EXPECT_EQ(round_trip(p).notes.size(), 1u);
  p.pedals = {PedalChange{0, true, 16}};
  EXPECT_THROW((void)encode_smf(p), std::invalid_argument);
}

TEST(SmfWriter, WriteAndReadAFile) {
  const std::filesystem::path path =
      std::filesystem::path(TATUMFLOW_BINARY_DIR) / "smf_test_write_and_read.mid";
  Performance p;
  p.notes = {note(0, 250'000, 60), note(250'000, 250'000, 64)};
  p.pedals = {PedalChange{0, true, 0}, PedalChange{400'000, false, 0}};
  p.sort();
  write_smf(path, p);
  EXPECT_EQ(read_smf(path).notes, p.notes);
  EXPECT_EQ(read_smf(path).pedals, p.pedals);
  std::filesystem::remove(path);
}

// --- reader -----------------------------------------------------------------

TEST(SmfReader, RunningStatusVelocityZeroSysexAndMetaEvents) {
  const Bytes file =
      cat({header(0, 1, 100), track({ev(0, {0xFF, 0x03, 0x04, 'P', 'i', 'a', 'n'}),      // track name
                                     ev(0, {0xF0, 0x05, 0x7E, 0x7F, 0x09, 0x01, 0xF7}),  // GM on
                                     ev(0, {0xFF, 0x58, 0x04, 0x04, 0x02, 0x18, 0x08}),  // time signature
                                     ev(0, {0x90, 60, 100}), ev(50, {64, 90}),           // running status
                                     ev(50, {60, 0}),                                    // velocity 0 = off
                                     ev(0, {0xF7, 0x02, 0x43, 0x12}),                    // escaped sysex
                                     ev(0, {0xFF, 0x7F, 0x03, 1, 2, 3}),                 // sequencer specific
                                     ev(25, {64, 0}),  // running status after meta
                                     ev(0, {0xC0, 5}), ev(0, {0xE0, 0, 64}), end_of_track(25)})});
  const Performance p = parse_smf(file);
  ASSERT_EQ(p.notes.size(), 2u);
  // Division 100 at the default 500000 us per quarter: 5 ms per tick.
  EXPECT_EQ(p.notes[0], note(0, 500'000, 60, 100));
  EXPECT_EQ(p.notes[1], note(250'000, 375'000, 64, 90));
  EXPECT_EQ(p.length_us, 750'000);
}

TEST(SmfReader, Format1TempoMapInTrack0IsExact) {
  // 7 ticks per quarter at 1 s per quarter: ticks of 142857.142857... us, which
  // rounding each delta would get wrong by 1000 us after 7000 ticks.
  const Bytes file =
      cat({header(1, 3, 7), track({tempo(0, 1'000'000), tempo(7000, 700'000), tempo(7, 1), end_of_track(0)}),
           track({ev(6999, {0x90, 60, 80}), ev(1, {0x80, 60, 0}), ev(0, {0x91, 62, 70}), ev(7, {0x81, 62, 0}),
                  ev(7, {0x90, 64, 60}), ev(7, {64, 0}), end_of_track(0)}),
           // A tempo change outside track 0 does not count in format 1.
           track({tempo(0, 100), ev(7000, {0x90, 67, 50}), ev(1, {67, 0}), end_of_track(0)})});
  const Performance p = parse_smf(file);
  ASSERT_EQ(p.notes.size(), 4u);
  EXPECT_EQ(p.notes[0], note(999'857'143, 142'857, 60, 80));  // 6999 ticks: 999857142.86 us
  EXPECT_EQ(p.notes[1], note(1'000'000'000, 700'000, 62, 70, 1));
  EXPECT_EQ(p.notes[2], note(1'000'000'000, 100'000, 67, 50));
  EXPECT_EQ(p.notes[3], note(1'000'700'001, 1, 64, 60));  // 7 ticks at 1 us per quarter
  EXPECT_EQ(p.length_us, 1'000'700'002);
}

TEST(SmfReader, SmpteDivision) {
  // 25 frames per second, 40 ticks per frame: 1 ms per tick; tempo changes do not apply.
  const auto division = [](int frames_per_second, int ticks_per_frame) {
    return static_cast<std::uint16_t>(((256 - frames_per_second) << 8) | ticks_per_frame);
  };
  Performance p = parse_smf(
      cat({header(0, 1, division(25, 40)),
           track({tempo(0, 123'456), ev(1234, {0x90, 60, 64}), ev(766, {0x80, 60, 0}), end_of_track(0)})}));
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0], note(1'234'000, 766'000, 60));
  // 29 is 30 drop-frame: 30000/1001 frames per second.
  p = parse_smf(cat({header(0, 1, division(29, 4)), track({ev(120, {0x90, 60, 64}), ev(1, {0x80, 60, 0})})}));
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0].onset_us, 1'001'000);
  EXPECT_EQ(p.notes[0].duration_us, 8342);  // 1009341.67 - 1001000 after rounding both
}

TEST(SmfReader, PedalKeepsOnlyTransitionsPerChannel) {
  const Bytes file =
      cat({header(1, 3, 1000),
           track({ev(0, {0xB0, 64, 0}), ev(1, {64, 100}), ev(1, {64, 127}), ev(1, {64, 10}), ev(1, {64, 63}),
                  ev(1, {64, 64}), ev(0, {0xB1, 64, 127}), ev(0, {0xB0, 7, 100}), end_of_track(0)}),
           // A second track on channel 0: merged in time order before filtering.
           track({ev(3, {0xB0, 64, 127}), ev(2, {64, 0}), end_of_track(0)}), track({end_of_track(0)})});
  // Merged at 0.5 ms per tick; track 2's down at tick 3 follows track 1's up there.
  const std::vector<PedalChange> expected = {{500, true, 0},   {1500, false, 0}, {1500, true, 0},
                                             {2000, false, 0}, {2500, true, 0},  {2500, true, 1},
                                             {2500, false, 0}};
  EXPECT_EQ(parse_smf(file).pedals, expected);
}

TEST(SmfReader, PairsFirstInFirstOutAndEndsOpenNotesAtTrackEnd) {
  const Bytes file =
      cat({header(1, 2, 1000),
           track({ev(0, {0x90, 60, 10}), ev(2, {60, 20}), ev(2, {0x80, 60, 0}),  // closes the first
                  ev(2, {0x90, 62, 30}), ev(4, {0x80, 61, 0}),                   // unmatched off
                  ev(0, {0x90, 65, 0}),                                          // unmatched off
                  end_of_track(10)}),
           // A note-off in another track does not end these notes.
           track({ev(1, {0x80, 60, 0}), ev(1, {0x90, 70, 40})})});  // no End of Track
  const Performance p = parse_smf(file);
  ASSERT_EQ(p.notes.size(), 4u);
  EXPECT_EQ(p.notes[0], note(0, 2000, 60, 10));
  EXPECT_EQ(p.notes[1], note(1000, 9000, 60, 20));
  EXPECT_EQ(p.notes[2], note(1000, 0, 70, 40));  // its track's last event
  EXPECT_EQ(p.notes[3], note(3000, 7000, 62, 30));
  EXPECT_EQ(p.length_us, 10'000);
}

TEST(SmfReader, SkipsUnknownChunksAndTrailingGarbage) {
  const Bytes file = cat({header(1, 1, 1000), chunk("XFIH", {1, 2, 3}),
                          track({ev(0, {0x90, 60, 10}), ev(2, {60, 0}), end_of_track(0), ev(0, {0xF4})}),
                          Bytes{'g', 'a', 'r', 'b', 'a', 'g', 'e', 0xFF, 0xFF}});
  const Performance p = parse_smf(file);
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0], note(0, 1000, 60, 10));
}

TEST(SmfReader, Format2TracksPlayOneAfterTheOther) {
  const Bytes file = cat(
      {header(2, 2, 10), track({tempo(0, 100'000), ev(0, {0x90, 60, 10}), ev(10, {60, 0}), end_of_track(10)}),
       track({ev(5, {0x90, 62, 20}), ev(10, {62, 0}), end_of_track(0)})});
  const Performance p = parse_smf(file);
  ASSERT_EQ(p.notes.size(), 2u);
  EXPECT_EQ(p.notes[0], note(0, 100'000, 60, 10));
  // The second sequence starts at 200 ms with the default tempo again (50 ms per tick).
  EXPECT_EQ(p.notes[1], note(450'000, 500'000, 62, 20));
  EXPECT_EQ(p.length_us, 950'000);
}

struct Malformed {
  const char* name;
  Bytes bytes;
  SmfProblem problem;
  std::size_t offset;
};

// Offsets: the MThd chunk is bytes 0-13, the first MTrk body starts at byte 22.
std::vector<Malformed> malformed_files() {
  const Bytes ok_track = track({ev(0, {0x90, 60, 10}), end_of_track(1)});
  return {
      {"empty", {}, SmfProblem::kNotMidi, 0},
      {"riff", {'R', 'I', 'F', 'F', 0, 0, 0, 4, 'R', 'M', 'I', 'D'}, SmfProblem::kNotMidi, 0},
      {"header cut", {'M', 'T', 'h', 'd', 0, 0}, SmfProblem::kTruncated, 4},
      {"header length 5", chunk("MThd", {0, 0, 0, 1, 0}), SmfProblem::kBadHeader, 4},
      {"header past end", cat({Bytes{'M', 'T', 'h', 'd'}, u32(7), Bytes{0, 0, 0, 1, 0, 96}}),
       SmfProblem::kBadChunk, 4},
      {"format 3", cat({header(3, 1, 96), ok_track}), SmfProblem::kBadHeader, 8},
      {"no tracks", header(1, 0, 96), SmfProblem::kBadHeader, 10},
      {"format 0 two tracks", cat({header(0, 2, 96), ok_track, ok_track}), SmfProblem::kBadHeader, 10},
      {"division 0", cat({header(0, 1, 0), ok_track}), SmfProblem::kBadHeader, 12},
      {"smpte 23 fps", cat({header(0, 1, 0xE928), ok_track}), SmfProblem::kBadHeader, 12},
      {"smpte 0 ticks", cat({header(0, 1, 0xE700), ok_track}), SmfProblem::kBadHeader, 12},
      {"track past end", cat({header(0, 1, 96), Bytes{'M', 'T', 'r', 'k'}, u32(100), Bytes{0, 0x90, 60, 10}}),
       SmfProblem::kBadChunk, 18},
      {"missing track", cat({header(1, 2, 96), ok_track}), SmfProblem::kTruncated, 14 + ok_track.size()},
      {"varlen 5 bytes", cat({header(0, 1, 96), track({Bytes{0x81, 0x81, 0x81, 0x81, 0x00, 0x90, 60, 10}})}),
       SmfProblem::kBadVarLen, 22},
      {"varlen cut", cat({header(0, 1, 96), track({ev(0, {0x90, 60, 10}), Bytes{0x81, 0x81}})}),
       SmfProblem::kTruncated, 26},
      {"no running status", cat({header(0, 1, 96), track({ev(0, {60, 10}), end_of_track(0)})}),
       SmfProblem::kRunningStatus, 23},
      {"event cut", cat({header(0, 1, 96), track({ev(0, {0x90, 60})})}), SmfProblem::kTruncated, 24},
      {"delta without event", cat({header(0, 1, 96), track({ev(0, {0x90, 60, 10}), Bytes{0x05}})}),
       SmfProblem::kTruncated, 26},
      {"sysex past track", cat({header(0, 1, 96), track({ev(0, {0xF0, 0x10, 1, 2}), end_of_track(0)})}),
       SmfProblem::kTruncated, 22},
      {"meta past track", cat({header(0, 1, 96), track({ev(0, {0xFF, 0x01, 0x20, 'a'})})}),
       SmfProblem::kTruncated, 22},
      {"system common",
       cat({header(0, 1, 96), track({ev(0, {0x90, 60, 10}), ev(3, {0xF4}), end_of_track(0)})}),
       SmfProblem::kBadEvent, 27},
      {"status as data", cat({header(0, 1, 96), track({ev(0, {0x90, 60, 0x90}), end_of_track(0)})}),
       SmfProblem::kBadEvent, 25},
      {"tempo 2 bytes", cat({header(0, 1, 96), track({ev(0, {0xFF, 0x51, 0x02, 1, 2}), end_of_track(0)})}),
       SmfProblem::kBadEvent, 25},
      {"tempo 0", cat({header(0, 1, 96), track({tempo(0, 0), end_of_track(0)})}), SmfProblem::kBadEvent, 26},
  };
}

TEST(SmfReader, MalformedFilesNameTheProblemAndByte) {
  for (const Malformed& m : malformed_files()) {
    try {
      (void)parse_smf(m.bytes);
      ADD_FAILURE() << m.name << ": no error";
    } catch (const SmfError& e) {
      EXPECT_EQ(to_string(e.problem()), std::string(to_string(m.problem))) << m.name << ": " << e.what();
      EXPECT_EQ(e.byte_offset(), m.offset) << m.name << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("byte " + std::to_string(m.offset) + ": ", 0), 0u) << e.what();
    }
  }
}

void expect_too_large(const Bytes& file, std::size_t offset) {
  try {
    (void)parse_smf(file);
    ADD_FAILURE() << "no error";
  } catch (const SmfError& e) {
    EXPECT_EQ(e.problem(), SmfProblem::kTooLarge) << e.what();
    EXPECT_EQ(e.byte_offset(), offset) << e.what();
  }
}

TEST(SmfReader, BoundsTicksTimeAndNotes) {
  Bytes events;
  const Bytes longest_delta = {0xFF, 0xFF, 0xFF, 0x7F};
  for (int i = 0; i < 16; ++i) events = cat({events, longest_delta, Bytes{0xFF, 0x01, 0x00}});
  // Sixteen deltas of 2^28 - 1 stay below 2^32; the seventeenth does not.
  const std::size_t seventeenth = 22 + events.size();
  expect_too_large(
      cat({header(0, 1, 96), chunk("MTrk", cat({events, longest_delta, Bytes{0xFF, 0x2F, 0x00}}))}),
      seventeenth);

  // 2^28 ticks at 16.7 s per tick lasts far longer than a day.
  expect_too_large(cat({header(0, 1, 1), track({tempo(0, 0xFFFFFF), ev(0x0FFFFFFF, {0xFF, 0x2F, 0x00})})}),
                   29);

  // One note-on with its status byte, then kSmfMaxNotes more in running status.
  Bytes notes(4 + 3 * kSmfMaxNotes);
  notes[1] = 0x90;
  for (std::size_t at = 2; at < notes.size(); at += 3) notes[at] = 60, notes[at + 1] = 10;
  expect_too_large(cat({header(0, 1, 96), chunk("MTrk", notes)}), 22 + 4 + 3 * (kSmfMaxNotes - 1));
}

TEST(SmfReader, ReadingAMissingFileNamesIt) {
  try {
    (void)read_smf("/nonexistent/tatumflow/x.mid");
    ADD_FAILURE() << "no error";
  } catch (const SmfError& e) {
    EXPECT_EQ(e.problem(), SmfProblem::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tatumflow/x.mid: cannot open"), std::string::npos)
        << e.what();
  }
}

// --- PiJAMA -----------------------------------------------------------------

std::filesystem::path pijama_dir() {
  if (const char* data = std::getenv("TATUMFLOW_DATA"); data != nullptr && *data != '\0') return data;
  return std::filesystem::path(TATUMFLOW_SOURCE_DIR) / ".." / "shared" / "data" / "pijama";
}

TEST(SmfPijama, NoteAndPedalCountsMatchTheManifest) {
  const std::filesystem::path root = pijama_dir();
  std::ifstream manifest(root / "manifest_midi_kong.tsv");
  if (!manifest) GTEST_SKIP() << "no PiJAMA data at " << root;
  std::string line;
  std::getline(manifest, line);
  ASSERT_EQ(line, "path\tsetting\tperformer\talbum\ttitle\tseconds\tnotes\tpedal_events\terror");
  int checked = 0;
  for (int row = 0; std::getline(manifest, line); ++row) {
    if (row % 100 != 0) continue;  // a spread of 28 files
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
    ASSERT_GE(fields.size(), 8u) << line;
    const Performance p = read_smf(root / "midi_kong" / fields[0]);
    EXPECT_EQ(p.notes.size(), std::stoul(fields[6])) << fields[0];
    EXPECT_EQ(p.pedals.size(), std::stoul(fields[7])) << fields[0];
    EXPECT_NEAR(p.seconds(), std::stod(fields[5]), 0.05) << fields[0];
    // What the writer makes of a real performance reads back the same.
    EXPECT_EQ(round_trip(p).notes.size(), p.notes.size()) << fields[0];
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

}  // namespace
}  // namespace tatumflow
