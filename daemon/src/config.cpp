// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/daemon/config.hpp"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>
#include <utility>

namespace tatumflow::daemon {

namespace {

std::string where_text(const std::string& source, int line, int column) {
  if (line <= 0) return source;
  return source + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date or time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// Edit distance, for "did you mean" on a misspelt key.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Where errors point: a node's own position, or `fallback` for nodes an
// override created (they have no position).
struct Origin {
  std::string fallback;
};

class Location {
 public:
  Location(const toml::source_region& region, const Origin& origin) {
    if (region.path && !region.path->empty()) {
      source_ = *region.path;
      // Overrides are one-line documents: a line number would only confuse.
      if (source_.rfind("--set ", 0) != 0) {
        line_ = static_cast<int>(region.begin.line);
        column_ = static_cast<int>(region.begin.column);
      }
    } else {
      source_ = origin.fallback;
    }
  }
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw ConfigError(key, source_, line_, column_, message);
  }

 private:
  std::string source_;
  int line_ = 0;
  int column_ = 0;
};

// Reads the keys of one table, converting and range-checking each, and
// rejects the keys nobody asked for.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, const Origin& origin)
      : table_(table), prefix_(std::move(prefix)), origin_(origin) {}

  [[nodiscard]] std::string key_path(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  [[noreturn]] void fail_at(const toml::node& node, std::string_view key, const std::string& message) const {
    Location(node.source(), origin_).fail(key_path(key), message);
  }

  [[noreturn]] void fail_table(const std::string& message) const {
    Location(table_.source(), origin_).fail(prefix_, message);
  }

  const toml::node* take(std::string_view key) {
    known_.emplace(key);
    return table_.get(key);
  }

  void integer(std::string_view key, int& out, std::int64_t min, std::int64_t max) {
    const toml::node* node = take(key);
    if (node == nullptr) return;
    const auto* value = node->as_integer();
    if (value == nullptr)
      fail_at(*node, key, "expected an integer, got " + std::string(type_name(node->type())));
    const std::int64_t got = value->get();
    if (got < min || got > max) {
      fail_at(*node, key,
              "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (got " +
                  std::to_string(got) + ")");
    }
    out = static_cast<int>(got);
  }

  void number(std::string_view key, double& out, double min, double max) {
    const toml::node* node = take(key);
    if (node == nullptr) return;
    double got = 0;
    if (const auto* i = node->as_integer()) {
      got = static_cast<double>(i->get());
    } else if (const auto* f = node->as_floating_point()) {
      got = f->get();
    } else {
      fail_at(*node, key, "expected a number, got " + std::string(type_name(node->type())));
    }
    if (!(got >= min && got <= max)) {
      std::ostringstream message;
      message << "must be between " << min << " and " << max << " (got " << got << ")";
      fail_at(*node, key, message.str());
    }
    out = got;
  }

  void boolean(std::string_view key, bool& out) {
    const toml::node* node = take(key);
    if (node == nullptr) return;
    const auto* value = node->as_boolean();
    if (value == nullptr) {
      fail_at(*node, key, "expected true or false, got " + std::string(type_name(node->type())));
    }
    out = value->get();
  }

  void string(std::string_view key, std::string& out, bool allow_empty) {
    const toml::node* node = take(key);
    if (node == nullptr) return;
    const auto* value = node->as_string();
    if (value == nullptr)
      fail_at(*node, key, "expected a string, got " + std::string(type_name(node->type())));
    if (!allow_empty && value->get().empty()) fail_at(*node, key, "must not be empty");
    out = value->get();
  }

  template <typename Enum>
  void choice(std::string_view key, Enum& out,
              std::initializer_list<std::pair<std::string_view, Enum>> options) {
    const toml::node* node = take(key);
    if (node == nullptr) return;
    const auto* value = node->as_string();
    std::string names;
    for (const auto& [name, option] : options) {
      if (value != nullptr && value->get() == name) {
        out = option;
        return;
      }
      names += names.empty() ? "" : ", ";
      names += name;
    }
    if (value == nullptr) {
      fail_at(*node, key,
              "expected one of " + names + " (a string), got " + std::string(type_name(node->type())));
    }
    fail_at(*node, key, "must be one of " + names + " (got '" + value->get() + "')");
  }

  // A sub-table, or null when the key is absent.
  const toml::table* table(std::string_view key) {
    const toml::node* node = take(key);
    if (node == nullptr) return nullptr;
    const auto* sub = node->as_table();
    if (sub == nullptr) fail_at(*node, key, "expected a table, got " + std::string(type_name(node->type())));
    return sub;
  }

  [[nodiscard]] const Origin& origin() const { return origin_; }

  // Every key of the table must have been asked for.
  void finish() const {
    for (const auto& [key, node] : table_) {
      const std::string_view name = key.str();
      if (known_.contains(std::string(name))) continue;
      std::string message = "unknown key '" + key_path(name) + "'";
      std::string best;
      std::size_t best_distance = 3;
      for (const std::string& candidate : known_) {
        const std::size_t distance = edit_distance(name, candidate);
        if (distance < best_distance) {
          best_distance = distance;
          best = candidate;
        }
      }
      if (!best.empty()) message += " (did you mean '" + key_path(best) + "'?)";
      Location(key.source().path ? key.source() : node.source(), origin_).fail(key_path(name), message);
    }
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  const Origin& origin_;
  std::set<std::string, std::less<>> known_;
};

void read_daemon(TableReader& r, DaemonSettings& d) {
  r.string("state_dir", d.state_dir, false);
  r.choice("log_level", d.log_level,
           {{"error", LogLevel::error},
            {"warning", LogLevel::warning},
            {"notice", LogLevel::notice},
            {"info", LogLevel::info},
            {"debug", LogLevel::debug}});
  r.string("model", d.model, true);
  r.choice("device", d.device, {{"cpu", ComputeDevice::cpu}, {"cuda", ComputeDevice::cuda}});
  r.choice("engine", d.engine, {{"model", AnswerEngine::model}, {"echo", AnswerEngine::echo}});
  r.string("styles_dir", d.styles_dir, false);
  r.integer("inference_threads", d.inference_threads, 1, 16);
  r.choice("share_steps", d.step_sharing,
           {{"auto", StepSharing::automatic}, {"on", StepSharing::on}, {"off", StepSharing::off}});
  r.integer("queue_capacity", d.queue_capacity, 1, 1024);
  r.integer("inject_device_failure_after_chunks", d.inject_device_failure_after_chunks, 0, 1'000'000);
  r.finish();
}

void read_midi(TableReader& r, MidiSettings& m) {
  const toml::node* api = r.take("api");
  r.string("api", m.api, false);
  if (api != nullptr && m.api != "auto" && m.api != "alsa" && m.api != "jack") {
    r.fail_at(*api, "api", "must be one of auto, alsa, jack (got '" + m.api + "')");
  }
  r.choice("clock_source", m.clock_source,
           {{"internal", ClockSource::internal}, {"midi", ClockSource::midi}});
  r.boolean("send_clock", m.send_clock);
  r.number("tempo_bpm", m.tempo_bpm, 20.0, 400.0);
  r.integer("beats_per_bar", m.beats_per_bar, 1, 16);
  r.finish();
}

bool is_numeric_address(const std::string& address) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, address.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buffer) == 1;
}

// An array of "address:port" strings ("[v6 address]:port" for IPv6).
void read_targets(TableReader& r, std::string_view key, std::vector<OscTarget>& out) {
  const toml::node* node = r.take(key);
  if (node == nullptr) return;
  const toml::array* list = node->as_array();
  if (list == nullptr)
    r.fail_at(*node, key,
              "expected an array of \"address:port\" strings, got " + std::string(type_name(node->type())));
  out.clear();
  for (const toml::node& item : *list) {
    const auto* text = item.as_string();
    if (text == nullptr)
      r.fail_at(item, key, "expected \"address:port\", got " + std::string(type_name(item.type())));
    const std::string& value = text->get();
    const std::size_t colon = value.rfind(':');
    std::string address;
    int port = 0;
    bool ok = colon != std::string::npos;
    if (ok) {
      address = value.substr(0, colon);
      if (address.size() >= 2 && address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
      const char* end = value.data() + value.size();
      const auto [stop, error] = std::from_chars(value.data() + colon + 1, end, port);
      ok = error == std::errc{} && stop == end && port >= 1 && port <= 65535 && is_numeric_address(address);
    }
    if (!ok) {
      r.fail_at(item, key,
                "'" + value +
                    "' is not \"address:port\" with a numeric address and a port 1-65535 "
                    "(e.g. \"192.168.1.20:9000\")");
    }
    out.push_back({address, port});
  }
}

void read_osc(TableReader& r, OscSettings& o) {
  const toml::node* address = r.take("bind_address");
  r.string("bind_address", o.bind_address, false);
  if (address != nullptr) {
    if (!is_numeric_address(o.bind_address)) {
      r.fail_at(
          *address, "bind_address",
          "'" + o.bind_address + "' is not a numeric IPv4 or IPv6 address (use 0.0.0.0 for every interface)");
    }
  }
  r.integer("port", o.port, 1, 65535);
  r.integer("reply_port", o.reply_port, 1, 65535);
  read_targets(r, "notify", o.notify);
  r.finish();
}

void read_scheduler(TableReader& r, SchedulerSettings& s) {
  r.integer("realtime_priority", s.realtime_priority, 0, 99);
  r.number("lookahead_beats", s.lookahead_beats, 0.0, 16.0);
  r.integer("ready_margin_ms", s.ready_margin_ms, 0, 1000);
  r.integer("late_tolerance_ms", s.late_tolerance_ms, 0, 1000);
  r.integer("output_lead_ms", s.output_lead_ms, 0, 1000);
  r.integer("chunk_bars", s.chunk_bars, 1, 16);
  r.integer("grid_division", s.grid_division, 0, 48);
  r.integer("queue_capacity", s.queue_capacity, 64, 65536);
  r.finish();
}

void read_phrase_end(TableReader& r, PhraseEndSettings& p) {
  r.integer("silence_ms", p.silence_ms, 0, 60'000);
  const toml::node* bars = r.take("bars");
  r.integer("bars", p.bars, 0, 8);
  if (bars != nullptr && p.bars != 0 && p.bars != 2 && p.bars != 4 && p.bars != 8) {
    r.fail_at(*bars, "bars", "must be 0 (off), 2, 4 or 8 (got " + std::to_string(p.bars) + ")");
  }
  const toml::node* gesture = r.take("gesture_cc");
  r.integer("gesture_cc", p.gesture_cc, -1, 127);
  if (gesture != nullptr && p.gesture_cc == 64) {
    r.fail_at(*gesture, "gesture_cc",
              "64 is the sustain pedal; use 66 (sostenuto), 67 (soft) or a footswitch CC");
  }
  r.integer("min_call_ms", p.min_call_ms, 0, 60'000);
  r.boolean("pedal_holds_phrase", p.pedal_holds_phrase);
  r.finish();
}

// "omni" or 1-16 (0 internally for omni).
void read_channel(TableReader& r, std::string_view key, int& out, bool allow_omni) {
  const toml::node* node = r.take(key);
  if (node == nullptr) return;
  if (const auto* word = node->as_string(); word != nullptr && allow_omni) {
    if (word->get() != "omni") r.fail_at(*node, key, "must be 1-16 or \"omni\" (got '" + word->get() + "')");
    out = 0;
    return;
  }
  const std::string expected = allow_omni ? "1-16 or \"omni\"" : "1-16";
  const auto* number = node->as_integer();
  if (number == nullptr) {
    r.fail_at(*node, key, "expected a channel " + expected + ", got " + std::string(type_name(node->type())));
  }
  if (number->get() < 1 || number->get() > 16) {
    r.fail_at(*node, key, "must be " + expected + " (got " + std::to_string(number->get()) + ")");
  }
  out = static_cast<int>(number->get());
}

void read_session(TableReader& r, SessionSettings& s) {
  const toml::node* name = r.take("name");
  if (name == nullptr) r.fail_table("missing key 'name' (every [[session]] needs one)");
  r.string("name", s.name, false);
  if (!is_valid_name(s.name)) {
    r.fail_at(*name, "name",
              "'" + s.name + "' must be 1-32 letters, digits, '-' or '_' (it names files and OSC addresses)");
  }
  r.string("input", s.input, false);
  read_channel(r, "input_channel", s.input_channel, true);
  r.string("output", s.output, false);
  read_channel(r, "output_channel", s.output_channel, false);
  if (const toml::table* phrase = r.table("phrase_end")) {
    TableReader sub(*phrase, r.key_path("phrase_end"), r.origin());
    read_phrase_end(sub, s.phrase_end);
  }
  r.string("style", s.style, false);
  r.number("learn_rate", s.learn_rate, 0.001, 1.0);
  r.number("temperature", s.temperature, 0.05, 5.0);
  r.number("creativity", s.creativity, 0.0, 1.0);
  r.number("density", s.density, 0.1, 4.0);
  r.integer("bars", s.bars, 1, 32);
  const toml::node* state_cc = r.take("state_cc");
  r.integer("state_cc", s.state_cc, -1, 119);
  if (state_cc != nullptr && s.state_cc == 64)
    r.fail_at(*state_cc, "state_cc", "64 is the sustain pedal: the synth would hold its notes");
  r.finish();
  if (s.phrase_end.silence_ms == 0 && s.phrase_end.bars == 0 && s.phrase_end.gesture_cc < 0) {
    r.fail_table("phrase_end: silence_ms, bars and gesture_cc are all off; only OSC could end a call");
  }
}

Config read_config(const toml::table& root, const Origin& origin) {
  Config config;
  TableReader top(root, "", origin);
  const std::pair<std::string_view, void (*)(TableReader&, Config&)> sections[] = {
      {"daemon", [](TableReader& r, Config& c) { read_daemon(r, c.daemon); }},
      {"midi", [](TableReader& r, Config& c) { read_midi(r, c.midi); }},
      {"osc", [](TableReader& r, Config& c) { read_osc(r, c.osc); }},
      {"scheduler", [](TableReader& r, Config& c) { read_scheduler(r, c.scheduler); }},
  };
  for (const auto& [name, read] : sections) {
    if (const toml::table* table = top.table(name)) {
      TableReader section(*table, std::string(name), origin);
      read(section, config);
    }
  }
  const toml::node* sessions = top.take("session");
  if (sessions == nullptr) {
    Location(root.source(), origin).fail("session", "no [[session]] table: the daemon needs at least one");
  }
  const toml::array* list = sessions->as_array();
  if (list == nullptr || !list->is_array_of_tables()) {
    top.fail_at(*sessions, "session",
                "expected an array of tables ([[session]]), got " + std::string(type_name(sessions->type())));
  }
  if (list->empty()) top.fail_at(*sessions, "session", "no [[session]] table: the daemon needs at least one");
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::table& table = *list->get(i)->as_table();
    TableReader reader(table, "session." + std::to_string(i), origin);
    SessionSettings settings;
    read_session(reader, settings);
    for (const SessionSettings& earlier : config.sessions) {
      if (earlier.name == settings.name) {
        reader.fail_at(*table.get("name"), "name", "session name '" + settings.name + "' is used twice");
      }
    }
    config.sessions.push_back(std::move(settings));
  }
  top.finish();
  return config;
}

// A TOML basic string holding `text`.
std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\u00";
      out += kHex[(c >> 4) & 0xF];
      out += kHex[c & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = key.find('.', begin);
    parts.push_back(key.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  return parts;
}

void apply_override(toml::table& root, const std::string& text) {
  const std::string source = "--set " + text;
  const std::size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw ConfigError("", source, 0, 0, "expected <key>=<value>, e.g. --set osc.port=9000");
  }
  const std::string key = text.substr(0, equals);
  const std::string value_text = text.substr(equals + 1);
  const std::vector<std::string> parts = split_key(key);
  for (const std::string& part : parts) {
    if (part.empty()) throw ConfigError(key, source, 0, 0, "empty part in key '" + key + "'");
  }

  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value_text, source);
  } catch (const toml::parse_error&) {
    parsed = toml::parse("v = " + toml_string(value_text), source);
  }

  toml::node* current = &root;
  std::string walked;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string& part = parts[i];
    walked += (walked.empty() ? "" : ".") + part;
    if (toml::table* table = current->as_table()) {
      toml::node* child = table->get(part);
      if (child == nullptr) {
        const bool next_is_index =
            !parts[i + 1].empty() && std::all_of(parts[i + 1].begin(), parts[i + 1].end(),
                                                 [](char c) { return c >= '0' && c <= '9'; });
        child = next_is_index ? &table->insert(part, toml::array{}).first->second
                              : &table->insert(part, toml::table{}).first->second;
      }
      current = child;
    } else if (toml::array* array = current->as_array()) {
      std::size_t index = 0;
      const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (error != std::errc{} || end != part.data() + part.size()) {
        throw ConfigError(walked, source, 0, 0, "'" + part + "' is not an index into the array");
      }
      const bool holds_tables = array->empty() || array->is_array_of_tables();
      if (index > array->size() || (index == array->size() && !holds_tables)) {
        throw ConfigError(walked, source, 0, 0,
                          "index " + part + " is past the end (there are " + std::to_string(array->size()) +
                              "; the next index adds one)");
      }
      if (index == array->size()) array->push_back(toml::table{});
      current = array->get(index);
    } else {
      throw ConfigError(walked, source, 0, 0,
                        "is " + std::string(type_name(current->type())) + ", not a table");
    }
  }
  toml::table* target = current->as_table();
  if (target == nullptr) {
    throw ConfigError(key, source, 0, 0,
                      "'" + walked + "' is " + std::string(type_name(current->type())) + ", not a table");
  }
  target->insert_or_assign(parts.back(), std::move(*parsed.get("v")));
}

