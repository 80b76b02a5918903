// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/tokenizer.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace tatumflow::tokens {

namespace {

struct Event {
  std::int64_t step;
  int order;  // pedal changes before notes on the same step, then by pitch
  int pitch;
  int velocity_bin;
  int duration_steps;
  bool pedal_down;
};

// The tokenizer clock: advancing it emits <T> for each chunk boundary crossed,
// then one TIME_SHIFT for the rest.
class Clock {
 public:
  // Returns true when the move crossed into a new chunk.
  bool advance_to(std::int64_t step, std::vector<Token>& out) {
    bool crossed = false;
    while (step / kStepsPerChunk > now_ / kStepsPerChunk) {
      out.push_back(kChunk);
      now_ = (now_ / kStepsPerChunk + 1) * kStepsPerChunk;
      crossed = true;
    }
    if (step > now_) {
      out.push_back(static_cast<Token>(kTimeShiftBase + (step - now_) - 1));
      now_ = step;
    }
    return crossed;
  }

 private:
  std::int64_t now_ = 0;
};

}  // namespace

std::int64_t time_to_steps(std::int64_t time_us) {
  if (time_us <= 0) return 0;
  return (time_us + kStepUs / 2) / kStepUs;
}

int fold_pitch(int pitch) {
  while (pitch < kMinPitch) pitch += 12;
  while (pitch > kMaxPitch) pitch -= 12;
  return pitch;
}

Kind kind_of(Token token) {
  if (token == kPad) return Kind::Pad;
  if (token == kSos) return Kind::Sos;
  if (token == kEos) return Kind::Eos;
  if (token == kMask) return Kind::Mask;
  if (token == kChunk) return Kind::Chunk;
  if (token < kNoteOnBase) return Kind::TimeShift;
  if (token < kNoteOffBase) return Kind::NoteOn;
  if (token < kVelocityBase) return Kind::NoteOff;
  if (token < kDurationBase) return Kind::Velocity;
  if (token < kSustainOn) return Kind::Duration;
  if (token == kSustainOn) return Kind::SustainOn;
  if (token == kSustainOff) return Kind::SustainOff;
  return Kind::Invalid;
}

int value_of(Token token) {
  switch (kind_of(token)) {
    case Kind::TimeShift:
      return token - kTimeShiftBase + 1;
    case Kind::NoteOn:
      return token - kNoteOnBase + kMinPitch;
    case Kind::NoteOff:
      return token - kNoteOffBase + kMinPitch;
    case Kind::Velocity:
      return token - kVelocityBase;
    case Kind::Duration:
      return token - kDurationBase + 1;
    default:
      return 0;
  }
}

std::string to_string(Token token) {
  const int value = value_of(token);
  switch (kind_of(token)) {
    case Kind::Pad:
      return "<PAD>";
    case Kind::Sos:
      return "<SOS>";
    case Kind::Eos:
      return "<EOS>";
    case Kind::Mask:
      return "<MASK>";
    case Kind::Chunk:
      return "<T>";
    case Kind::TimeShift:
      return "TIME_SHIFT_" + std::to_string(value * 10) + "ms";
    case Kind::NoteOn:
      return "NOTE_ON_" + std::to_string(value);
    case Kind::NoteOff:
      return "NOTE_OFF_" + std::to_string(value);
    case Kind::Velocity:
      return "VELOCITY_" + std::to_string(value);
    case Kind::Duration:
      return "DURATION_" + std::to_string(value * 10) + "ms";
    case Kind::SustainOn:
      return "SUSTAIN_ON";
    case Kind::SustainOff:
      return "SUSTAIN_OFF";
    case Kind::Invalid:
      break;
  }
  return "<INVALID_" + std::to_string(token) + ">";
}

