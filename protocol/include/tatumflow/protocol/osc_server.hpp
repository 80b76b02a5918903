// SPDX-License-Identifier: GPL-3.0-or-later
// OSC over UDP on a Boost.Asio loop. liblo 0.31 cannot bind to one address
// (its servers listen on every interface), so the socket is ours and liblo
// only (de)serialises. Handlers are registered by address with a typespec;
// every malformed packet, unknown address, type mismatch or handler exception
// reaches the error handler with a precise message (the daemon answers /fail).
// Bundles run at their timetag on an Asio timer, never early; immediate or
// past timetags run at once. A packet is checked whole before any of it runs.
//
// Everything, handlers included, runs on the thread running the io_context.
// // event-loop thread throughout
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "tatumflow/protocol/osc.hpp"

namespace tatumflow {

struct OscServerConfig {
  std::string bind_address = "127.0.0.1";  // "0.0.0.0" or "::" for every interface
  std::uint16_t port = 57120;              // 0: any free port (see local_endpoint)
  std::uint16_t reply_port = 0;  // replies go to the sender's host on this port; 0: the sender's port
  std::size_t max_pending_bundles = 1024;       // more waiting bundles are refused with an error
  std::chrono::seconds max_bundle_delay{3600};  // a timetag further ahead is refused with an error
};

struct OscRequest {
  const OscMessageIn& message;
  boost::asio::ip::udp::endpoint sender;
  boost::asio::ip::udp::endpoint reply_to;  // sender's address, reply port
};

struct OscFailure {
  boost::asio::ip::udp::endpoint sender;
  boost::asio::ip::udp::endpoint reply_to;
  std::string path;     // the message's address when known, else empty
  std::string message;  // what went wrong and where
};

struct OscServerStats {
  std::uint64_t received = 0;      // datagrams
  std::uint64_t dispatched = 0;    // messages handed to handlers
  std::uint64_t failed = 0;        // errors reported
  std::uint64_t late_bundles = 0;  // bundles whose timetag had passed on arrival
  std::uint64_t sent = 0;
  std::uint64_t send_failures = 0;  // socket buffer full or unreachable
};

class OscServer {
 public:
  using Handler = std::function<void(const OscRequest&)>;
  using ErrorHandler = std::function<void(const OscFailure&)>;

  // Binds the socket and starts receiving. Throws OscError when the address is
  // not an IP address or the port cannot be bound.
  OscServer(boost::asio::io_context& io, OscServerConfig config);
  ~OscServer();
  OscServer(const OscServer&) = delete;
  OscServer& operator=(const OscServer&) = delete;

  // Calls `handler` for messages whose address matches `path` (the incoming
  // address may be an OSC pattern such as /tf/*) and whose arguments fit
  // `typespec` (see check_osc_typespec). Throws OscError for a bad path or
  // typespec.
  void add_method(std::string path, std::string typespec, Handler handler);
  void set_error_handler(ErrorHandler handler) { error_handler_ = std::move(handler); }

  // Sends from the server's socket without blocking; false (counted) when the
  // datagram could not be sent.
  bool send(const boost::asio::ip::udp::endpoint& to, const OscMessageOut& message);
  bool reply(const OscRequest& request, const OscMessageOut& message) {
    return send(request.reply_to, message);
  }

  [[nodiscard]] boost::asio::ip::udp::endpoint local_endpoint() const { return socket_.local_endpoint(); }
  [[nodiscard]] std::size_t pending_bundles() const { return scheduled_.size(); }
  [[nodiscard]] const OscServerStats& stats() const { return stats_; }

 private:
  struct Method {
    std::string path;
    std::string typespec;
    Handler handler;
  };
  // A message of a packet with the steady time it is due (0: now).
  struct Timed {
    std::int64_t due_us;
    OscMessageIn message;
  };
  struct Scheduled {
    std::int64_t due_us;
    std::uint64_t order;                          // arrival order among equal due times
    std::shared_ptr<const OscMessageIn> message;  // shared: priority_queue::top() cannot move out
    boost::asio::ip::udp::endpoint sender;
    friend bool operator>(const Scheduled& a, const Scheduled& b) {
      return a.due_us != b.due_us ? a.due_us > b.due_us : a.order > b.order;
    }
  };

  void receive();
  void handle_packet(std::size_t size);
  // Parses a message or bundle into `out`, checking all of it. Throws OscError.
  void parse(const std::uint8_t* data, std::size_t size, std::int64_t due_us, int depth,
             std::vector<Timed>& out);
  void dispatch(const OscMessageIn& message, const boost::asio::ip::udp::endpoint& sender);
  void fail(const boost::asio::ip::udp::endpoint& sender, std::string path, std::string message);
  void arm_timer();
  void run_due();
  [[nodiscard]] boost::asio::ip::udp::endpoint reply_endpoint(
      const boost::asio::ip::udp::endpoint& sender) const;

  OscServerConfig config_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::steady_timer timer_;
  std::array<std::uint8_t, 65536> buffer_{};
  boost::asio::ip::udp::endpoint sender_;
  std::vector<Method> methods_;
  ErrorHandler error_handler_;
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> scheduled_;
  std::uint64_t next_order_ = 0;
  OscServerStats stats_;
  std::shared_ptr<bool> alive_;  // completions arriving after destruction see it expired
};

}  // namespace tatumflow
