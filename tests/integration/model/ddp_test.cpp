// SPDX-License-Identifier: GPL-3.0-or-later
// Distributed data-parallel training: two `tatumflow train` processes
// rendezvous over TCP (c10d TCPStore + Gloo), average gradients every step, and
// must end with bit-identical weights although each rank draws its own data.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../../support/model_fixtures.hpp"
#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {
namespace {

namespace fs = std::filesystem;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof(address);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

pid_t launch(const std::vector<std::string>& arguments, const std::vector<std::string>& environment,
             const fs::path& output) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  for (const std::string& variable : environment) ::putenv(const_cast<char*>(variable.c_str()));
  const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  std::vector<char*> argv;
  for (const std::string& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// Exit status, or -1 after killing a process that outlived the deadline.
int wait_for(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(DataParallel, TwoRanksEndWithIdenticalWeights) {
  const fs::path cli = fs::path(TATUMFLOW_BINARY_DIR) / "bin" / "tatumflow";
  ASSERT_TRUE(fs::exists(cli)) << "build the tatumflow target first: " << cli;
  testing::TempDir dir("tf-ddp");
  const fs::path cache = testing::build_synthetic_cache(dir.path(), 6, 30.0);
  {
    std::ofstream model(dir.path() / "model.toml");
    model << to_toml(testing::tiny_model_config());
    std::ofstream train(dir.path() / "train.toml");
    train << "model_config = \"model.toml\"\nseed = 3\n"
          << "[data]\ncache = \"" << cache.string()
          << "\"\nwindow_tokens = 48\nreference_tokens = 32\nbatch_size = 2\n"
          << "[optim]\nlr = 3e-3\nwarmup_steps = 1\ngrad_accum = 2\nsteps = 4\n"
          << "[checkpoint]\nout = \"" << (dir.path() / "out").string() << "\"\nevery = 2\n"
          << "[log]\nevery = 1\nval_every = 2\nval_batches = 1\n";
  }
  const std::string port = std::to_string(free_port());
  const std::vector<std::string> arguments = {
      cli.string(), "train", "--config", (dir.path() / "train.toml").string(), "--no-progress", "--no-plot",
      "--threads",  "1",     "--json"};
  std::vector<pid_t> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(launch(arguments,
                           {"RANK=" + std::to_string(rank), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
                            "MASTER_PORT=" + port, "OPENBLAS_NUM_THREADS=1"},
                           dir.path() / ("rank" + std::to_string(rank) + ".log")));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  std::vector<nlohmann::json> reports;
  for (int rank = 0; rank < 2; ++rank) {
    const int status = wait_for(ranks[static_cast<std::size_t>(rank)], deadline);
    const std::string log = read_text(dir.path() / ("rank" + std::to_string(rank) + ".log"));
    ASSERT_EQ(status, 0) << "rank " << rank << " output:\n" << log;
    reports.push_back(nlohmann::json::parse(log.substr(log.find('{'))));
  }
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(reports[static_cast<std::size_t>(rank)]["rank"], rank);
    EXPECT_EQ(reports[static_cast<std::size_t>(rank)]["world_size"], 2);
    EXPECT_EQ(reports[static_cast<std::size_t>(rank)]["last_step"], 4);
  }
  EXPECT_EQ(reports[0]["weights_digest"], reports[1]["weights_digest"]);
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "checkpoint.tfc"));  // written by rank 0

  // Alone, rank 0 would have seen only its own half of the data: other weights.
  const int alone =
      wait_for(launch(arguments, {"OPENBLAS_NUM_THREADS=1", "WORLD_SIZE=1"}, dir.path() / "alone.log"),
               std::chrono::steady_clock::now() + std::chrono::minutes(2));
  const std::string log = read_text(dir.path() / "alone.log");
  ASSERT_EQ(alone, 0) << log;
  EXPECT_NE(nlohmann::json::parse(log.substr(log.find('{')))["weights_digest"], reports[0]["weights_digest"]);
}

}  // namespace
}  // namespace tatumflow::model
