// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/session.hpp"

#include <algorithm>
#include <limits>

#include "tatumflow/daemon/inference_pool.hpp"
#include "tatumflow/daemon/scheduler.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::daemon {

namespace {

constexpr double kNoHold = -std::numeric_limits<double>::infinity();

}  // namespace

SessionTiming session_timing(const SchedulerSettings& scheduler) {
  SessionTiming timing;
  timing.ready_margin_us = std::int64_t{scheduler.ready_margin_ms} * 1000;
  timing.chunk_bars = scheduler.chunk_bars;
  timing.grid_division = scheduler.grid_division;
  timing.lookahead_beats = scheduler.lookahead_beats;
  return timing;
}

PhraseRules phrase_rules(const PhraseEndSettings& phrase_end, double lookahead_beats) {
  PhraseRules rules;
  rules.silence_us = std::int64_t{phrase_end.silence_ms} * 1000;
  rules.bars = phrase_end.bars;
  rules.gesture_cc = phrase_end.gesture_cc;
  rules.min_call_us = std::int64_t{phrase_end.min_call_ms} * 1000;
  rules.pedal_holds_phrase = phrase_end.pedal_holds_phrase;
  rules.lookahead_beats = lookahead_beats;
  return rules;
}

StyleState initial_style_state(const SessionSettings& settings) {
  StyleState state;
  state.controls.temperature = static_cast<float>(settings.temperature);
  state.controls.creativity = static_cast<float>(settings.creativity);
  state.controls.density = static_cast<float>(settings.density);
  state.controls.bars = settings.bars;
  return state;
}

Session::Session(std::uint16_t id, const SessionSettings& settings, const SessionTiming& timing,
                 std::uint8_t output_port, const BarClock& clock, SessionOutputs& outputs, Logger& log,
                 StyleState style)
    : id_(id),
      settings_(settings),
      timing_(timing),
      output_port_(output_port),
      output_channel_(static_cast<std::uint8_t>(std::clamp(settings.output_channel, 1, 16) - 1)),
      clock_(clock),
      outputs_(outputs),
      log_(log),
      detector_(phrase_rules(settings.phrase_end, timing.lookahead_beats)),
      style_(std::move(style)),
      clock_epoch_(clock.epoch()) {}

void Session::reconfigure(const SessionSettings& settings, const SessionTiming& timing,
                          std::uint8_t output_port) {
  const auto channel = static_cast<std::uint8_t>(std::clamp(settings.output_channel, 1, 16) - 1);
  if (output_port != output_port_ || channel != output_channel_) cancel_answer();
  output_port_ = output_port;
  output_channel_ = channel;
  const std::int64_t measured_us = timing_.first_chunk_estimate_us;
  timing_ = timing;
  timing_.first_chunk_estimate_us = measured_us;
  detector_.set_rules(phrase_rules(settings.phrase_end, timing.lookahead_beats));
  settings_ = settings;
}

void Session::on_midi(const MidiEvent& event) {
  if (!event.is_channel_message()) return;
  if (settings_.input_channel != 0 && event.channel() != settings_.input_channel - 1) return;
  const std::int64_t time_us = event.time_us;
  const int kind = event.status() & 0xF0;
  const std::uint8_t data1 = event.bytes[1];
  const std::uint8_t data2 = event.bytes[2];
  if (kind == 0x90 && data2 > 0) {
    tracker_.note_on(time_us, data1, data2);
    if (detector_.on_note_on(time_us, clock_)) recorder_.begin(time_us, tracker_.pedal_down());
    recorder_.note_on(time_us, data1, data2);
  } else if (kind == 0x80 || kind == 0x90) {
    tracker_.note_off(time_us, data1);
    recorder_.note_off(time_us, data1);
  } else if (kind == 0xB0) {
    if (data1 == kSustainPedal) {
      tracker_.pedal(time_us, data2 >= 64);
      recorder_.pedal(time_us, data2 >= 64);
    } else if (data1 == kAllSoundOff || data1 == kAllNotesOff) {
      tracker_.all_notes_off(time_us);
      recorder_.all_notes_off(time_us);
    }
    if (const std::optional<PhraseEnd> end = detector_.on_control(time_us, data1, data2))
      start_answer(*end, time_us);
  }
}

