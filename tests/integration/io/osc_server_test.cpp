// SPDX-License-Identifier: GPL-3.0-or-later
// The OSC server on a real UDP socket, driven by liblo's oscsend and by
// python3-liblo: coercion, replies to a fixed reply port, /fail for malformed
// packets and mismatched arguments, patterns, and timetagged bundles that run
// at their time and not before.
#include "tatumflow/protocol/osc_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace tatumflow {
namespace {

using namespace std::chrono_literals;
using boost::asio::ip::udp;

// Runs a shell command on another thread; its stdout and exit status come back through the future.
struct CommandResult {
  int status;
  std::string output;
};
std::future<CommandResult> run_async(std::string command) {
  return std::async(std::launch::async, [command = std::move(command)] {
    CommandResult result{-1, {}};
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return result;
    std::array<char, 512> chunk;
    while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), pipe) != nullptr)
      result.output += chunk.data();
    result.status = pclose(pipe);
    return result;
  });
}

// Runs the loop until `done` or the timeout.
template <class Predicate>
bool run_until(boost::asio::io_context& io, Predicate done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_for(2ms);
    io.restart();
  }
  return true;
}

std::uint16_t free_udp_port() {
  boost::asio::io_context io;
  udp::socket socket(io, udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return socket.local_endpoint().port();
}

bool have_python_liblo() { return std::system("/usr/bin/python3 -c 'import liblo' 2> /dev/null") == 0; }

std::int64_t system_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class OscServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/oscsend", X_OK) != 0) GTEST_SKIP() << "no oscsend (liblo-tools)";
    reply_port_ = free_udp_port();
    server_.emplace(io_, OscServerConfig{.bind_address = "127.0.0.1", .port = 0, .reply_port = reply_port_});
    port_ = server_->local_endpoint().port();
    server_->set_error_handler([this](const OscFailure& failure) {
      failures_.push_back(failure);
      // As the daemon will: answer /fail <path> <message> on the reply port.
      OscMessageOut fail("/fail");
      fail.add(failure.path.empty() ? std::string_view("?") : std::string_view(failure.path))
          .add(failure.message);
      server_->send(failure.reply_to, fail);
    });
  }

  std::string oscsend(const std::string& arguments) {
    return "/usr/bin/oscsend 127.0.0.1 " + std::to_string(port_) + " " + arguments;
  }

  boost::asio::io_context io_;
  std::optional<OscServer> server_;
  std::uint16_t port_ = 0;
  std::uint16_t reply_port_ = 0;
  std::vector<OscFailure> failures_;
};

TEST_F(OscServerTest, BindsOnlyWhereConfigured) {
  EXPECT_EQ(server_->local_endpoint().address().to_string(), "127.0.0.1");
  try {
    OscServer second(io_, {.bind_address = "127.0.0.1", .port = port_});
    FAIL() << "bound the same port twice";
  } catch (const OscError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot bind UDP 127.0.0.1:" + std::to_string(port_)),
              std::string::npos)
        << error.what();
  }
  EXPECT_THROW(OscServer(io_, {.bind_address = "localhost"}), OscError);
  EXPECT_THROW(server_->add_method("tf/x", "i", [](const OscRequest&) {}), OscError);
  EXPECT_THROW(server_->add_method("/tf/*", "i", [](const OscRequest&) {}), OscError);
  EXPECT_THROW(server_->add_method("/tf/x", "ib", [](const OscRequest&) {}), OscError);
}

