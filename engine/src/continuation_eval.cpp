// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/continuation_eval.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>

namespace tatumflow::continuation {

namespace {

constexpr std::int64_t kMaxContextUs = 600'000'000;
// Redraws of a special token before a Markov continuation gives up (flagged as
// capped): the chain gives the other tokens most of the mass, so this is never
// reached unless the chain is degenerate.
constexpr int kMaxRedraws = 1000;

std::int64_t end_of(const Performance& performance) {
  std::int64_t end_us = performance.length_us;
  for (const Note& note : performance.notes) end_us = std::max(end_us, note.offset_us());
  return end_us;
}

bool is_special(tokens::Token token) {
  const tokens::Kind kind = tokens::kind_of(token);
  return kind == tokens::Kind::Pad || kind == tokens::Kind::Sos || kind == tokens::Kind::Eos ||
         kind == tokens::Kind::Mask || kind == tokens::Kind::Invalid;
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return 0.0;
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double population_std(const std::vector<double>& values, double mean) {
  if (values.empty()) return 0.0;
  double sum = 0.0;
  for (double v : values) sum += (v - mean) * (v - mean);
  return std::sqrt(sum / static_cast<double>(values.size()));
}

std::string fixed(double value, int digits) {
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.*f", digits, value);
  return buffer.data();
}

std::string signed_percent(double fraction) {
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%+.1f%%", 100.0 * fraction);
  return buffer.data();
}

// "mean ± spread over seeds" (no spread for a single run).
std::string cell(const MetricSummary& metric, bool percent, int digits) {
  std::string text = percent ? signed_percent(metric.mean) : fixed(metric.mean, digits);
  if (metric.per_run.size() > 1) {
    text += " ± " + (percent ? fixed(100.0 * metric.run_std, 1) + "%" : fixed(metric.run_std, digits));
  }
  return text;
}

// A table's first two rows: a "system" column, then `headings`.
std::string markdown_header(const std::vector<std::string>& headings) {
  std::string out = "| system |";
  std::string rule = "|---|";
  for (const std::string& heading : headings) {
    out += " " + heading + " |";
    rule += "---|";
  }
  return out + "\n" + rule + "\n";
}

}  // namespace

void ClipOptions::validate() const {
  if (continuation_us <= 0) throw std::invalid_argument("the continuation must be longer than 0 s");
  if (context_us < continuation_us) {
    throw std::invalid_argument("the context (" + fixed(1e-6 * double(context_us), 2) +
                                " s) must be at least as long as the continuation (" +
                                fixed(1e-6 * double(continuation_us), 2) +
                                " s): the copy baseline copies it");
  }
  if (context_us > kMaxContextUs) throw std::invalid_argument("the context may be at most 600 s");
}

Performance excerpt(const Performance& performance, std::int64_t from_us, std::int64_t to_us,
                    std::int64_t shift_us) {
  if (to_us <= from_us) {
    throw std::invalid_argument("excerpt: empty span [" + std::to_string(from_us) + ", " +
                                std::to_string(to_us) + ") us");
  }
  Performance out;
  for (const Note& note : performance.notes) {
    if (note.onset_us < from_us || note.onset_us >= to_us) continue;
    Note moved = note;
    moved.duration_us = std::max<std::int64_t>(std::min(note.offset_us(), to_us) - note.onset_us, 1);
    moved.onset_us += shift_us;
    out.notes.push_back(moved);
  }
  std::array<bool, 16> down{};
  for (const PedalChange& change : performance.pedals) {
    if (change.time_us <= from_us) down[change.channel & 15u] = change.down;
  }
  for (std::uint8_t channel = 0; channel < 16; ++channel) {
    if (down[channel]) out.pedals.push_back({from_us + shift_us, true, channel});
  }
  for (const PedalChange& change : performance.pedals) {
    if (change.time_us <= from_us || change.time_us >= to_us) continue;
    out.pedals.push_back({change.time_us + shift_us, change.down, change.channel});
    down[change.channel & 15u] = change.down;
  }
  for (std::uint8_t channel = 0; channel < 16; ++channel) {
    if (down[channel]) out.pedals.push_back({to_us + shift_us, false, channel});
  }
  out.length_us = to_us + shift_us;
  out.sort();
  return out;
}

std::vector<Clip> cut_clips(const Performance& performance, const ClipOptions& options) {
  options.validate();
  std::vector<Clip> clips;
  if (performance.notes.empty()) return clips;
  const std::int64_t end_us = end_of(performance);
  for (std::int64_t start = performance.notes.front().onset_us; start + options.clip_us() <= end_us;
       start += options.clip_us()) {
    Clip clip;
    clip.start_us = start;
    clip.context = excerpt(performance, start, start + options.context_us, -start);
    clip.continuation = excerpt(performance, start + options.context_us, start + options.clip_us(), -start);
    if (clip.context.notes.size() < options.min_context_notes ||
        clip.continuation.notes.size() < options.min_continuation_notes) {
      continue;
    }
    clips.push_back(std::move(clip));
  }
  return clips;
}

std::vector<std::size_t> spread_evenly(std::size_t total, std::size_t count) {
  count = std::min(count, total);
  std::vector<std::size_t> indices;
  indices.reserve(count);
  for (std::size_t i = 0; i < count; ++i) indices.push_back(i * total / count);
  return indices;
}

std::vector<tokens::Token> context_tokens(const Performance& context, std::int64_t context_us) {
  std::vector<tokens::Token> out = tokens::encode(context, {.add_sos = true, .add_eos = false});
  // The vocabulary's clock rule (tokenizer.hpp): <T> to each chunk start, then one TIME_SHIFT.
  std::int64_t now = tokens::end_time_us(out) / tokens::kStepUs;
  const std::int64_t target = tokens::time_to_steps(context_us);
  while (target / tokens::kStepsPerChunk > now / tokens::kStepsPerChunk) {
    out.push_back(tokens::kChunk);
    now = (now / tokens::kStepsPerChunk + 1) * tokens::kStepsPerChunk;
  }
  if (target > now) out.push_back(static_cast<tokens::Token>(tokens::kTimeShiftBase + (target - now) - 1));
  return out;
}

std::vector<tokens::Token> context_window(std::span<const tokens::Token> context, std::size_t limit) {
  const std::vector<tokens::Token> whole(context.begin(), context.end());
  // Room for the SOS and TIME_SHIFT put in front of a cut.
  if (limit == 0 || context.size() <= limit || limit < 3) return whole;
  for (std::size_t i = context.size() - limit + 2; i < context.size(); ++i) {
    const tokens::Kind kind = tokens::kind_of(context[i]);
    if (kind == tokens::Kind::Chunk) return {context.begin() + static_cast<std::ptrdiff_t>(i), context.end()};
    if (kind != tokens::Kind::TimeShift) continue;
    const std::int64_t phase =
        tokens::end_time_us(context.first(i)) / tokens::kStepUs % tokens::kStepsPerChunk;
    std::vector<tokens::Token> window = {tokens::kSos};
    if (phase > 0) window.push_back(static_cast<tokens::Token>(tokens::kTimeShiftBase + phase - 1));
    window.insert(window.end(), context.begin() + static_cast<std::ptrdiff_t>(i), context.end());
    return window;
  }
  return whole;
}

Performance copy_baseline(const Performance& context, const ClipOptions& options) {
  options.validate();
  return excerpt(context, options.context_us - options.continuation_us, options.context_us,
                 options.continuation_us);
}

Performance join_parts(const Performance& context, const Performance& continuation) {
  Performance out = context;
  out.notes.insert(out.notes.end(), continuation.notes.begin(), continuation.notes.end());
  for (const PedalChange& change : continuation.pedals) {
    const auto last = std::find_if(out.pedals.rbegin(), out.pedals.rend(),
                                   [&](const PedalChange& p) { return p.channel == change.channel; });
    if (change.down && last != out.pedals.rend() && !last->down && last->time_us == change.time_us) {
      out.pedals.erase(std::next(last).base());
      continue;
    }
    out.pedals.push_back(change);
  }
  out.length_us = std::max(context.length_us, continuation.length_us);
  out.sort();
  return out;
}

Performance continuation_of(std::span<const tokens::Token> sequence, const ClipOptions& options) {
  return excerpt(tokens::decode(sequence), options.context_us, options.clip_us(), 0);
}

MarkovContinuation markov_continuation(const MarkovModel& markov, std::span<const tokens::Token> context,
                                       std::int64_t end_us, std::uint64_t seed, std::size_t max_tokens,
                                       double temperature) {
  std::mt19937_64 rng(seed);
  std::vector<tokens::Token> sequence(context.begin(), context.end());
  MarkovContinuation out;
  while (tokens::end_time_us(sequence) < end_us) {
    if (out.tokens.size() >= max_tokens) {
      out.capped = true;
      break;
    }
    tokens::Token token = markov.sample(sequence, rng, temperature);
    for (int redraw = 0; is_special(token) && redraw < kMaxRedraws; ++redraw) {
      token = markov.sample(sequence, rng, temperature);
    }
    if (is_special(token)) {
      out.capped = true;
      break;
    }
    sequence.push_back(token);
    out.tokens.push_back(token);
  }
  return out;
}

Score score_continuation(const Clip& clip, const metrics::ClipMeasures& real, const Performance& generated,
                         const metrics::ClipMeasures& generated_measures) {
  Score score;
  score.pair = metrics::compare_clips(real, generated_measures);
  score.pair.copy_rate_generated = metrics::copy_rate(generated, clip.context);
  score.pair.copy_rate_reference = metrics::copy_rate(clip.continuation, clip.context);
  return score;
}

std::vector<MetricSummary> summarize(const std::vector<std::vector<Score>>& runs) {
  std::vector<MetricSummary> summaries;
  for (const metrics::NamedValue& field : metrics::named_values(metrics::PairMetrics{})) {
    summaries.push_back({field.name, {}, 0, 0, 0, 0});
  }
  const std::size_t gap_index = summaries.size();
  summaries.push_back({"note_density_gap", {}, 0, 0, 0, 0});
  const std::size_t p_index = summaries.size();
  summaries.push_back({"p_art_tatum", {}, 0, 0, 0, 0});
  std::vector<std::vector<double>> clip_stds(summaries.size());

  for (const std::vector<Score>& run : runs) {
    std::vector<metrics::PairMetrics> pairs;
    double generated_density = 0.0;
    double real_density = 0.0;
    std::size_t density_pairs = 0;
    std::vector<double> p;
    for (const Score& score : run) {
      pairs.push_back(score.pair);
      if (score.pair.note_density_generated && score.pair.note_density_reference) {
        generated_density += *score.pair.note_density_generated;
        real_density += *score.pair.note_density_reference;
        ++density_pairs;
      }
      if (score.p_art_tatum) p.push_back(*score.p_art_tatum);
    }
    const std::vector<metrics::Aggregate> aggregates = metrics::aggregate(pairs);
    for (std::size_t i = 0; i < aggregates.size(); ++i) {
      if (aggregates[i].count == 0) continue;
      summaries[i].per_run.push_back(aggregates[i].mean);
      clip_stds[i].push_back(aggregates[i].std);
      summaries[i].values += aggregates[i].count;
    }
    if (density_pairs > 0 && real_density > 0) {
      summaries[gap_index].per_run.push_back(generated_density / real_density - 1.0);
      clip_stds[gap_index].push_back(0.0);  // a ratio of means has no per-clip spread
      summaries[gap_index].values += density_pairs;
    }
    if (!p.empty()) {
      const double mean = mean_of(p);
      summaries[p_index].per_run.push_back(mean);
      clip_stds[p_index].push_back(population_std(p, mean));
      summaries[p_index].values += p.size();
    }
  }

  std::vector<MetricSummary> result;
  for (std::size_t i = 0; i < summaries.size(); ++i) {
    MetricSummary& s = summaries[i];
    if (s.per_run.empty()) continue;
    s.mean = mean_of(s.per_run);
    s.run_std = population_std(s.per_run, s.mean);
    s.clip_std = mean_of(clip_stds[i]);
    result.push_back(std::move(s));
  }
  return result;
}

const MetricSummary* find_metric(const std::vector<MetricSummary>& metrics, const std::string& name) {
  const auto it = std::find_if(metrics.begin(), metrics.end(),
                               [&](const MetricSummary& metric) { return metric.name == name; });
  return it == metrics.end() ? nullptr : &*it;
}

TargetCheck check(const Target& target, double value) {
  double shortfall = 0.0;
  switch (target.bound) {
    case Bound::kAtMost:
      shortfall = value - target.limit;
      break;
    case Bound::kAtLeast:
      shortfall = target.limit - value;
      break;
    case Bound::kWithin:
      shortfall = std::abs(value) - target.limit;
      break;
  }
  return shortfall <= 0.0 ? TargetCheck{true, 0.0} : TargetCheck{false, shortfall};
}

std::string describe_limit(const Target& target) {
  switch (target.bound) {
    case Bound::kAtMost:
      return "≤" + fixed(target.limit, 2);
    case Bound::kAtLeast:
      return "≥" + fixed(target.limit, 2);
    case Bound::kWithin:
      return "within ±" + fixed(100.0 * target.limit, 0) + "%";
  }
  return {};
}

std::string describe_check(const Target& target, const TargetCheck& result) {
  if (result.pass) return "pass";
  if (target.bound == Bound::kWithin) return "short by " + fixed(100.0 * result.shortfall, 1) + " points";
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.3g", result.shortfall);
  return std::string("short by ") + buffer.data();
}

std::string markdown_table(const std::vector<SystemSummary>& systems) {
  auto target_of = [](const char* metric) -> const Target* {
    for (const Target& target : kTargets) {
      if (std::string(target.metric) == metric) return &target;
    }
    return nullptr;
  };
  struct Column {
    const char* metric;
    std::string heading;
    bool percent;
  };
  const std::vector<Column> columns = {
      {"pitch_class_kl", "PC-KL ↓", false},
      {"pctm_cosine", "PCTM cosine ↑", false},
      {"note_density_generated", "notes / 5 s", false},
      {"note_density_gap", "density gap", true},
      {"copy_rate_generated", "copy rate ↓", false},
      {"p_art_tatum", "P(Art Tatum) ↑", false},
  };
  std::vector<std::string> headings;
  for (const Column& column : columns) {
    const Target* target = target_of(column.metric);
    headings.push_back(target ? column.heading + " (" + describe_limit(*target) + ")" : column.heading);
  }
  std::string out = markdown_header(headings);
  for (const SystemSummary& system : systems) {
    out += "| " + system.description + " |";
    for (const Column& column : columns) {
      const MetricSummary* metric = find_metric(system.metrics, column.metric);
      if (metric == nullptr) {
        out += " — |";
        continue;
      }
      std::string text =
          cell(*metric, column.percent, column.metric == std::string("note_density_generated") ? 1 : 3);
      const Target* target = target_of(column.metric);
      if (target != nullptr && !system.reference) {
        const TargetCheck result = check(*target, metric->mean);
        text += result.pass ? " — pass" : " — **fail**, " + describe_check(*target, result);
      }
      out += " " + text + " |";
    }
    out += "\n";
  }
  return out;
}

std::string markdown_secondary_table(const std::vector<SystemSummary>& systems) {
  struct Column {
    const char* metric;
    const char* heading;
    int digits;
  };
  const std::array<Column, 8> columns = {{
      {"pc_entropy_mean_generated", "PC entropy (bits)", 2},
      {"polyphony_generated", "polyphony", 2},
      {"ioi_histogram_overlap", "IOI hist. overlap", 3},
      {"velocity_histogram_overlap", "velocity hist. overlap", 3},
      {"self_similarity_generated", "self-similarity", 3},
      {"chords_per_minute_generated", "chords / min", 1},
      {"syncopation_generated", "syncopation", 3},
      {"swing_ratio_generated", "swing ratio", 2},
  }};
  std::vector<std::string> headings;
  for (const Column& column : columns) headings.emplace_back(column.heading);
  std::string out = markdown_header(headings);
  for (const SystemSummary& system : systems) {
    out += "| " + system.description + " |";
    for (const Column& column : columns) {
      const MetricSummary* metric = find_metric(system.metrics, column.metric);
      out += " " + (metric == nullptr ? std::string("—") : cell(*metric, false, column.digits)) + " |";
    }
    out += "\n";
  }
  return out;
}

std::optional<double> nearest_centroid_accuracy(const std::vector<std::vector<double>>& points,
                                                const std::vector<std::size_t>& labels) {
  if (points.size() != labels.size()) {
    throw std::invalid_argument("nearest_centroid_accuracy: " + std::to_string(points.size()) +
                                " points but " + std::to_string(labels.size()) + " labels");
  }
  if (points.empty()) return std::nullopt;
  const std::size_t dims = points.front().size();
  std::size_t classes = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != dims) {
      throw std::invalid_argument("nearest_centroid_accuracy: point " + std::to_string(i) + " has " +
                                  std::to_string(points[i].size()) + " dimensions, not " +
                                  std::to_string(dims));
    }
    classes = std::max(classes, labels[i] + 1);
  }
  std::vector<std::vector<double>> sums(classes, std::vector<double>(dims, 0.0));
  std::vector<std::size_t> counts(classes, 0);
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (std::size_t d = 0; d < dims; ++d) sums[labels[i]][d] += points[i][d];
    ++counts[labels[i]];
  }
  std::size_t scored = 0;
  std::size_t correct = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (counts[labels[i]] < 2) continue;
    std::size_t best = 0;
    double best_distance = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < classes; ++k) {
      if (counts[k] == 0) continue;
      const bool own = k == labels[i];
      const double n = static_cast<double>(counts[k] - (own ? 1 : 0));
      double distance = 0.0;
      for (std::size_t d = 0; d < dims; ++d) {
        const double centroid = (sums[k][d] - (own ? points[i][d] : 0.0)) / n;
        distance += (points[i][d] - centroid) * (points[i][d] - centroid);
      }
      if (distance < best_distance) {
        best_distance = distance;
        best = k;
      }
    }
    ++scored;
    correct += best == labels[i] ? 1 : 0;
  }
  if (scored == 0) return std::nullopt;
  return static_cast<double>(correct) / static_cast<double>(scored);
}

}  // namespace tatumflow::continuation
