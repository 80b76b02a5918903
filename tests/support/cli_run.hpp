// SPDX-License-Identifier: GPL-3.0-or-later
// Runs the built `tatumflow` CLI for tests that check a command end to end:
// its stdout, its stderr and its exit status.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tatumflow::testing {

struct CliResult {
  int status = -1;  // exit status; -1 when it did not exit normally
  std::string out;
  std::string err;
};

inline std::filesystem::path cli_path() {
  return std::filesystem::path(TATUMFLOW_BINARY_DIR) / "bin" / "tatumflow";
}

// `arguments` is pasted into a shell command: keep it to plain words and paths without spaces.
inline CliResult run_cli(const std::string& arguments, const std::filesystem::path& scratch) {
  const std::filesystem::path err_file = scratch / "cli-stderr.txt";
  const std::string command = cli_path().string() + " " + arguments + " 2> " + err_file.string();
  CliResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream text;
  text << in.rdbuf();
  result.err = text.str();
  return result;
}

}  // namespace tatumflow::testing
