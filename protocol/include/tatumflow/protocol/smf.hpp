// SPDX-License-Identifier: GPL-3.0-or-later
// Standard MIDI files to and from a Performance: formats 0, 1 and 2 read, format 0 written.
// Pure functions with no shared state: any thread may call them, but they
// allocate, so never a real-time thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tatumflow/protocol/performance.hpp"

namespace tatumflow {

enum class SmfProblem {
  kIo,             // the file cannot be opened, read or written
  kNotMidi,        // no MThd header
  kBadHeader,      // header length, format or division out of range
  kBadChunk,       // a chunk length runs past the end of the file
  kTruncated,      // an event, variable-length number or declared track is cut off
  kBadVarLen,      // a variable-length number longer than 4 bytes
  kRunningStatus,  // a data byte with no running status to apply
  kBadEvent,       // an event type that SMF does not allow, or a malformed tempo
  kTooLarge,       // more notes, ticks, time or bytes than the reader accepts
};

// Limits that keep hostile files from costing unbounded time or memory. The
// writer refuses performances beyond them, so whatever it writes reads back.
inline constexpr std::size_t kSmfMaxNotes = std::size_t{1} << 20;       // each; hours of dense piano
inline constexpr std::uint64_t kSmfMaxTicks = std::uint64_t{1} << 32;   // per track
inline constexpr std::int64_t kSmfMaxTimeUs = 24LL * 3600 * 1'000'000;  // one day
inline constexpr std::uintmax_t kSmfMaxFileBytes = std::uintmax_t{64} << 20;

// what() reads "<source>: byte <offset>: <detail>" (no byte for kIo, no source
// when parsing bytes in memory), e.g.
// "byte 1234: variable-length number longer than 4 bytes".
class SmfError : public std::runtime_error {
 public:
  // any thread
  SmfError(SmfProblem problem, std::size_t byte_offset, const std::string& detail,
           const std::string& source = {});
  [[nodiscard]] SmfProblem problem() const { return problem_; }           // any thread
  [[nodiscard]] std::size_t byte_offset() const { return byte_offset_; }  // any thread
  [[nodiscard]] const std::string& detail() const { return detail_; }     // any thread

 private:
  SmfProblem problem_;
  std::size_t byte_offset_;
  std::string detail_;
};

[[nodiscard]] const char* to_string(SmfProblem problem);  // any thread

// What parse_smf repaired while reading: a file without hanging notes has none.
struct SmfReadReport {
  std::size_t unterminated_notes = 0;  // note-ons with no note-off before the end of their track
};

// Reads formats 0, 1 and 2 (format 2 tracks are independent sequences, played
// one after the other, each with its own tempo map). Every channel is read.
// Tempo changes (FF 51) in track 0 apply to every track of a format 1 file; any
// elsewhere are ignored. Times are exact to the nearest microsecond, also with
// SMPTE division (where tempo changes do not apply). Note-on with velocity 0 is
// a note-off; note-ons and note-offs pair first-in first-out per track, channel
// and pitch; notes still open at the end of their track end there. CC64 gives
// PedalChange transitions (value >= 64 is down) per channel across all tracks.
// Other events, meta and sysex are skipped; running status survives them (as in
// most readers, though the standard cancels it). Unknown chunks and anything
// after the declared tracks are skipped. Throws SmfError; the result is sorted.
// `report`, if given, receives what the reader had to repair.
// Any thread except a real-time one.
[[nodiscard]] Performance parse_smf(std::span<const std::uint8_t> bytes, SmfReadReport* report = nullptr);
[[nodiscard]] Performance read_smf(const std::filesystem::path& path, SmfReadReport* report = nullptr);

// Format 0, one track, 1000 ticks per quarter note at 500000 us per quarter
// (0.5 ms ticks; onsets and durations round to the nearest tick). Notes and
// pedal changes (CC64 127/0) are sorted by time with each note-off before any
// note-on at the same tick, except that a zero-length note's off follows its
// own on; overlapping notes of one pitch on one channel are cut where the next
// one starts, so no note hangs. Velocities are clamped to 1..127. Throws
// std::invalid_argument for a pitch, channel or negative time out of range or a
// performance beyond the limits above; write_smf throws SmfError (kIo) when the
// file cannot be written. Any thread except a real-time one.
[[nodiscard]] std::vector<std::uint8_t> encode_smf(const Performance& performance);
void write_smf(const std::filesystem::path& path, const Performance& performance);

}  // namespace tatumflow