toml::table parse_toml(std::string_view text, std::string_view source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& error) {
    throw ConfigError("", std::string(source_name), static_cast<int>(error.source().begin.line),
                      static_cast<int>(error.source().begin.column), std::string(error.description()));
  }
}

}  // namespace

ConfigError::ConfigError(std::string key, std::string source, int line, int column,
                         const std::string& message)
    : std::runtime_error(where_text(source, line, column) + ": " + (key.empty() ? "" : key + ": ") + message),
      key_(std::move(key)),
      source_(std::move(source)),
      line_(line) {}

Config parse_config(std::string_view toml_text, std::string_view source_name,
                    std::span<const std::string> overrides) {
  toml::table root = parse_toml(toml_text, source_name);
  if (overrides.empty()) return read_config(root, Origin{std::string(source_name)});
  Config config;
  // Checked after each override, so a key an override created is blamed on it.
  for (const std::string& text : overrides) {
    apply_override(root, text);
    config = read_config(root, Origin{"--set " + text});
  }
  return config;
}

Config load_config(const std::filesystem::path& path, std::span<const std::string> overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("", path.string(), 0, 0, "cannot open the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError("", path.string(), 0, 0, "cannot read the configuration file");
  return parse_config(text.str(), path.string(), overrides);
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string_view to_string(ComputeDevice device) { return device == ComputeDevice::cuda ? "cuda" : "cpu"; }
std::string_view to_string(AnswerEngine engine) { return engine == AnswerEngine::echo ? "echo" : "model"; }
std::string_view to_string(ClockSource source) { return source == ClockSource::midi ? "midi" : "internal"; }

}  // namespace tatumflow::daemon
