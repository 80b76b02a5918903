// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/smf.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <tuple>

namespace tatumflow {

namespace {

constexpr std::int64_t kDefaultUsPerQuarter = 500'000;
constexpr std::uint16_t kWriterTicksPerQuarter = 1000;
constexpr std::int64_t kWriterUsPerQuarter = 500'000;
constexpr std::int64_t kWriterUsPerTick = kWriterUsPerQuarter / kWriterTicksPerQuarter;
// The writer's ticks stay below this, so one delta time always fits.
static_assert(kSmfMaxTimeUs / kWriterUsPerTick < 0x0FFF'FFFF);
constexpr std::uint8_t kSustainController = 64;

std::string hex(unsigned byte) {
  std::array<char, 8> text{};
  std::snprintf(text.data(), text.size(), "0x%02X", byte);
  return text.data();
}

[[noreturn]] void fail(SmfProblem problem, std::size_t offset, const std::string& detail) {
  throw SmfError(problem, offset, detail);
}

// Ticks to microseconds. Each tempo segment keeps its start time scaled by the
// divisor (ticks per quarter, or frames per second times ticks per frame), so
// every conversion is one exact integer division and rounding never accumulates.
// The limits (2^32 ticks, tempo < 2^24 us) keep every product below 2^57.
class TickClock {
 public:
  // `default_rate` is microseconds per tick times `divisor`; tempo changes only
  // apply to a metrical (ticks per quarter) clock.
  TickClock(std::int64_t default_rate, std::int64_t divisor, bool tempo_applies)
      : default_rate_(default_rate), divisor_(divisor), tempo_applies_(tempo_applies) {
    restart();
  }

  // Back to the default tempo at tick 0, for an independent (format 2) track.
  void restart() {
    segments_.assign(1, Segment{0, 0, default_rate_});
    cursor_ = 0;
  }

  // Ticks asked for must not decrease until the next rewind().
  void rewind() { cursor_ = 0; }

  // `tick` is at or after every earlier tempo change.
  void set_tempo(std::uint64_t tick, std::int64_t us_per_quarter) {
    if (!tempo_applies_) return;
    Segment& last = segments_.back();
    if (last.tick == tick) {
      last.rate = us_per_quarter;
      return;
    }
    segments_.push_back(Segment{tick, scaled_at(last, tick), us_per_quarter});
  }

  [[nodiscard]] std::int64_t to_us(std::uint64_t tick) {
    while (cursor_ + 1 < segments_.size() && segments_[cursor_ + 1].tick <= tick) ++cursor_;
    return (scaled_at(segments_[cursor_], tick) + divisor_ / 2) / divisor_;
  }

 private:
  struct Segment {
    std::uint64_t tick;
    std::int64_t scaled_us;  // start time times divisor_
    std::int64_t rate;       // microseconds per tick times divisor_
  };

  static std::int64_t scaled_at(const Segment& segment, std::uint64_t tick) {
    return segment.scaled_us + static_cast<std::int64_t>(tick - segment.tick) * segment.rate;
  }

  std::int64_t default_rate_;
  std::int64_t divisor_;
  bool tempo_applies_;
  std::vector<Segment> segments_;
  std::size_t cursor_ = 0;
};

std::uint32_t read_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::uint16_t read_u16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

TickClock clock_for_division(std::uint16_t division, std::size_t offset) {
  if ((division & 0x8000) == 0) {
    if (division == 0) fail(SmfProblem::kBadHeader, offset, "division of 0 ticks per quarter note");
    return TickClock(kDefaultUsPerQuarter, division, true);
  }
  const int frames_per_second = 256 - (division >> 8);
  const int ticks_per_frame = division & 0xFF;
  if (ticks_per_frame == 0) fail(SmfProblem::kBadHeader, offset, "SMPTE division with 0 ticks per frame");
  switch (frames_per_second) {
    case 24:
    case 25:
    case 30:
      return TickClock(1'000'000, std::int64_t{frames_per_second} * ticks_per_frame, false);
    case 29:  // 30 drop-frame runs at 30000/1001 frames per second
      return TickClock(100'100, std::int64_t{3} * ticks_per_frame, false);
    default:
      fail(SmfProblem::kBadHeader, offset,
           "SMPTE division with " + std::to_string(frames_per_second) +
               " frames per second (not 24, 25, 29 or 30)");
  }
}

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : data_(bytes.data()), size_(bytes.size()) {
    head_.fill(kNone);
    tail_.fill(kNone);
  }

  [[nodiscard]] std::size_t unterminated_notes() const { return unterminated_notes_; }

  Performance read() {
    const std::size_t tracks_at = read_header();
    std::size_t pos = tracks_at;
    std::int64_t sequence_start_us = 0;
    performance_.notes.reserve(size_ / 8);
    next_open_.reserve(size_ / 8);
    for (unsigned track = 0; track < track_count_;) {
      if (size_ - pos < 8) {
        fail(SmfProblem::kTruncated, pos,
             "file ends after " + std::to_string(track) + " of " + std::to_string(track_count_) +
                 " declared tracks");
      }
      const std::uint32_t length = read_u32(data_ + pos + 4);
      if (length > size_ - pos - 8) {
        fail(SmfProblem::kBadChunk, pos + 4,
             "chunk length " + std::to_string(length) + " runs past the end of the file (" +
                 std::to_string(size_ - pos - 8) + " bytes left)");
      }
      const std::size_t body = pos + 8;
      if (std::memcmp(data_ + pos, "MTrk", 4) == 0) {
        if (format_ == 2) {
          clock_->restart();
        } else {
          clock_->rewind();
        }
        const std::int64_t end_us =
            read_track(body, body + length, format_ == 2 || track == 0, format_ == 2 ? sequence_start_us : 0);
        if (format_ == 2) sequence_start_us = end_us;
        performance_.length_us = std::max(performance_.length_us, end_us);
        ++track;
      }
      pos = body + length;
    }
    keep_pedal_transitions();
    performance_.sort();
    return std::move(performance_);
  }

 private:
  static constexpr std::uint32_t kNone = 0xFFFF'FFFF;

  // Returns the offset of the first chunk after the header.
  std::size_t read_header() {
    if (size_ < 4 || std::memcmp(data_, "MThd", 4) != 0) {
      fail(SmfProblem::kNotMidi, 0, "no MThd header: not a standard MIDI file");
    }
    if (size_ < 8) fail(SmfProblem::kTruncated, 4, "file ends inside the MThd header");
    const std::uint32_t length = read_u32(data_ + 4);
    if (length < 6) fail(SmfProblem::kBadHeader, 4, "MThd length " + std::to_string(length) + " (below 6)");
    if (length > size_ - 8) {
      fail(SmfProblem::kBadChunk, 4,
           "MThd length " + std::to_string(length) + " runs past the end of the file (" +
               std::to_string(size_ - 8) + " bytes left)");
    }
    format_ = read_u16(data_ + 8);
    track_count_ = read_u16(data_ + 10);
    if (format_ > 2) {
      fail(SmfProblem::kBadHeader, 8, "format " + std::to_string(format_) + " (not 0, 1 or 2)");
    }
    if (track_count_ == 0) fail(SmfProblem::kBadHeader, 10, "no tracks declared");
    if (format_ == 0 && track_count_ != 1) {
      fail(SmfProblem::kBadHeader, 10, "format 0 with " + std::to_string(track_count_) + " tracks (not 1)");
    }
    clock_.emplace(clock_for_division(read_u16(data_ + 12), 12));
    return 8 + std::size_t{length};
  }

  // Reads a variable-length number that must end before `end`.
  std::uint32_t read_varlen(std::size_t& pos, std::size_t end) const {
    const std::size_t start = pos;
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (pos == end) fail(SmfProblem::kTruncated, start, "track ends inside a variable-length number");
      const std::uint8_t byte = data_[pos++];
      value = (value << 7) | (byte & 0x7Fu);
      if ((byte & 0x80) == 0) return value;
    }
    fail(SmfProblem::kBadVarLen, start, "variable-length number longer than 4 bytes");
  }

  // Skips `length` bytes of event data that must end before `end`.
  void skip_data(std::size_t& pos, std::size_t end, std::size_t event_at, const char* what) const {
    const std::uint32_t length = read_varlen(pos, end);
    if (length > end - pos) {
      fail(SmfProblem::kTruncated, event_at,
           std::string(what) + " of " + std::to_string(length) + " bytes runs past the end of its track (" +
               std::to_string(end - pos) + " bytes left)");
    }
    pos += length;
  }

  // Reads one MTrk body; returns the time of its last event.
  std::int64_t read_track(std::size_t pos, std::size_t end, bool tempo_track, std::int64_t start_us) {
    std::uint64_t tick = 0;
    std::uint8_t running = 0;
    std::size_t event_at = pos;
    while (pos < end) {
      event_at = pos;
      tick += read_varlen(pos, end);
      if (tick >= kSmfMaxTicks) {
        fail(SmfProblem::kTooLarge, event_at,
             "event at tick " + std::to_string(tick) + ", past the limit of 2^32 ticks per track");
      }
      if (pos == end) {
        fail(SmfProblem::kTruncated, event_at, "track ends after a delta time, inside an event");
      }
      std::uint8_t status = data_[pos];
      if (status & 0x80) {
        ++pos;
        if (status < 0xF0) running = status;
      } else if (running == 0) {
        fail(SmfProblem::kRunningStatus, pos,
             "data byte " + hex(status) + " with no running status to apply");
      } else {
        status = running;
      }

      if (status < 0xF0) {
        read_channel_event(status, pos, end, event_at, start_us + clock_->to_us(tick));
      } else if (status == 0xFF) {
        if (pos == end) fail(SmfProblem::kTruncated, event_at, "track ends inside a meta event");
        const std::uint8_t type = data_[pos++];
        if (type == 0x2F) break;  // End of Track: anything after it in the chunk is ignored
        if (type == 0x51) {
          read_tempo(pos, end, event_at, tempo_track ? tick : kNoTempoTick);
        } else {
          skip_data(pos, end, event_at, "meta event");
        }
      } else if (status == 0xF0 || status == 0xF7) {
        skip_data(pos, end, event_at, "sysex event");
      } else {
        fail(SmfProblem::kBadEvent, pos - 1, "status " + hex(status) + " is not allowed in a MIDI file");
      }
    }
    const std::int64_t end_us = start_us + clock_->to_us(tick);
    if (end_us > kSmfMaxTimeUs) {
      fail(SmfProblem::kTooLarge, event_at,
           "track ends at " + std::to_string(end_us / 1'000'000) + " s, past the limit of one day");
    }
    close_open_notes(end_us);
    return end_us;
  }

  static constexpr std::uint64_t kNoTempoTick = ~std::uint64_t{0};

  // `tick` is kNoTempoTick in a track whose tempo changes do not count.
  void read_tempo(std::size_t& pos, std::size_t end, std::size_t event_at, std::uint64_t tick) {
    const std::size_t length_at = pos;
    const std::uint32_t length = read_varlen(pos, end);
    if (length != 3) {
      fail(SmfProblem::kBadEvent, length_at, "tempo event of " + std::to_string(length) + " bytes (not 3)");
    }
    if (end - pos < 3) fail(SmfProblem::kTruncated, event_at, "track ends inside a tempo event");
    const std::int64_t us_per_quarter = (data_[pos] << 16) | (data_[pos + 1] << 8) | data_[pos + 2];
    if (us_per_quarter == 0) fail(SmfProblem::kBadEvent, pos, "tempo of 0 microseconds per quarter note");
    pos += 3;
    if (tick != kNoTempoTick) clock_->set_tempo(tick, us_per_quarter);
  }

  void read_channel_event(std::uint8_t status, std::size_t& pos, std::size_t end, std::size_t event_at,
                          std::int64_t time_us) {
    const unsigned kind = status >> 4;
    const std::uint8_t channel = status & 0x0F;
    const std::size_t data_bytes = (kind == 0xC || kind == 0xD) ? 1 : 2;
    if (end - pos < data_bytes) {
      fail(SmfProblem::kTruncated, pos, "track ends inside a " + hex(status) + " channel event");
    }
    const std::uint8_t first = data_[pos];
    const std::uint8_t second = data_bytes == 2 ? data_[pos + 1] : 0;
    if ((first | second) & 0x80) {
      const std::size_t bad_at = (first & 0x80) ? pos : pos + 1;
      fail(SmfProblem::kBadEvent, bad_at,
           "status byte " + hex(data_[bad_at]) + " where a data byte of a " + hex(status) + " event belongs");
    }
    pos += data_bytes;
    switch (kind) {
      case 0x9:
        if (second != 0) {
          note_on(time_us, channel, first, second, event_at);
          break;
        }
        [[fallthrough]];
      case 0x8:
        note_off(time_us, channel, first);
        break;
      case 0xB:
        if (first == kSustainController) {
          if (raw_pedals_.size() >= kSmfMaxNotes) {
            fail(SmfProblem::kTooLarge, event_at,
                 "more than " + std::to_string(kSmfMaxNotes) + " sustain pedal events");
          }
          raw_pedals_.push_back(PedalChange{time_us, second >= 64, channel});
        }
        break;
      default:
        break;
    }
  }

  void note_on(std::int64_t onset_us, std::uint8_t channel, std::uint8_t pitch, std::uint8_t velocity,
               std::size_t event_at) {
    std::vector<Note>& notes = performance_.notes;
    if (notes.size() >= kSmfMaxNotes) {
      fail(SmfProblem::kTooLarge, event_at, "more than " + std::to_string(kSmfMaxNotes) + " notes");
    }
    const auto index = static_cast<std::uint32_t>(notes.size());
    notes.push_back(Note{onset_us, 0, pitch, velocity, channel});
    next_open_.push_back(kNone);
    const unsigned key = (unsigned{channel} << 7) | pitch;
    if (tail_[key] == kNone) {
      head_[key] = index;
    } else {
      next_open_[tail_[key]] = index;
    }
    tail_[key] = index;
    ++open_count_;
  }

  void note_off(std::int64_t offset_us, std::uint8_t channel, std::uint8_t pitch) {
    const unsigned key = (unsigned{channel} << 7) | pitch;
    const std::uint32_t index = head_[key];
    if (index == kNone) return;  // an unmatched note-off ends nothing
    Note& note = performance_.notes[index];
    note.duration_us = offset_us - note.onset_us;
    head_[key] = next_open_[index];
    if (head_[key] == kNone) tail_[key] = kNone;
    --open_count_;
  }

  void close_open_notes(std::int64_t end_us) {
    unterminated_notes_ += open_count_;
    for (unsigned key = 0; open_count_ > 0 && key < head_.size(); ++key) {
      for (std::uint32_t index = head_[key]; index != kNone; index = next_open_[index]) {
        Note& note = performance_.notes[index];
        note.duration_us = end_us - note.onset_us;
        --open_count_;
      }
      head_[key] = kNone;
      tail_[key] = kNone;
    }
  }

  // Pedal events of all tracks merged in time order, keeping only changes.
  void keep_pedal_transitions() {
    std::stable_sort(raw_pedals_.begin(), raw_pedals_.end(),
                     [](const PedalChange& a, const PedalChange& b) { return a.time_us < b.time_us; });
    std::array<bool, 16> down{};
    for (const PedalChange& change : raw_pedals_) {
      if (change.down == down[change.channel]) continue;
      down[change.channel] = change.down;
      performance_.pedals.push_back(change);
    }
  }

  const std::uint8_t* data_;
  std::size_t size_;
  unsigned format_ = 0;
  unsigned track_count_ = 0;
  std::optional<TickClock> clock_;
  Performance performance_;
  std::vector<PedalChange> raw_pedals_;
  // Open notes per (channel, pitch): singly linked FIFO lists through next_open_.
  std::array<std::uint32_t, 16 * 128> head_{};
  std::array<std::uint32_t, 16 * 128> tail_{};
  std::vector<std::uint32_t> next_open_;
  std::size_t open_count_ = 0;
  std::size_t unterminated_notes_ = 0;
};

}  // namespace

SmfError::SmfError(SmfProblem problem, std::size_t byte_offset, const std::string& detail,
                   const std::string& source)
    : std::runtime_error(
          (source.empty() ? std::string() : source + ": ") +
          (problem == SmfProblem::kIo ? std::string() : "byte " + std::to_string(byte_offset) + ": ") +
          detail),
      problem_(problem),
      byte_offset_(byte_offset),
      detail_(detail) {}

const char* to_string(SmfProblem problem) {
  switch (problem) {
    case SmfProblem::kIo:
      return "io";
    case SmfProblem::kNotMidi:
      return "not_midi";
    case SmfProblem::kBadHeader:
      return "bad_header";
    case SmfProblem::kBadChunk:
      return "bad_chunk";
    case SmfProblem::kTruncated:
      return "truncated";
    case SmfProblem::kBadVarLen:
      return "bad_varlen";
    case SmfProblem::kRunningStatus:
      return "running_status";
    case SmfProblem::kBadEvent:
      return "bad_event";
    case SmfProblem::kTooLarge:
      return "too_large";
  }
  return "unknown";
}

Performance parse_smf(std::span<const std::uint8_t> bytes, SmfReadReport* report) {
  Reader reader(bytes);
  Performance performance = reader.read();
  if (report != nullptr) report->unterminated_notes = reader.unterminated_notes();
  return performance;
}

namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

SmfError io_error(const std::filesystem::path& path, const std::string& what) {
  return SmfError(SmfProblem::kIo, 0, what + ": " + std::strerror(errno), path.string());
}

}  // namespace