TEST_F(OscServerTest, IntsAndFloatsAreAcceptedForEachOther) {
  std::vector<double> tempi;
  std::vector<int> bars;
  server_->add_method("/tf/tempo", "f",
                      [&](const OscRequest& r) { tempi.push_back(r.message.arg_float(0)); });
  server_->add_method("/tf/bars", "i", [&](const OscRequest& r) { bars.push_back(r.message.arg_int(0)); });

  for (const char* command : {"/tf/tempo i 100", "/tf/tempo f 96.5", "/tf/bars f 4.0", "/tf/bars i 8",
                              "/tf/bars s four", "/tf/b* i 2"}) {
    auto sent = run_async(oscsend(command));
    ASSERT_EQ(sent.get().status, 0) << command;
    const std::size_t seen = tempi.size() + bars.size() + failures_.size();
    ASSERT_TRUE(run_until(
        io_, [&] { return tempi.size() + bars.size() + failures_.size() > seen; }, 3s))
        << command;
  }
  EXPECT_EQ(tempi, (std::vector<double>{100.0, 96.5}));
  EXPECT_EQ(bars, (std::vector<int>{4, 8, 2}));  // float 4.0 taken as int; the pattern /tf/b* hit /tf/bars
  ASSERT_EQ(failures_.size(), 1U);
  EXPECT_EQ(failures_[0].path, "/tf/bars");
  EXPECT_EQ(failures_[0].message, "argument 1 of /tf/bars is a string 's', expected a number 'i'");
  EXPECT_EQ(server_->stats().dispatched, 5U);
}

