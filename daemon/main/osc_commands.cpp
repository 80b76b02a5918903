// SPDX-License-Identifier: GPL-3.0-or-later
// The OSC command set, modelled on SuperCollider's server: every command
// answers /tf/done <cmd> or /tf/fail <cmd> <message> (handlers throw; the
// server's error handler turns that into /tf/fail), queries answer
// <cmd>.reply first.
#include <algorithm>
#include <string>

#include "daemon_app.hpp"
#include "tatumflow/daemon/style.hpp"

namespace tatumflow::daemon {
namespace {

float checked(float value, float low, float high, const char* what) {
  if (!(value >= low && value <= high))
    throw std::invalid_argument(std::string(what) + " must be in [" + std::to_string(low) + ", " +
                                std::to_string(high) + "] (got " + std::to_string(value) + ")");
  return value;
}

}  // namespace

void DaemonApp::reply_done(const OscRequest& request) {
  OscMessageOut done("/tf/done");
  done.add(request.message.path());
  osc_->reply(request, done);
}

void DaemonApp::send_status(const OscRequest& request) {
  const SchedulerStats scheduler = scheduler_->stats();
  std::uint64_t late_notes = 0;
  std::uint64_t answers = 0;
  for (const auto& [id, slot] : sessions_) {
    late_notes += slot.session->stats().late_notes;
    answers += slot.session->stats().answers;
  }
  // sessions, tempo, clock source, inference queue depth, inference ms per
  // chunk, late output events, dropped late notes, real-time priority, answers,
  // compute device ("none" for the echo engine), fell back to the CPU,
  // decoding steps per forward pass.
  const ComputeStatus compute = generator_->compute_status();
  OscMessageOut reply("/tf/status.reply");
  reply.add(static_cast<std::int32_t>(sessions_.size()))
      .add(static_cast<float>(clock_.tempo_bpm()))
      .add(follower_ && clock_.locked() ? "midi" : "internal")
      .add(static_cast<std::int32_t>(pool_->depth()))
      .add(static_cast<float>(inference_ms_))
      .add(static_cast<std::int32_t>(scheduler.late))
      .add(static_cast<std::int32_t>(late_notes))
      .add(realtime_ ? 1 : 0)
      .add(static_cast<std::int32_t>(answers))
      .add(compute.device)
      .add(compute.fell_back ? 1 : 0)
      .add(static_cast<float>(compute.steps_per_pass));
  osc_->reply(request, reply);
}

void DaemonApp::open_osc() {
  OscServerConfig oc;
  oc.bind_address = config_.osc.bind_address;
  oc.port = static_cast<std::uint16_t>(config_.osc.port);
  oc.reply_port = static_cast<std::uint16_t>(config_.osc.reply_port);
  osc_ = std::make_unique<OscServer>(io_, oc);
  osc_->set_error_handler([this](const OscFailure& failure) {
    log_.warning("OSC " + (failure.path.empty() ? std::string("packet") : failure.path) + ": " +
                 failure.message);
    OscMessageOut fail("/tf/fail");
    fail.add(failure.path.empty() ? std::string_view("?") : std::string_view(failure.path))
        .add(failure.message);
    osc_->send(failure.reply_to, fail);
  });
  // A command: `action` runs, then /tf/done; a throw becomes /tf/fail.
  const auto command = [this](const std::string& path, const std::string& types, auto action) {
    osc_->add_method(path, types, [this, action](const OscRequest& request) {
      action(request);
      reply_done(request);
    });
  };
  command("/tf/version", "", [this](const OscRequest& r) {
    OscMessageOut reply("/tf/version.reply");
    reply.add("tatumflowd").add(kDaemonVersion);
    osc_->reply(r, reply);
  });
  command("/tf/status", "", [this](const OscRequest& r) { send_status(r); });
  command("/tf/notify", "*", [this](const OscRequest& r) {
    const bool on = r.message.size() == 0 || r.message.arg_bool(0);
    const auto it = std::find(listeners_.begin(), listeners_.end(), r.reply_to);
    if (on && it == listeners_.end()) listeners_.push_back(r.reply_to);
    if (!on && it != listeners_.end()) listeners_.erase(it);
  });
  command("/tf/session/list", "", [this](const OscRequest& r) {
    OscMessageOut reply("/tf/session/list.reply");
    for (const auto& [id, slot] : sessions_) reply.add(slot.settings.name);
    osc_->reply(r, reply);
  });
  // /tf/session/new <name> [<template session>]: a session on the template's
  // ports and settings (the first session's by default).
  command("/tf/session/new", "*", [this](const OscRequest& r) {
    if (r.message.size() < 1 || r.message.size() > 2)
      throw std::invalid_argument("expects <name> [<template session>]");
    if (sessions_.empty() && config_.sessions.empty())
      throw std::runtime_error("no session to copy ports from");
    SessionSettings settings = r.message.size() == 2
                                   ? session_named(std::string(r.message.arg_string(1))).settings
                               : sessions_.empty() ? config_.sessions.front()
                                                   : sessions_.begin()->second.settings;
    settings.name = std::string(r.message.arg_string(0));
    add_session(std::move(settings));
  });
  command("/tf/session/free", "s",
          [this](const OscRequest& r) { free_session(session_named(std::string(r.message.arg_string(0)))); });
  command("/tf/tempo", "f", [this](const OscRequest& r) { set_tempo(r.message.arg_double(0)); });
  command("/tf/panic", "", [this](const OscRequest&) {
    for (auto& [id, slot] : sessions_) slot.session->stop_answer();
    scheduler_->panic();
  });
  // /tf/synced comes once the inference queue is empty (style files encoded).
  osc_->add_method("/tf/sync", "", [this](const OscRequest& r) {
    sync_waiters_.push_back(r.reply_to);
    reply_done(r);
  });
  command("/tf/quit", "",
          [this](const OscRequest&) { boost::asio::post(io_, [this] { shutdown("/tf/quit"); }); });
}

void DaemonApp::register_session_commands(const std::string& name) {
  // A freed and re-created name keeps its handlers: they look the session up.
  if (!registered_names_.insert(name).second) return;
  const std::string base = "/tf/" + name;
  const auto command = [this, name, base](const std::string& suffix, const std::string& types, auto action) {
    osc_->add_method(base + suffix, types, [this, name, action](const OscRequest& request) {
      action(session_named(name), request);
      reply_done(request);
    });
  };
  const auto style_dir = [this] { return std::filesystem::path(config_.daemon.styles_dir); };
  command("/style/load", "s", [style_dir](SessionSlot& s, const OscRequest& r) {
    s.session->load_style(std::string(r.message.arg_string(0)), style_dir());
  });
  command("/style/learn", "",
          [](SessionSlot& s, const OscRequest&) { s.session->edit_style().set_learning(); });
  command("/style/freeze", "i",
          [](SessionSlot& s, const OscRequest& r) { s.session->edit_style().freeze(r.message.arg_bool(0)); });
  command("/style/save", "s", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().save_slot(std::string(r.message.arg_string(0)));
  });
  command("/style/recall", "s", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().recall_slot(std::string(r.message.arg_string(0)));
  });
  command("/style/delete", "s", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().delete_slot(std::string(r.message.arg_string(0)));
  });
  command("/style/morph", "ssf", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().morph(std::string(r.message.arg_string(0)), std::string(r.message.arg_string(1)),
                                  checked(r.message.arg_float(2), 0.0f, 1.0f, "morph t"));
  });
  command("/style/corners", "ssss", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().set_corners(
        {std::string(r.message.arg_string(0)), std::string(r.message.arg_string(1)),
         std::string(r.message.arg_string(2)), std::string(r.message.arg_string(3))});
  });
  command("/style/pad", "ff", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().set_pad(r.message.arg_float(0), r.message.arg_float(1));
  });
  // The current latent, mean then log variance, as 32-bit floats (exact).
  command("/style/latent", "", [this, base](SessionSlot& s, const OscRequest& r) {
    OscMessageOut reply(base + "/style/latent.reply");
    const StyleLatent& latent = s.session->style().current();
    for (float v : latent.mean) reply.add(v);
    for (float v : latent.log_variance) reply.add(v);
    osc_->reply(r, reply);
  });
  command("/temperature", "f", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().controls().temperature =
        checked(r.message.arg_float(0), 0.05f, 5.0f, "temperature");
  });
  command("/creativity", "f", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().controls().creativity = checked(r.message.arg_float(0), 0.0f, 1.0f, "creativity");
  });
  command("/density", "f", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().controls().density = checked(r.message.arg_float(0), 0.1f, 4.0f, "density");
  });
  command("/bars", "i", [](SessionSlot& s, const OscRequest& r) {
    s.session->edit_style().controls().bars =
        static_cast<int>(checked(static_cast<float>(r.message.arg_int(0)), 1.0f, 32.0f, "bars"));
  });
  // One clock for every session: a session's tempo is the daemon's.
  command("/tempo", "f", [this](SessionSlot&, const OscRequest& r) { set_tempo(r.message.arg_double(0)); });
  command("/trigger", "", [](SessionSlot& s, const OscRequest&) {
    if (!s.session->trigger(steady_now_us())) throw std::runtime_error("no call long enough to answer");
  });
  command("/stop", "", [](SessionSlot& s, const OscRequest&) { s.session->stop_answer(); });
}

}  // namespace tatumflow::daemon
