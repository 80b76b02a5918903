// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/protocol/osc_server.hpp"

#include <lo/lo_lowlevel.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <cstring>

#include "tatumflow/protocol/midi_event.hpp"

namespace tatumflow {

namespace {

constexpr int kMaxBundleDepth = 8;
constexpr std::size_t kBundleHeaderBytes = 16;  // "#bundle\0" + timetag

std::uint32_t read_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::int64_t system_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string endpoint_text(const boost::asio::ip::udp::endpoint& endpoint) {
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

}  // namespace

OscServer::OscServer(boost::asio::io_context& io, OscServerConfig config)
    : config_(std::move(config)), socket_(io), timer_(io), alive_(std::make_shared<bool>(true)) {
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(config_.bind_address, error);
  if (error) throw OscError("OSC bind address '" + config_.bind_address + "' is not an IP address");
  const boost::asio::ip::udp::endpoint endpoint(address, config_.port);
  socket_.open(endpoint.protocol(), error);
  if (!error) socket_.bind(endpoint, error);
  if (!error) socket_.non_blocking(true, error);
  if (error) {
    throw OscError("OSC server cannot bind UDP " + endpoint_text(endpoint) + ": " + error.message());
  }
  receive();
}

OscServer::~OscServer() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  timer_.cancel();
}

void OscServer::add_method(std::string path, std::string typespec, Handler handler) {
  if (path.empty() || path[0] != '/')
    throw OscError("OSC method path '" + path + "' does not start with '/'");
  if (path.find_first_of(" #*,?[]{}") != std::string::npos) {
    throw OscError("OSC method path '" + path + "' contains a character reserved for patterns");
  }
  check_osc_typespec(typespec);
  methods_.push_back(Method{std::move(path), std::move(typespec), std::move(handler)});
}

bool OscServer::send(const boost::asio::ip::udp::endpoint& to, const OscMessageOut& message) {
  const std::vector<std::uint8_t> bytes = message.serialise();
  boost::system::error_code error;
  socket_.send_to(boost::asio::buffer(bytes), to, 0, error);
  if (error) {
    ++stats_.send_failures;
    return false;
  }
  ++stats_.sent;
  return true;
}

boost::asio::ip::udp::endpoint OscServer::reply_endpoint(const boost::asio::ip::udp::endpoint& sender) const {
  return {sender.address(), config_.reply_port != 0 ? config_.reply_port : sender.port()};
}

void OscServer::receive() {
  socket_.async_receive_from(
      boost::asio::buffer(buffer_), sender_,
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error, std::size_t size) {
        if (error == boost::asio::error::operation_aborted || alive.expired()) return;
        if (!error) handle_packet(size);
        receive();
      });
}

void OscServer::fail(const boost::asio::ip::udp::endpoint& sender, std::string path, std::string message) {
  ++stats_.failed;
  if (error_handler_)
    error_handler_(OscFailure{sender, reply_endpoint(sender), std::move(path), std::move(message)});
}

void OscServer::parse(const std::uint8_t* data, std::size_t size, std::int64_t due_us, int depth,
                      std::vector<Timed>& out) {
  if (size == 0 || data[0] != '#') {
    out.push_back(Timed{due_us, OscMessageIn::parse(data, size)});
    return;
  }
  if (size < kBundleHeaderBytes || std::memcmp(data, "#bundle", 8) != 0) {
    throw OscError("OSC packet of " + std::to_string(size) + " bytes starts with '#' but is not a bundle");
  }
  if (size % 4 != 0) throw OscError("OSC bundle size " + std::to_string(size) + " is not a multiple of 4");
  if (depth >= kMaxBundleDepth) {
    throw OscError("OSC bundles nested deeper than " + std::to_string(kMaxBundleDepth) + " levels");
  }
  const OscTimetag tag{read_u32(data + 8), read_u32(data + 12)};
  if (!tag.immediate()) {
    const std::int64_t now_us = steady_now_us();
    const std::int64_t delay_us = osc_timetag_to_unix_us(tag) - system_now_us();
    if (delay_us > std::chrono::duration_cast<std::chrono::microseconds>(config_.max_bundle_delay).count()) {
      throw OscError("OSC bundle timetag lies " + std::to_string(delay_us / 1'000'000) +
                     " s in the future (limit " + std::to_string(config_.max_bundle_delay.count()) + " s)");
    }
    // +1 us: the timetag was rounded to whole microseconds, and early is never allowed.
    const std::int64_t own_due_us = now_us + delay_us + 1;
    if (own_due_us <= now_us) ++stats_.late_bundles;
    // A nested bundle may not run before its parent (OSC 1.0).
    due_us = std::max(due_us, own_due_us);
  }
  std::size_t offset = kBundleHeaderBytes;
  for (int element = 1; offset < size; ++element) {
    const std::string where =
        "OSC bundle element " + std::to_string(element) + " at byte " + std::to_string(offset);
    if (offset + 4 > size) throw OscError(where + ": size field runs past the end of the bundle");
    const std::size_t element_size = read_u32(data + offset);
    if (element_size == 0 || element_size % 4 != 0) {
      throw OscError(where + ": size " + std::to_string(element_size) + " is not a positive multiple of 4");
    }
    if (element_size > size - offset - 4) {
      throw OscError(where + ": size " + std::to_string(element_size) + " but only " +
                     std::to_string(size - offset - 4) + " bytes remain");
    }
    try {
      parse(data + offset + 4, element_size, due_us, depth + 1, out);
    } catch (const OscError& error) {
      throw OscError(where + ": " + error.what());
    }
    offset += 4 + element_size;
  }
}

