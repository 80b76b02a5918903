// SPDX-License-Identifier: GPL-3.0-or-later
// tatumflow features: the music-theory features of a MIDI file.
#include <chrono>
#include <cmath>
#include <memory>
#include <string>

#include "command.hpp"
#include "tatumflow/engine/bench_stats.hpp"
#include "tatumflow/engine/theory_features.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::cli {
namespace {

struct Options {
  std::string path;
  double tempo_bpm = 0;
  int window_beats = 2;
  bool json = false;
};

// How many chord runs the text report lists.
constexpr std::size_t kChordsShown = 16;

void run(const Options& options) {
  const auto read_started = std::chrono::steady_clock::now();
  const Performance performance = read_smf(options.path);
  const double read_ms = ms_since(read_started);

  TheoryOptions theory;
  if (options.tempo_bpm > 0) theory.beat_period_us = std::llround(60e6 / options.tempo_bpm);
  theory.chord_window_beats = options.window_beats;
  const auto started = std::chrono::steady_clock::now();
  const TheoryFeatures f = compute_theory_features(performance, theory);
  const double compute_ms = ms_since(started);

  nlohmann::json chord_types = nlohmann::json::object();
  for (int type = 0; type < kChordTypeCount; ++type) {
    const float share = f.harmony[harmony_index::kChordTypes + static_cast<std::size_t>(type)];
    if (share > 0) chord_types[to_string(static_cast<ChordType>(type))] = share;
  }
  std::string progression;
  for (std::size_t i = 0; i < f.chords.size() && i < kChordsShown; ++i) {
    progression += (i > 0 ? " " : "") + chord_name(f.chords[i].chord);
  }
  if (f.chords.size() > kChordsShown) progression += " ...";

  nlohmann::json report = {
      {"file", options.path},
      {"notes", performance.notes.size()},
      {"seconds", performance.seconds()},
      {"key", key_name(f.key_tonic, f.key_mode)},
      {"key_correlation", f.key_correlation},
      {"tempo_bpm", f.tempo_bpm},
      {"beats", f.beat_count},
      {"chords",
       {{"runs", f.chords.size()},
        {"change_rate", f.chord_change_rate},
        {"types", chord_types},
        {"progression", progression}}},
      {"swing_ratio", f.swing_ratio},
      {"swing_pairs", f.swing_pairs},
      {"syncopation", f.syncopation},
      {"notes_per_second", f.notes_per_second},
      {"melody",
       {{"range_semitones", f.melody_range_semitones},
        {"mean_pitch", f.melody_mean_pitch},
        {"contour_up", f.contour_up},
        {"contour_down", f.contour_down},
        {"contour_same", f.contour_same}}},
      {"velocity",
       {{"mean", f.velocity_mean},
        {"p5", f.velocity_p5},
        {"p95", f.velocity_p95},
        {"range", f.velocity_range},
        {"accent_rate", f.accent_rate},
        {"slope_per_s", f.velocity_slope_per_s}}},
      {"read_ms", read_ms},
      {"compute_ms", compute_ms},
  };
  if (options.json) {
    report["vectors"] = {
        {"harmony", f.harmony}, {"melody", f.melody}, {"rhythm", f.rhythm}, {"dynamics", f.dynamics}};
    nlohmann::json chords = nlohmann::json::array();
    for (const ChordEstimate& c : f.chords) {
      chords.push_back({{"start_s", static_cast<double>(c.start_us) * 1e-6},
                        {"end_s", static_cast<double>(c.end_us) * 1e-6},
                        {"chord", chord_name(c.chord)},
                        {"score", c.score}});
    }
    report["chord_list"] = chords;
  }
  print_report(report, options.json);
}

const bool registered = register_command([](CLI::App& app) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("features", "Print the music-theory features of a MIDI file");
  cmd->add_option("file", options->path, "MIDI file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tempo", options->tempo_bpm, "Beat tempo in bpm (default: estimated from the notes)")
      ->check(CLI::Range(20.0, 600.0));
  cmd->add_option("--window-beats", options->window_beats, "Beats per chord window")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_flag("--json", options->json, "Print the report as JSON, with the four vectors and every chord");
  cmd->callback([options] { run(*options); });
});

}  // namespace
}  // namespace tatumflow::cli
