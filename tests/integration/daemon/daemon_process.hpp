// SPDX-License-Identifier: GPL-3.0-or-later
// Helpers for tests that run the real tatumflowd: the daemon as a subprocess
// (echo engine, a private state directory, --set overrides), an OSC client
// socket that receives the daemon's replies, and a JACK test client whose
// ports the daemon connects to.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../io/jack_test_server.hpp"
#include "tatumflow/protocol/jack_midi.hpp"
#include "tatumflow/protocol/midi_event.hpp"
#include "tatumflow/protocol/osc.hpp"

namespace tatumflow::test {

inline const std::filesystem::path kDaemonPath =
    std::filesystem::path(TATUMFLOW_BINARY_DIR) / "bin" / "tatumflowd";
inline const std::filesystem::path kConfigPath =
    std::filesystem::path(TATUMFLOW_SOURCE_DIR) / "configs" / "tatumflowd.toml";

// A UDP port free right now (bound and released).
inline std::uint16_t free_udp_port() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// Receives the daemon's OSC replies on a port of its own; sends raw datagrams.
class OscClient {
 public:
  OscClient() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    timeval timeout{0, 20'000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~OscClient() { close(fd_); }
  OscClient(const OscClient&) = delete;
  OscClient& operator=(const OscClient&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }

  void send_raw(std::uint16_t to_port, const std::vector<std::uint8_t>& bytes) const {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(to_port);
    sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&address), sizeof address);
  }
  void send(std::uint16_t to_port, const OscMessageOut& message) const {
    send_raw(to_port, message.serialise());
  }

  // The next message whose path is `path` (others are kept for later), or
  // nothing after `timeout`.
  std::optional<OscMessageIn> wait_for(const std::string& path,
                                       std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    return wait_matching([&](const OscMessageIn& m) { return m.path() == path; }, timeout);
  }
  // The next message `wanted` accepts; others are kept for later.
  template <typename Predicate>
  std::optional<OscMessageIn> wait_matching(
      Predicate wanted, std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (wanted(*it)) {
        OscMessageIn found = std::move(*it);
        kept_.erase(it);
        return found;
      }
    }
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      std::uint8_t buffer[65536];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      OscMessageIn message = OscMessageIn::parse(buffer, static_cast<std::size_t>(n));
      if (wanted(message)) return message;
      kept_.push_back(std::move(message));
    }
    return std::nullopt;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<OscMessageIn> kept_;
};

// tatumflowd as a child process with the echo engine, its OSC server on a free
// port replying to `client`, state in `state_dir`; `config` instead of the
// shipped one, and its log (stderr) into `log` when given.
class DaemonProcess {
 public:
  DaemonProcess(const std::filesystem::path& state_dir, std::uint16_t reply_port,
                const std::vector<std::string>& extra_overrides,
                const std::filesystem::path& config = kConfigPath, const std::filesystem::path& log = {})
      : osc_port_(free_udp_port()) {
    std::vector<std::string> args{kDaemonPath.string(), "--config", config.string()};
    const std::vector<std::string> overrides{"daemon.engine=echo", "daemon.state_dir=" + state_dir.string(),
                                             "midi.api=jack", "osc.port=" + std::to_string(osc_port_),
                                             "osc.reply_port=" + std::to_string(reply_port)};
    for (const auto& list : {overrides, extra_overrides}) {
      for (const std::string& o : list) {
        args.emplace_back("--set");
        args.push_back(o);
      }
    }
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (!log.empty())
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                       0644);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~DaemonProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0; }
  [[nodiscard]] std::uint16_t osc_port() const { return osc_port_; }

  // True once /tf/status answers.
  bool wait_ready(OscClient& client, std::chrono::seconds timeout = std::chrono::seconds(15)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (!alive()) return false;
      client.send(osc_port_, OscMessageOut("/tf/status"));
      if (client.wait_for("/tf/status.reply", std::chrono::milliseconds(200))) return true;
    }
    return false;
  }
  [[nodiscard]] bool alive() {
    if (exited_) return false;
    if (waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    return !exited_;
  }
  void signal(int number) const { kill(pid_, number); }
  // The exit status, or -1 when it did not exit normally within `timeout`.
  int wait_exit(std::chrono::seconds timeout = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (alive() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!exited_) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

 private:
  std::uint16_t osc_port_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

// The player's side: a JACK client whose "out" plays into the daemon and whose
// "in" records what the daemon sends, frame-stamped.
class PlayerRig {
 public:
  PlayerRig() : client_(config(), &received_), sender_(client_.make_sender()) {}

  // --set overrides connecting session 0 to this client.
  [[nodiscard]] std::vector<std::string> session_overrides() const {
    return {"session.0.input=" + client_.client_name() + ":out",
            "session.0.output=" + client_.client_name() + ":in"};
  }
  bool play(const MidiEvent& event) { return sender_.schedule(event); }
  // Moves what arrived into events().
  void pump() {
    MidiEvent event;
    while (received_.try_pop(event)) events_.push_back(event);
  }
  [[nodiscard]] const std::vector<MidiEvent>& events() const { return events_; }
  // Time of the first message with `status` (e.g. 0xFB, the daemon's clock
  // starting on a downbeat), waiting up to `timeout`.
  std::optional<std::int64_t> wait_for_status(std::uint8_t status, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      pump();
      for (const MidiEvent& e : events_)
        if (e.status() == status) return e.time_us;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
  }
  [[nodiscard]] const JackMidiClient& client() const { return client_; }

 private:
  static JackMidiConfig config() {
    JackMidiConfig c;
    c.client_name = "tftest";
    c.input_port = "in";
    c.output_port = "out";
    return c;
  }
  MidiEventQueue received_{8192, 2};
  JackMidiClient client_;
  JackMidiClient::Sender sender_;
  std::vector<MidiEvent> events_;
};

// The whole of a text file (a daemon's log), empty when it cannot be read.
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits up to `timeout` for `needle` to appear in the file at `path`.
inline bool wait_for_text(const std::filesystem::path& path, const std::string& needle,
                          std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (read_text(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

inline MidiEvent midi3(std::int64_t time_us, std::uint8_t status, std::uint8_t d1, std::uint8_t d2) {
  return MidiEvent{time_us, {status, d1, d2}, 3, 0};
}
inline bool is_note_on(const MidiEvent& e) { return (e.status() & 0xF0) == 0x90 && e.bytes[2] > 0; }
inline bool is_note_off(const MidiEvent& e) {
  return (e.status() & 0xF0) == 0x80 || ((e.status() & 0xF0) == 0x90 && e.bytes[2] == 0);
}

// Plays a 4-bar call from `start_us` at `beat_us`: one note per beat for 15
// beats (a scale-wise line), each held half a beat.
inline void play_call(PlayerRig& rig, std::int64_t start_us, std::int64_t beat_us) {
  for (int b = 0; b < 15; ++b) {
    const std::int64_t t = start_us + b * beat_us;
    const auto pitch = static_cast<std::uint8_t>(60 + (b * 2) % 12);
    rig.play(midi3(t, 0x90, pitch, 90));
    rig.play(midi3(t + beat_us / 2, 0x80, pitch, 0));
  }
}

#define TATUMFLOW_REQUIRE_DAEMON()                                     \
  ASSERT_TRUE(std::filesystem::exists(::tatumflow::test::kDaemonPath)) \
      << ::tatumflow::test::kDaemonPath << " is not built (cmake --build <dir> --target tatumflowd)"

}  // namespace tatumflow::test
