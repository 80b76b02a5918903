// SPDX-License-Identifier: GPL-3.0-or-later
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <vector>

#include "command.hpp"
#include "tatumflow/engine/corpus.hpp"

namespace tatumflow::cli {

namespace {
std::vector<CommandSetup>& registry() {
  static std::vector<CommandSetup> setups;
  return setups;
}

void print_lines(const nlohmann::json& value, const std::string& prefix) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items())
      print_lines(item, prefix.empty() ? key : prefix + "." + key);
  } else {
    std::cout << prefix << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << '\n';
  }
}
}  // namespace

bool register_command(CommandSetup setup) {
  registry().push_back(std::move(setup));
  return true;
}

void print_report(const nlohmann::json& report, bool json) {
  if (json) {
    std::cout << report.dump(2) << std::endl;
  } else {
    print_lines(report, "");
    std::cout.flush();
  }
}

bool is_midi_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".mid" || ext == ".midi";
}

std::string bundled_model_path() { return (dataset::repo_dir() / "models/tatumflow.tfc").string(); }

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return (value != nullptr && *value != '\0') ? std::string(value) : fallback;
}

}  // namespace tatumflow::cli

int main(int argc, char** argv) {
  CLI::App app{"tatumflow: train, run and evaluate the TatumFlow jazz piano model"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tatumflow 0.1.0");
  for (const auto& setup : tatumflow::cli::registry()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tatumflow: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