void OscServer::handle_packet(std::size_t size) {
  ++stats_.received;
  const boost::asio::ip::udp::endpoint sender = sender_;
  std::vector<Timed> messages;
  try {
    parse(buffer_.data(), size, 0, 0, messages);
  } catch (const OscError& error) {
    fail(sender, {}, std::string("malformed packet from ") + endpoint_text(sender) + ": " + error.what());
    return;
  }
  const std::int64_t now_us = steady_now_us();
  std::size_t future = 0;
  for (const Timed& timed : messages) future += timed.due_us > now_us ? 1 : 0;
  if (future > 0 && scheduled_.size() + future > config_.max_pending_bundles) {
    fail(sender, {},
         "OSC packet from " + endpoint_text(sender) + " refused: " + std::to_string(scheduled_.size()) +
             " scheduled messages are already waiting (limit " + std::to_string(config_.max_pending_bundles) +
             ")");
    return;
  }
  for (Timed& timed : messages) {
    if (timed.due_us <= now_us) {
      dispatch(timed.message, sender);
    } else {
      scheduled_.push(Scheduled{timed.due_us, next_order_++,
                                std::make_shared<OscMessageIn>(std::move(timed.message)), sender});
    }
  }
  if (future > 0) arm_timer();
}

void OscServer::dispatch(const OscMessageIn& message, const boost::asio::ip::udp::endpoint& sender) {
  bool matched = false;
  bool handled = false;
  std::string mismatch;
  // By index, with the handler copied: a handler may add methods (a new
  // session registers its addresses), which can move methods_.
  const std::size_t count = methods_.size();
  for (std::size_t i = 0; i < count; ++i) {
    if (!lo_pattern_match(methods_[i].path.c_str(), message.path().c_str())) continue;
    matched = true;
    std::string why = osc_typespec_mismatch(message, methods_[i].typespec);
    if (!why.empty()) {
      mismatch = std::move(why);
      continue;
    }
    handled = true;
    ++stats_.dispatched;
    const Handler handler = methods_[i].handler;
    try {
      handler(OscRequest{message, sender, reply_endpoint(sender)});
    } catch (const std::exception& error) {
      fail(sender, message.path(), error.what());
    }
  }
  if (!matched) {
    fail(sender, message.path(), "no handler for " + message.path());
  } else if (!handled) {
    fail(sender, message.path(), mismatch);
  }
}

void OscServer::arm_timer() {
  timer_.expires_at(
      std::chrono::steady_clock::time_point(std::chrono::microseconds(scheduled_.top().due_us)));
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
    if (error || alive.expired()) return;
    run_due();
  });
}

void OscServer::run_due() {
  const std::int64_t now_us = steady_now_us();
  while (!scheduled_.empty() && scheduled_.top().due_us <= now_us) {
    const Scheduled next = scheduled_.top();
    scheduled_.pop();
    dispatch(*next.message, next.sender);
  }
  if (!scheduled_.empty()) arm_timer();
}

}  // namespace tatumflow