Performance read_smf(const std::filesystem::path& path, SmfReadReport* report) {
  errno = 0;
  const File file(std::fopen(path.c_str(), "rb"));
  if (!file) throw io_error(path, "cannot open");
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error) throw SmfError(SmfProblem::kIo, 0, "cannot read the size: " + error.message(), path.string());
  if (size > kSmfMaxFileBytes) {
    throw SmfError(SmfProblem::kTooLarge, 0,
                   "file of " + std::to_string(size) + " bytes, past the limit of " +
                       std::to_string(kSmfMaxFileBytes) + " bytes",
                   path.string());
  }
  std::vector<std::uint8_t> bytes(size);
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    throw io_error(path, "cannot read");
  try {
    return parse_smf(bytes, report);
  } catch (const SmfError& e) {
    throw SmfError(e.problem(), e.byte_offset(), e.detail(), path.string());
  }
}

namespace {

std::int64_t to_writer_ticks(std::int64_t us) { return (us + kWriterUsPerTick / 2) / kWriterUsPerTick; }

void check_time(std::int64_t us, const char* what, std::size_t index) {
  if (us < 0 || us > kSmfMaxTimeUs) {
    throw std::invalid_argument(std::string(what) + " " + std::to_string(index) + ": time " +
                                std::to_string(us) + " us is outside 0 to " + std::to_string(kSmfMaxTimeUs) +
                                " us");
  }
}

void check_notes(const std::vector<Note>& notes) {
  if (notes.size() > kSmfMaxNotes) {
    throw std::invalid_argument(std::to_string(notes.size()) + " notes, past the limit of " +
                                std::to_string(kSmfMaxNotes));
  }
  for (std::size_t i = 0; i < notes.size(); ++i) {
    const Note& note = notes[i];
    if (note.pitch > 127 || note.channel > 15) {
      throw std::invalid_argument("note " + std::to_string(i) + ": pitch " + std::to_string(note.pitch) +
                                  " or channel " + std::to_string(note.channel) + " out of range");
    }
    if (note.duration_us < 0) {
      throw std::invalid_argument("note " + std::to_string(i) + ": negative duration " +
                                  std::to_string(note.duration_us) + " us");
    }
    check_time(note.onset_us, "note", i);
    check_time(note.offset_us(), "note", i);
  }
}

void check_pedals(const std::vector<PedalChange>& pedals) {
  if (pedals.size() > kSmfMaxNotes) {
    throw std::invalid_argument(std::to_string(pedals.size()) + " pedal changes, past the limit of " +
                                std::to_string(kSmfMaxNotes));
  }
  for (std::size_t i = 0; i < pedals.size(); ++i) {
    if (pedals[i].channel > 15) {
      throw std::invalid_argument("pedal change " + std::to_string(i) + ": channel " +
                                  std::to_string(pedals[i].channel) + " out of range");
    }
    check_time(pedals[i].time_us, "pedal change", i);
  }
}

// At one tick: note-offs, then pedal changes, then note-ons, each zero-length
// note's off right after its own on so that reading back pairs it correctly.
enum class Slot : std::uint8_t { kNoteOff, kPedal, kNoteOn };

struct WriterEvent {
  std::int64_t tick;
  Slot slot;
  std::uint32_t rank;  // order within the slot
  std::array<std::uint8_t, 3> message;
};

void put_varlen(std::vector<std::uint8_t>& out, std::uint32_t value) {
  std::array<std::uint8_t, 4> groups{};
  std::size_t count = 0;
  do {
    groups[count++] = static_cast<std::uint8_t>(value & 0x7F);
    value >>= 7;
  } while (value != 0);
  while (count > 1) out.push_back(static_cast<std::uint8_t>(groups[--count] | 0x80));
  out.push_back(groups[0]);
}

void put_u32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
}

