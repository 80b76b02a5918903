// SPDX-License-Identifier: GPL-3.0-or-later
// A private JACK dummy server per test (48 kHz, 64-frame periods): a unique
// name, exported as JACK_DEFAULT_SERVER so every client of the test (RtMidi,
// our JACK client, Python) finds it, killed at the end. It runs with real-time
// scheduling where the system allows it, as on stage; without it, a busy
// machine makes the dummy driver fall hundreds of milliseconds behind and skip
// cycles, which the timing tests tolerate only as counted late events. Set
// TATUMFLOW_TEST_JACK_NO_REALTIME=1 to see that case.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace tatumflow::test {

inline bool have_program(const char* path) { return access(path, X_OK) == 0; }

class JackTestServer {
 public:
  static constexpr int kSampleRateHz = 48000;
  static constexpr int kPeriodFrames = 64;

  JackTestServer() {
    static std::atomic<int> counter{0};
    name_ = "tf" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    log_path_ = std::filesystem::temp_directory_path() / (name_ + ".jackd.log");
    const std::string rate = std::to_string(kSampleRateHz);
    const std::string period = std::to_string(kPeriodFrames);
    realtime_ = std::getenv("TATUMFLOW_TEST_JACK_NO_REALTIME") == nullptr &&
                std::system("chrt -f 1 true > /dev/null 2>&1") == 0;
    // Synchronous mode: a cycle ends when every client is done, so a
    // client-to-client connection never slips a period.
    std::vector<std::string> args{"/usr/bin/jackd",
                                  "-n",
                                  name_,
                                  "--sync",
                                  realtime_ ? "--realtime" : "--no-realtime",
                                  "-d",
                                  "dummy",
                                  "-r",
                                  rate,
                                  "-p",
                                  period};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    setenv("JACK_DEFAULT_SERVER", name_.c_str(), 1);
    const std::string wait = "/usr/bin/jack_wait -s " + name_ + " -w -t 10 > /dev/null 2>&1";
    ready_ = pid_ > 0 && std::system(wait.c_str()) == 0;
  }

  ~JackTestServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 300 && waitpid(pid_, &status, WNOHANG) == 0; ++i) usleep(10'000);
      if (waitpid(pid_, &status, WNOHANG) == 0) {  // stuck shutting down
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
    }
    std::error_code ignored;
    std::filesystem::remove(log_path_, ignored);
  }

  JackTestServer(const JackTestServer&) = delete;
  JackTestServer& operator=(const JackTestServer&) = delete;

  [[nodiscard]] bool ready() const { return ready_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] bool realtime() const { return realtime_; }

 private:
  std::string name_;
  std::filesystem::path log_path_;
  pid_t pid_ = -1;
  bool realtime_ = false;
  bool ready_ = false;
};

// Starts the server for one test; skips the test when jackd is not installed.
#define TATUMFLOW_START_JACK(server)                          \
  if (!::tatumflow::test::have_program("/usr/bin/jackd") ||   \
      !::tatumflow::test::have_program("/usr/bin/jack_wait")) \
    GTEST_SKIP() << "jackd is not installed";                 \
  ::tatumflow::test::JackTestServer server;                   \
  ASSERT_TRUE(server.ready()) << "jackd -n " << server.name() << " did not come up"

}  // namespace tatumflow::test
