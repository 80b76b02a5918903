// SPDX-License-Identifier: GPL-3.0-or-later
// A check of written MIDI files that does not trust the project's SMF reader
// (which closes hanging notes itself): the raw note events of a format 0 file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>

namespace tatumflow::testing {

// Every note-on of the file's single track is switched off before the same key
// sounds again and before the end of the track, counting raw events. Returns
// the number of notes, or -1 for a hanging or re-struck one or a file that is
// not one well-formed track.
inline int closed_notes(std::span<const std::uint8_t> file) {
  constexpr std::size_t kTrackStart = 14 + 8;                                // MThd and the MTrk header
  if (file.size() < kTrackStart || file[8] != 0 || file[9] != 0) return -1;  // format 0 only
  std::size_t at = kTrackStart;
  bool overrun = false;
  const auto byte = [&]() -> std::uint8_t {
    if (at >= file.size()) {
      overrun = true;
      return 0;
    }
    return file[at++];
  };
  const auto varlen = [&] {
    std::uint32_t value = 0;
    std::uint8_t b = 0;
    do {
      b = byte();
      value = (value << 7) | (b & 0x7f);
    } while ((b & 0x80) != 0 && !overrun);
    return value;
  };
  std::map<int, int> open;
  int notes = 0;
  std::uint8_t status = 0;
  bool ended = false;
  while (at < file.size() && !overrun) {
    (void)varlen();
    if (at < file.size() && (file[at] & 0x80) != 0) status = byte();
    if (status == 0xff) {
      const std::uint8_t type = byte();
      at += varlen();
      if (type == 0x2f) {
        ended = true;
        break;
      }
      continue;
    }
    const int kind = status & 0xf0;
    if (kind == 0xc0 || kind == 0xd0) {
      (void)byte();
      continue;
    }
    const std::uint8_t key = byte();
    const std::uint8_t velocity = byte();
    if (kind == 0x90 && velocity > 0) {
      if (open[key]++ != 0) return -1;
      ++notes;
    } else if (kind == 0x80 || kind == 0x90) {
      if (open[key]-- != 1) return -1;
    }
  }
  if (!ended || overrun) return -1;
  for (const auto& [key, count] : open) {
    if (count != 0) return -1;
  }
  return notes;
}

}  // namespace tatumflow::testing