std::vector<WriterEvent> writer_events(const Performance& performance) {
  const std::vector<Note>& notes = performance.notes;
  std::vector<std::int64_t> on_tick(notes.size());
  std::vector<std::int64_t> off_tick(notes.size());
  for (std::size_t i = 0; i < notes.size(); ++i) {
    on_tick[i] = to_writer_ticks(notes[i].onset_us);
    off_tick[i] = on_tick[i] + to_writer_ticks(notes[i].duration_us);
  }
  // Start order; within one (channel, pitch) it also decides which note is cut.
  std::vector<std::uint32_t> order(notes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    return std::tie(on_tick[a], notes[a].onset_us) < std::tie(on_tick[b], notes[b].onset_us);
  });
  std::array<std::uint32_t, 16 * 128> last_of_key;
  last_of_key.fill(0xFFFF'FFFF);
  for (const std::uint32_t i : order) {
    const unsigned key = (unsigned{notes[i].channel} << 7) | notes[i].pitch;
    if (last_of_key[key] != 0xFFFF'FFFF) {
      std::int64_t& previous_off = off_tick[last_of_key[key]];
      previous_off = std::min(previous_off, on_tick[i]);
    }
    last_of_key[key] = i;
  }

  std::vector<WriterEvent> events;
  events.reserve(2 * notes.size() + performance.pedals.size());
  for (std::uint32_t rank = 0; rank < order.size(); ++rank) {
    const Note& note = notes[order[rank]];
    const auto on = static_cast<std::uint8_t>(0x90 | note.channel);
    const auto velocity = static_cast<std::uint8_t>(std::clamp<int>(note.velocity, 1, 127));
    const std::int64_t start = on_tick[order[rank]];
    const std::int64_t stop = off_tick[order[rank]];
    events.push_back(WriterEvent{start, Slot::kNoteOn, 2 * rank, {on, note.pitch, velocity}});
    events.push_back(
        WriterEvent{stop, stop == start ? Slot::kNoteOn : Slot::kNoteOff, 2 * rank + 1, {on, note.pitch, 0}});
  }
  for (std::uint32_t rank = 0; rank < performance.pedals.size(); ++rank) {
    const PedalChange& change = performance.pedals[rank];
    events.push_back(WriterEvent{to_writer_ticks(change.time_us),
                                 Slot::kPedal,
                                 rank,
                                 {static_cast<std::uint8_t>(0xB0 | change.channel), kSustainController,
                                  static_cast<std::uint8_t>(change.down ? 127 : 0)}});
  }
  std::sort(events.begin(), events.end(), [](const WriterEvent& a, const WriterEvent& b) {
    return std::tie(a.tick, a.slot, a.rank) < std::tie(b.tick, b.slot, b.rank);
  });
  return events;
}

}  // namespace