std::vector<Token> encode(const Performance& performance, const EncodeOptions& options) {
  std::vector<Event> events;
  events.reserve(performance.notes.size() + performance.pedals.size());
  for (const Note& note : performance.notes) {
    const auto duration_steps =
        std::clamp<std::int64_t>(time_to_steps(note.duration_us), 1, kMaxDurationSteps);
    events.push_back({time_to_steps(note.onset_us), 1, fold_pitch(note.pitch), velocity_bin(note.velocity),
                      static_cast<int>(duration_steps), false});
  }
  // Pedal changes across channels collapse to one state; only the state at the
  // end of each 10 ms step counts, so a same-step on/off pair cancels.
  std::vector<PedalChange> pedals = performance.pedals;
  std::stable_sort(pedals.begin(), pedals.end(),
                   [](const PedalChange& a, const PedalChange& b) { return a.time_us < b.time_us; });
  bool emitted_down = false;
  for (std::size_t i = 0; i < pedals.size(); ++i) {
    const std::int64_t step = time_to_steps(pedals[i].time_us);
    if (i + 1 < pedals.size() && time_to_steps(pedals[i + 1].time_us) == step) continue;
    if (pedals[i].down == emitted_down) continue;
    emitted_down = pedals[i].down;
    events.push_back({step, 0, 0, 0, 0, emitted_down});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.step, a.order, a.pitch) < std::tie(b.step, b.order, b.pitch);
  });

  std::vector<Token> out;
  out.reserve(events.size() * 4 + events.size() / 8 + 4);
  if (options.add_sos) out.push_back(kSos);
  Clock clock;
  int last_velocity_bin = -1;
  for (const Event& event : events) {
    // Every chunk restates the velocity so a window starting at <T> decodes alone.
    if (clock.advance_to(event.step, out)) last_velocity_bin = -1;
    if (event.order == 0) {
      out.push_back(event.pedal_down ? kSustainOn : kSustainOff);
      continue;
    }
    if (event.velocity_bin != last_velocity_bin) {
      out.push_back(static_cast<Token>(kVelocityBase + event.velocity_bin));
      last_velocity_bin = event.velocity_bin;
    }
    out.push_back(static_cast<Token>(kNoteOnBase + event.pitch - kMinPitch));
    out.push_back(static_cast<Token>(kDurationBase + event.duration_steps - 1));
  }
  if (options.add_eos) out.push_back(kEos);
  return out;
}

std::int64_t end_time_us(std::span<const Token> tokens) {
  std::int64_t now_steps = 0;
  for (Token token : tokens) {
    const Kind kind = kind_of(token);
    if (kind == Kind::Chunk) now_steps = (now_steps / kStepsPerChunk + 1) * kStepsPerChunk;
    if (kind == Kind::TimeShift) now_steps += value_of(token);
  }
  return now_steps * kStepUs;
}

Performance decode(std::span<const Token> tokens, std::uint8_t channel) {
  Performance performance;
  std::int64_t now_steps = 0;
  int velocity_bin_now = velocity_bin(64);
  // Indices of notes still waiting for a DURATION or NOTE_OFF, in onset order.
  std::vector<std::size_t> open;
  bool pedal_down = false;

  for (Token token : tokens) {
    const Kind kind = kind_of(token);
    if (kind == Kind::Eos) break;
    const int value = value_of(token);
    switch (kind) {
      case Kind::Chunk:
        now_steps = (now_steps / kStepsPerChunk + 1) * kStepsPerChunk;
        break;
      case Kind::TimeShift:
        now_steps += value;
        break;
      case Kind::Velocity:
        velocity_bin_now = value;
        break;
      case Kind::NoteOn:
        open.push_back(performance.notes.size());
        performance.notes.push_back({now_steps * kStepUs, -1, static_cast<std::uint8_t>(value),
                                     bin_velocity(velocity_bin_now), channel});
        break;
      case Kind::Duration:
        if (!open.empty()) {
          performance.notes[open.back()].duration_us = value * kStepUs;
          open.pop_back();
        }
        break;
      case Kind::NoteOff: {
        auto it = std::find_if(open.begin(), open.end(),
                               [&](std::size_t i) { return performance.notes[i].pitch == value; });
        if (it != open.end()) {
          Note& note = performance.notes[*it];
          note.duration_us = std::max<std::int64_t>(now_steps * kStepUs - note.onset_us, kStepUs);
          open.erase(it);
        }
        break;
      }
      case Kind::SustainOn:
      case Kind::SustainOff:
        if ((kind == Kind::SustainOn) != pedal_down) {
          pedal_down = !pedal_down;
          performance.pedals.push_back({now_steps * kStepUs, pedal_down, channel});
        }
        break;
      default:
        break;
    }
  }
  for (std::size_t i : open) performance.notes[i].duration_us = kDefaultDurationUs;
  performance.length_us = now_steps * kStepUs;
  performance.sort();
  if (pedal_down) performance.pedals.push_back({performance.length_us, false, channel});
  return performance;
}

}  // namespace tatumflow::tokens
