// SPDX-License-Identifier: GPL-3.0-or-later
// Each `tatumflow` subcommand lives in its own cmd_*.cpp and registers itself
// at static-initialisation time, so adding a command touches no other file.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace tatumflow::cli {

using CommandSetup = std::function<void(CLI::App& app)>;

// Returns true so it can initialise a namespace-scope constant.
bool register_command(CommandSetup setup);

// Prints `report` as indented JSON when `json` is set, else as "key: value" lines.
void print_report(const nlohmann::json& report, bool json);

// .mid or .midi, in any letter case.
bool is_midi_file(const std::filesystem::path& path);

// The bundled CPU model, found from the executable's checkout: the default
// checkpoint of every command that loads one.
std::string bundled_model_path();

// Environment variable or fallback, for paths like TATUMFLOW_DATA.
std::string env_or(const char* name, const std::string& fallback);

}  // namespace tatumflow::cli