std::vector<std::uint8_t> encode_smf(const Performance& performance) {
  check_notes(performance.notes);
  check_pedals(performance.pedals);
  check_time(std::max<std::int64_t>(performance.length_us, 0), "length", 0);
  const std::vector<WriterEvent> events = writer_events(performance);

  std::vector<std::uint8_t> out = {
      'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, kWriterTicksPerQuarter >> 8, kWriterTicksPerQuarter & 0xFF,
      'M', 'T', 'r', 'k', 0, 0, 0, 0};
  const std::size_t track_at = out.size();
  out.reserve(track_at + 16 + 4 * events.size());
  out.insert(out.end(), {0x00, 0xFF, 0x51, 0x03, kWriterUsPerQuarter >> 16, (kWriterUsPerQuarter >> 8) & 0xFF,
                         kWriterUsPerQuarter & 0xFF});
  std::int64_t tick = 0;
  std::uint8_t running = 0;
  for (const WriterEvent& event : events) {
    put_varlen(out, static_cast<std::uint32_t>(event.tick - tick));
    tick = event.tick;
    if (event.message[0] != running) {
      running = event.message[0];
      out.push_back(running);
    }
    out.push_back(event.message[1]);
    out.push_back(event.message[2]);
  }
  const std::int64_t end_tick = std::max(tick, to_writer_ticks(performance.length_us));
  put_varlen(out, static_cast<std::uint32_t>(end_tick - tick));
  out.insert(out.end(), {0xFF, 0x2F, 0x00});
  put_u32(out, track_at - 4, static_cast<std::uint32_t>(out.size() - track_at));
  return out;
}

void write_smf(const std::filesystem::path& path, const Performance& performance) {
  const std::vector<std::uint8_t> bytes = encode_smf(performance);
  errno = 0;
  File file(std::fopen(path.c_str(), "wb"));
  if (!file) throw io_error(path, "cannot create");
  if (std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    throw io_error(path, "cannot write");
  if (std::fclose(file.release()) != 0) throw io_error(path, "cannot write");
}

}  // namespace tatumflow