void Session::tick(std::int64_t now_us) {
  if (clock_.epoch() != clock_epoch_) {
    // Bar numbers changed meaning: a call counted in bars and a planned answer are void.
    clock_epoch_ = clock_.epoch();
    detector_.reset();
    recorder_.discard();
    cancel_answer();
    log_.info("session " + settings_.name + ": the bar grid moved; call and answer dropped");
  }
  const std::optional<PhraseEnd> end = detector_.tick(now_us, tracker_, clock_);
  if (end) {
    start_answer(*end, now_us);
  } else if (!detector_.in_call() && recorder_.active()) {
    recorder_.discard();  // too short to answer
  }
}

bool Session::trigger(std::int64_t now_us) {
  const std::optional<PhraseEnd> end = detector_.on_trigger(now_us);
  if (end) start_answer(*end, now_us);
  return end.has_value();
}

void Session::stop_answer() { cancel_answer(); }

bool Session::answering(std::int64_t now_us) const {
  return answer_.plan && (!answer_.done || now_us < clock_.downbeat_us(answer_.plan->end_bar()));
}

const std::optional<AnswerPlan>& Session::plan() const { return answer_.plan; }

AnswerShape Session::shape() const {
  AnswerShape s;
  s.bars = style_.state().controls.bars;
  s.chunk_bars = timing_.chunk_bars;
  s.ready_margin_us = timing_.ready_margin_us;
  s.grid_division = timing_.grid_division;
  return s;
}

void Session::cancel_answer() {
  if (answer_.cancel) answer_.cancel->store(true, std::memory_order_release);
  if (answer_.plan) {
    outputs_.cancel_output(id_);
    ++stats_.cancelled;
  }
  answer_ = Answer{};
  detector_.hold_until_beat(kNoHold);
}

void Session::start_answer(const PhraseEnd& end, std::int64_t now_us) {
  if (!recorder_.active()) return;
  const Performance call = recorder_.finish(std::min(now_us, end.call_end_us));
  if (answering(now_us)) cancel_answer();
  answer_ = Answer{};

  const std::vector<tokens::Token> call_tokens = tokens::encode(call, {.add_sos = true, .add_eos = false});
  const AnswerShape answer_shape = shape();
  // Trading keeps its bar: the model is given that deadline and runs fewer
  // steps to meet it (and the answer still moves on if it cannot). A free
  // phrase end instead waits for the downbeat the first chunk can make, so the
  // model is not rushed into a bar it would miss anyway.
  const std::int64_t ready_us = end.answer_bar ? now_us : now_us + timing_.first_chunk_estimate_us;
  const AnswerPlan plan = plan_answer(clock_, end.answer_bar, end.call_end_us, ready_us, answer_shape);
  const std::int64_t wanted_bar =
      end.answer_bar ? *end.answer_bar : clock_.first_bar_at_or_after(end.call_end_us);
  if (plan.start_bar != wanted_bar) ++stats_.start_moves;

  GenerationRequest request;
  request.session = id_;
  request.generation = next_generation_++;
  request.cancel = std::make_shared<std::atomic<bool>>(false);
  request.call_tokens = call_tokens;
  request.call_length_us = call.length_us;
  request.call_phase_us = end.call_start_us - clock_.downbeat_us(end.first_bar);
  request.beat_us = plan.generator_beat_us;
  request.beats_per_bar = clock_.beats_per_bar();
  request.style = style_.current();
  request.controls = style_.state().controls;
  for (int chunk = 0; chunk < plan.chunk_count(); ++chunk) {
    const ChunkWindow window = chunk_window(plan, chunk, clock_);
    request.chunks.push_back(
        {window.generator_length_us, window.start_us - timing_.ready_margin_us, window.end_us});
  }

  Answer answer;
  answer.generation = request.generation;
  answer.cancel = request.cancel;
  answer.plan = plan;
  answer.submitted_us = now_us;
  if (!outputs_.submit(std::move(request))) {
    ++stats_.busy;
    log_.warning("session " + settings_.name + ": inference queue full; call not answered");
    return;
  }
  answer_ = std::move(answer);
  ++stats_.answers;
  if (detector_.rules().bars > 0) detector_.hold_until_beat(clock_.downbeat_beat(plan.end_bar()) - 1.0);
  log_.debug("session " + settings_.name + ": " + to_string(end.reason) + " ended a call of " +
             std::to_string(call.notes.size()) + " notes; answering bars " + std::to_string(plan.start_bar) +
             "-" + std::to_string(plan.end_bar() - 1));

  const StyleState& style = style_.state();
  if (style.mode == StyleMode::learn && !style.frozen) {
    StyleRequest learn;
    learn.session = id_;
    learn.id = next_style_request_++;
    learn.tokens = call_tokens;
    learn.learn = true;
    if (!outputs_.submit(std::move(learn))) ++stats_.busy;
  }
}