TEST_F(OscServerTest, RepliesAndFailuresGoToTheReplyPort) {
  if (!have_python_liblo()) GTEST_SKIP() << "no python3-liblo";
  std::uint16_t request_port = 0;
  server_->add_method("/tf/status", "", [&](const OscRequest& request) {
    request_port = request.sender.port();
    OscMessageOut reply("/tf/status.reply");
    reply.add(std::int32_t{3}).add(0.5f).add("internal");
    server_->reply(request, reply);
  });
  server_->add_method("/tf/handler_throws", "*", [](const OscRequest& request) {
    static_cast<void>(request.message.arg_int(0));  // the message has no arguments
  });
  // The tablet listens on the reply port; it sends from other sockets. The
  // last packet is malformed: an int32 type tag with no data.
  auto tablet = run_async("/usr/bin/python3 - " + std::to_string(port_) + " " + std::to_string(reply_port_) +
                          " <<'EOF'\n" +
                          R"(import liblo, socket, sys
server_port, reply_port = int(sys.argv[1]), int(sys.argv[2])
listener = liblo.Server(reply_port)
got = []
listener.add_method(None, None, lambda path, args: got.append((path, args)))
sender = liblo.Server()  # its own socket and port
target = liblo.Address('127.0.0.1', server_port)
sender.send(target, '/tf/status')
sender.send(target, '/tf/unknown', 1)
sender.send(target, '/tf/handler_throws')
raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
raw.sendto(b'/tf/note\0\0\0\0,i\0\0', ('127.0.0.1', server_port))
for _ in range(100):
    listener.recv(20)
    if len(got) == 4:
        break
for path, args in got:
    print(path, '|'.join(str(a) for a in args))
EOF
)");
  ASSERT_TRUE(run_until(
      io_, [&] { return tablet.wait_for(0s) == std::future_status::ready; }, 10s));
  const CommandResult result = tablet.get();
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(request_port, 0);
  EXPECT_NE(request_port, reply_port_);
  EXPECT_NE(result.output.find("/tf/status.reply 3|0.5|internal\n"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("/fail /tf/unknown|no handler for /tf/unknown\n"), std::string::npos)
      << result.output;
  EXPECT_NE(
      result.output.find("/fail /tf/handler_throws|missing argument 1 of /tf/handler_throws (an integer): "
                         "the message has 0 arguments\n"),
      std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("/fail ?|malformed packet from 127.0.0.1:"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find(": argument 1 ('i') of /tf/note at byte 16: needs 4 bytes, only 0 left in the "
                               "16-byte message\n"),
            std::string::npos)
      << result.output;
}

TEST_F(OscServerTest, TimetaggedBundlesRunAtTheirTimeNotBefore) {
  if (!have_python_liblo()) GTEST_SKIP() << "no python3-liblo";
  struct Run {
    int pitch;
    std::int64_t system_us;
  };
  std::vector<Run> runs;
  server_->add_method("/tf/note", "i", [&](const OscRequest& request) {
    runs.push_back({request.message.arg_int(0), system_now_us()});
  });
  // Bundles: 400 ms ahead (pitch 60) holding a nested one 100 ms later still
  // (61; built by hand, pyliblo cannot nest), immediate (62), 1 s in the past
  // (63). Prints the two future timetags.
  auto sender = run_async("/usr/bin/python3 - " + std::to_string(port_) + " <<'EOF'\n" +
                          R"(import liblo, socket, struct, sys
port = int(sys.argv[1])
def note(pitch):
    return b'/tf/note\0\0\0\0,i\0\0' + struct.pack('>i', pitch)
def bundle(tag, *elements):
    seconds = int(tag)
    head = b'#bundle\0' + struct.pack('>II', seconds, int((tag - seconds) * 2**32))
    return head + b''.join(struct.pack('>i', len(e)) + e for e in elements)
now = liblo.time()
raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
raw.sendto(bundle(now + 0.4, note(60), bundle(now + 0.5, note(61))), ('127.0.0.1', port))
target = liblo.Address('127.0.0.1', port)
liblo.send(target, liblo.Bundle(liblo.Message('/tf/note', 62)))
liblo.send(target, liblo.Bundle(now - 1.0, liblo.Message('/tf/note', 63)))
print(repr(now + 0.4), repr(now + 0.5))
EOF
)");
  ASSERT_TRUE(run_until(
      io_, [&] { return sender.wait_for(0s) == std::future_status::ready; }, 10s));
  const CommandResult result = sender.get();
  ASSERT_EQ(result.status, 0) << result.output;
  double tag60 = 0;
  double tag61 = 0;
  ASSERT_EQ(std::sscanf(result.output.c_str(), "%lf %lf", &tag60, &tag61), 2) << result.output;
  const auto unix_us = [](double ntp_seconds) { return std::llround((ntp_seconds - 2'208'988'800.0) * 1e6); };

  ASSERT_TRUE(run_until(
      io_, [&] { return runs.size() == 4; }, 3s))
      << runs.size() << " ran; first failure: " << (failures_.empty() ? "none" : failures_[0].message);
  EXPECT_EQ(runs[0].pitch, 62);  // immediate and late ones at once, in arrival order
  EXPECT_EQ(runs[1].pitch, 63);
  EXPECT_EQ(runs[2].pitch, 60);
  EXPECT_EQ(runs[3].pitch, 61);
  const std::int64_t lateness60_us = runs[2].system_us - unix_us(tag60);
  const std::int64_t lateness61_us = runs[3].system_us - unix_us(tag61);
  std::printf("bundle lateness: %lld us and %lld us after their timetags\n",
              static_cast<long long>(lateness60_us), static_cast<long long>(lateness61_us));
  RecordProperty("bundle_lateness_us", std::to_string(std::max(lateness60_us, lateness61_us)));
  EXPECT_GE(lateness60_us, 0);  // never early
  EXPECT_GE(lateness61_us, 0);
  EXPECT_LT(lateness60_us, 20'000);
  EXPECT_LT(lateness61_us, 20'000);
  EXPECT_EQ(server_->stats().late_bundles, 1U);
  EXPECT_EQ(server_->pending_bundles(), 0U);
  EXPECT_TRUE(failures_.empty());
}

TEST_F(OscServerTest, MalformedBundlesAreRejectedWhole) {
  // A bundle whose second element overruns: the first element must not run.
  int runs = 0;
  server_->add_method("/a", "", [&](const OscRequest&) { ++runs; });
  std::vector<std::uint8_t> bundle{'#', 'b', 'u', 'n', 'd', 'l', 'e', 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const std::vector<std::uint8_t> message{'/', 'a', 0, 0, ',', 0, 0, 0};
  bundle.insert(bundle.end(), {0, 0, 0, 8});
  bundle.insert(bundle.end(), message.begin(), message.end());
  bundle.insert(bundle.end(), {0, 0, 0, 64});
  bundle.insert(bundle.end(), message.begin(), message.end());
  udp::socket client(io_, udp::endpoint(udp::v4(), 0));
  client.send_to(boost::asio::buffer(bundle), server_->local_endpoint());
  ASSERT_TRUE(run_until(
      io_, [&] { return !failures_.empty(); }, 2s));
  EXPECT_EQ(runs, 0);
  EXPECT_NE(failures_[0].message.find("OSC bundle element 2 at byte 28: size 64 but only 8 bytes remain"),
            std::string::npos)
      << failures_[0].message;
  EXPECT_EQ(failures_[0].reply_to.port(), reply_port_);
}

}  // namespace
}  // namespace tatumflow
