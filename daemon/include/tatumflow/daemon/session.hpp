// SPDX-License-Identifier: GPL-3.0-or-later
// One player's session: their input (note and pedal tracking, call capture),
// the phrase detector, the style and controls, and the answer in progress,
// from the phrase end through generation to beat-aligned events for the
// scheduler. Device-free: MIDI arrives as MidiEvents, generation and output
// go through SessionOutputs, time arrives as arguments.
//
// One thread: the event loop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/daemon/answer_plan.hpp"
#include "tatumflow/daemon/bar_clock.hpp"
#include "tatumflow/daemon/call_recorder.hpp"
#include "tatumflow/daemon/config.hpp"
#include "tatumflow/daemon/generation.hpp"
#include "tatumflow/daemon/log.hpp"
#include "tatumflow/daemon/phrase_detector.hpp"
#include "tatumflow/daemon/style.hpp"
#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow::daemon {

// What a session needs from the daemon around it: the inference queue and
// the scheduler (SchedulerOutputs below binds the real ones).
class SessionOutputs {
 public:
  virtual ~SessionOutputs() = default;
  // False when the inference queue is full. // event-loop thread
  virtual bool submit(WorkItem item) = 0;
  // Returns how many were queued. // event-loop thread
  virtual std::size_t schedule(std::span<const MidiEvent> events, std::uint16_t source) = 0;
  // Drops the source's pending output and releases what it has sounding. // event-loop thread
  virtual void cancel_output(std::uint16_t source) = 0;
};

struct SessionStats {
  std::uint64_t answers = 0;         // generation requests submitted
  std::uint64_t busy = 0;            // calls not answered: inference queue full
  std::uint64_t stale_results = 0;   // results of an older generation, dropped
  std::uint64_t late_notes = 0;      // dropped: could not start in time
  std::uint64_t skipped_chunks = 0;  // expired, or every note late
  std::uint64_t start_moves = 0;     // answers moved to a later downbeat
  std::uint64_t failures = 0;        // generation or style errors
  std::uint64_t cancelled = 0;       // answers cut short (new answer, stop, clock jump)
  std::uint64_t learned = 0;         // calls folded into the learned style
};

struct SessionTiming {
  std::int64_t ready_margin_us = 5'000;
  int chunk_bars = 1;
  int grid_division = 12;
  double lookahead_beats = 1.0;
  // First guess of the time from phrase end to the first chunk; then measured.
  std::int64_t first_chunk_estimate_us = 250'000;
};

[[nodiscard]] SessionTiming session_timing(const SchedulerSettings& scheduler);  // any thread
[[nodiscard]] PhraseRules phrase_rules(const PhraseEndSettings& phrase_end,
                                       double lookahead_beats);  // any thread
// A fresh style state with the session's configured controls (used when no
// saved state exists). // any thread
[[nodiscard]] StyleState initial_style_state(const SessionSettings& settings);

class Session {
 public:
  // `clock`, `outputs` and `log` must outlive the session. Output events go to
  // scheduler port `output_port` on settings.output_channel. // event-loop thread (all)
  Session(std::uint16_t id, const SessionSettings& settings, const SessionTiming& timing,
          std::uint8_t output_port, const BarClock& clock, SessionOutputs& outputs, Logger& log,
          StyleState style);

  // One input event from this session's port (the channel filter is applied here).
  void on_midi(const MidiEvent& event);
  // Timers: the silence and bar rules, clock jumps. Call every few ms.
  void tick(std::int64_t now_us);
  // The OSC trigger: ends the call now. False when there is no call long enough.
  bool trigger(std::int64_t now_us);
  // Silences the answer in progress.
  void stop_answer();
  // A result routed here by its session id.
  void on_result(ChunkResult result, std::int64_t now_us);
  void on_style(const StyleResult& result);

  // Sets the style from a config/OSC source: "learn", a bundled name (found as
  // <styles_dir>/<name>.style), a .style file or a .mid/.midi file (encoded by
  // the model; applied when the result arrives). Throws StyleError (or
  // SmfError) naming the problem.
  void load_style(const std::string& source, const std::filesystem::path& styles_dir);
  [[nodiscard]] const StyleBank& style() const { return style_; }
  // For OSC style commands and controls; marks the state for saving.
  [[nodiscard]] StyleBank& edit_style();
  // Saves the style state to `path` if it changed since the last save.
  // Throws StyleError.
  void save_style_if_changed(const std::filesystem::path& path);

  // A reloaded config: input channel, output, phrase rules (from the next
  // call), learn rate and timing (the measured first-chunk time is kept). A
  // new output port or channel first stops the answer in progress, so no note
  // is left sounding where the answer was playing.
  void reconfigure(const SessionSettings& settings, const SessionTiming& timing, std::uint8_t output_port);
  [[nodiscard]] const PhraseDetector& detector() const { return detector_; }

  [[nodiscard]] std::uint16_t id() const { return id_; }
  [[nodiscard]] const std::string& name() const { return settings_.name; }
  [[nodiscard]] std::uint8_t output_port() const { return output_port_; }
  [[nodiscard]] std::uint8_t output_channel() const { return output_channel_; }
  [[nodiscard]] bool in_call() const { return detector_.in_call(); }
  // An answer is being generated or has events still to play.
  [[nodiscard]] bool answering(std::int64_t now_us) const;
  [[nodiscard]] const SessionStats& stats() const { return stats_; }
  [[nodiscard]] const std::optional<AnswerPlan>& plan() const;
  [[nodiscard]] std::int64_t first_chunk_estimate_us() const { return timing_.first_chunk_estimate_us; }

 private:
  struct Answer {
    std::uint64_t generation = 0;
    std::shared_ptr<std::atomic<bool>> cancel;
    std::optional<AnswerPlan> plan;
    std::int64_t submitted_us = 0;
    bool end_scheduled = false;
    bool done = false;  // last result seen
  };

  void start_answer(const PhraseEnd& end, std::int64_t now_us);
  void cancel_answer();
  [[nodiscard]] AnswerShape shape() const;

  std::uint16_t id_;
  SessionSettings settings_;
  SessionTiming timing_;
  std::uint8_t output_port_;
  std::uint8_t output_channel_;
  const BarClock& clock_;
  SessionOutputs& outputs_;
  Logger& log_;
  NoteTracker tracker_;
  CallRecorder recorder_;
  PhraseDetector detector_;
  StyleBank style_;
  bool style_changed_ = false;
  std::uint64_t clock_epoch_;
  std::uint64_t next_generation_ = 1;
  std::uint64_t next_style_request_ = 1;
  Answer answer_;
  std::vector<MidiEvent> events_;  // reused between chunks
  SessionStats stats_;
};

// SessionOutputs over the real inference pool and scheduler.
class InferencePool;
class Scheduler;
class SchedulerOutputs final : public SessionOutputs {
 public:
  SchedulerOutputs(InferencePool& pool, Scheduler& scheduler) : pool_(pool), scheduler_(scheduler) {}
  bool submit(WorkItem item) override;  // event-loop thread
  std::size_t schedule(std::span<const MidiEvent> events,
                       std::uint16_t source) override;  // event-loop thread
  void cancel_output(std::uint16_t source) override;    // event-loop thread

 private:
  InferencePool& pool_;
  Scheduler& scheduler_;
};

// <state_dir>/sessions/<name>.style // any thread
[[nodiscard]] std::filesystem::path style_state_path(const std::filesystem::path& state_dir,
                                                     const std::string& session_name);

}  // namespace tatumflow::daemon