void Session::on_result(ChunkResult result, std::int64_t now_us) {
  if (!answer_.plan || result.generation != answer_.generation || answer_.done) {
    ++stats_.stale_results;
    return;
  }
  if (result.last) answer_.done = true;
  if (result.status == ChunkStatus::failed) {
    ++stats_.failures;  // the worker has logged it
    return;
  }
  if (result.status == ChunkStatus::expired) {
    ++stats_.skipped_chunks;
    return;
  }
  AnswerPlan& plan = *answer_.plan;
  if (result.chunk == 0) {
    // The estimate follows the measured time to the first chunk.
    timing_.first_chunk_estimate_us =
        (3 * timing_.first_chunk_estimate_us + (now_us - answer_.submitted_us)) / 4;
    if (postpone_if_needed(plan, clock_, now_us, timing_.ready_margin_us) > 0) {
      ++stats_.start_moves;
      if (detector_.rules().bars > 0) detector_.hold_until_beat(clock_.downbeat_beat(plan.end_bar()) - 1.0);
    }
  }
  events_.clear();
  const Placement placement = place_chunk(plan, result.chunk, result.notes, clock_, now_us, shape(),
                                          output_channel_, output_port_, events_);
  stats_.late_notes += static_cast<std::uint64_t>(placement.late_notes);
  if (placement.skipped) ++stats_.skipped_chunks;
  if (!answer_.end_scheduled) {
    events_.push_back(answer_end_event(plan, clock_, output_channel_, output_port_));
    answer_.end_scheduled = true;
  }
  outputs_.schedule(events_, id_);
}

void Session::on_style(const StyleResult& result) {
  if (!result.ok) {
    ++stats_.failures;  // the worker has logged it
    return;
  }
  if (result.learn) {
    if (style_.learn(result.style, static_cast<float>(settings_.learn_rate))) {
      ++stats_.learned;
      style_changed_ = true;
    }
    return;
  }
  style_.set_fixed(result.style, result.label);
  style_changed_ = true;
  log_.info("session " + settings_.name + ": style set from " + result.label);
}

void Session::load_style(const std::string& source, const std::filesystem::path& styles_dir) {
  const std::filesystem::path path(source);
  const std::string extension = path.extension().string();
  if (source == "learn") {
    style_.set_learning();
  } else if (extension == ".style") {
    style_.set_fixed(load_style_state(path).current, source);
  } else if (extension == ".mid" || extension == ".midi") {
    StyleRequest request;
    request.session = id_;
    request.id = next_style_request_++;
    request.tokens = tokens::encode(read_smf(path));
    request.label = source;
    if (!outputs_.submit(std::move(request)))
      throw StyleError(source + ": the inference queue is full; try again");
    return;  // applied in on_style
  } else if (is_valid_name(source)) {
    style_.set_fixed(load_style_state(styles_dir / (source + ".style")).current, source);
  } else {
    throw StyleError("style '" + source +
                     "' is not \"learn\", a bundled style name, or a .style, .mid or .midi file");
  }
  style_changed_ = true;
}

StyleBank& Session::edit_style() {
  style_changed_ = true;
  return style_;
}

void Session::save_style_if_changed(const std::filesystem::path& path) {
  if (!style_changed_) return;
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error)
    throw StyleError(path.parent_path().string() + ": cannot create the directory: " + error.message());
  save_style_state(path, style_.state());
  style_changed_ = false;
}

bool SchedulerOutputs::submit(WorkItem item) { return pool_.submit(std::move(item)); }

std::size_t SchedulerOutputs::schedule(std::span<const MidiEvent> events, std::uint16_t source) {
  return scheduler_.schedule(events, source);
}

void SchedulerOutputs::cancel_output(std::uint16_t source) { scheduler_.cancel(source); }

std::filesystem::path style_state_path(const std::filesystem::path& state_dir,
                                       const std::string& session_name) {
  return state_dir / "sessions" / (session_name + ".style");
}

}  // namespace tatumflow::daemon
