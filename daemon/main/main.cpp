// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflowd: the live-performance daemon. See configs/tatumflowd.toml and
// systemd/tatumflowd.service.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "daemon_app.hpp"

int main(int argc, char** argv) {
  CLI::App cli{"tatumflowd: trades phrases with a player over MIDI, controlled over OSC"};
  std::string config_path = "/etc/tatumflow/tatumflowd.toml";
  std::vector<std::string> overrides;
  cli.add_option("-c,--config", config_path, "TOML configuration file")->capture_default_str();
  cli.add_option("--set", overrides, "override a key: --set osc.port=9000 (repeatable)");
#ifdef TATUMFLOW_HAVE_MODEL
  constexpr const char* kEngines = " (engines: model, echo)";
#else
  constexpr const char* kEngines = " (engines: echo)";
#endif
  cli.set_version_flag("--version",
                       std::string("tatumflowd ") + tatumflow::daemon::kDaemonVersion + kEngines);
  cli.footer(
      "Signals: SIGTERM or SIGINT release every sounding note, save the sessions' styles and exit; "
      "SIGHUP re-reads the config file (with the same --set overrides) and applies what can change "
      "while running (tempo, sessions, styles, phrase ends, osc.notify, log level), logging the keys "
      "that need a restart. See configs/tatumflowd.toml for every key.");
  CLI11_PARSE(cli, argc, argv);
  try {
    tatumflow::daemon::DaemonApp app(config_path, overrides);
    return app.run();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "<3>tatumflowd: %s\n", error.what());
    return 1;
  }
}
