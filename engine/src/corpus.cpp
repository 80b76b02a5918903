// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/corpus.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "tatumflow/engine/random.hpp"

namespace tatumflow::dataset {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestHeader =
    "path\tsetting\tperformer\talbum\ttitle\tseconds\tnotes\tpedal_events\terror";
constexpr std::size_t kManifestColumns = 9;

const char* folder_of(Transcription transcription) {
  return transcription == Transcription::kMidi ? "midi" : "midi_kong";
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const std::size_t tab = line.find('\t', start);
    fields.push_back(
        line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return fields;
    start = tab + 1;
  }
}

// A manifest path must stay inside its folder: relative, no "..".
bool is_contained(const fs::path& relative) {
  if (relative.empty() || relative.is_absolute() || relative.has_root_name()) return false;
  return std::none_of(relative.begin(), relative.end(), [](const fs::path& part) { return part == ".."; });
}

std::vector<CorpusEntry> read_manifest(const fs::path& manifest, Transcription transcription) {
  std::ifstream in(manifest, std::ios::binary);
  if (!in) throw CorpusError(manifest.string() + ": cannot be read");
  const std::string where_prefix = manifest.string() + ":";
  std::string line;
  std::size_t line_number = 0;
  std::vector<CorpusEntry> entries;
  std::unordered_map<std::string, std::size_t> first_line_of_path;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = where_prefix + std::to_string(line_number) + ": ";
    if (line_number == 1) {
      if (line != kManifestHeader) {
        throw CorpusError(where +
                          "expected the header \"path, setting, performer, album, title, seconds, notes, "
                          "pedal_events, error\" (tab-separated)");
      }
      continue;
    }
    if (line.empty()) continue;
    const std::vector<std::string_view> fields = split_tabs(line);
    if (fields.size() != kManifestColumns) {
      throw CorpusError(where + "expected " + std::to_string(kManifestColumns) +
                        " tab-separated columns, found " + std::to_string(fields.size()));
    }
    CorpusEntry entry;
    const fs::path relative = fs::path(std::string(fields[0])).lexically_normal();
    if (!is_contained(relative)) {
      throw CorpusError(where + "path \"" + std::string(fields[0]) + "\" is not a relative path inside " +
                        folder_of(transcription) + "/");
    }
    entry.path = (fs::path(folder_of(transcription)) / relative).generic_string();
    entry.transcription = transcription;
    entry.setting = fields[1];
    entry.performer = fields[2];
    entry.album = fields[3];
    entry.title = fields[4];
    if (entry.performer.empty() || entry.album.empty()) throw CorpusError(where + "empty performer or album");

    const auto parse_number = [&](std::string_view text, const char* column, auto& value) {
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (text.empty() || error != std::errc() || end != text.data() + text.size() || !(value >= 0)) {
        throw CorpusError(where + "column " + column + ": \"" + std::string(text) +
                          "\" is not a non-negative number");
      }
    };
    parse_number(fields[5], "seconds", entry.seconds);
    parse_number(fields[6], "notes", entry.notes);
    std::int64_t pedal_events = 0;
    parse_number(fields[7], "pedal_events", pedal_events);

    const auto [it, inserted] = first_line_of_path.emplace(entry.path, line_number);
    if (!inserted) {
      throw CorpusError(where + "path \"" + std::string(fields[0]) + "\" is listed twice (first on line " +
                        std::to_string(it->second) + ")");
    }
    entries.push_back(std::move(entry));
  }
  if (line_number == 0) throw CorpusError(where_prefix + "1: empty manifest (no header)");
  return entries;
}

bool is_midi_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".mid" || ext == ".midi";
}

// Without a manifest the layout <setting>/<performer>/<album>/<title>.midi
// names the recording; missing levels stay empty.
std::vector<CorpusEntry> walk_folder(const fs::path& data_dir, Transcription transcription) {
  const fs::path root = data_dir / folder_of(transcription);
  std::vector<CorpusEntry> entries;
  for (const auto& item : fs::recursive_directory_iterator(root)) {
    if (!item.is_regular_file() || !is_midi_file(item.path())) continue;
    const fs::path relative = item.path().lexically_relative(root);
    std::vector<std::string> dirs;
    for (const fs::path& part : relative.parent_path()) dirs.push_back(part.string());
    CorpusEntry entry;
    entry.path = (fs::path(folder_of(transcription)) / relative).generic_string();
    entry.transcription = transcription;
    entry.title = relative.stem().string();
    const std::size_t depth = dirs.size();
    if (depth >= 1) entry.album = dirs[depth - 1];
    if (depth >= 2) entry.performer = dirs[depth - 2];
    if (depth >= 3) entry.setting = dirs[depth - 3];
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string lower_ascii(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

}  // namespace

const char* to_string(Transcription transcription) {
  return transcription == Transcription::kMidi ? "midi" : "kong";
}

const char* to_string(TranscriptionSet set) {
  switch (set) {
    case TranscriptionSet::kMidi:
      return "midi";
    case TranscriptionSet::kKong:
      return "kong";
    case TranscriptionSet::kBoth:
      return "both";
  }
  return "?";
}

const char* to_string(Split split) { return split == Split::kTrain ? "train" : "validation"; }

TranscriptionSet parse_transcription_set(std::string_view text) {
  if (text == "midi") return TranscriptionSet::kMidi;
  if (text == "kong") return TranscriptionSet::kKong;
  if (text == "both") return TranscriptionSet::kBoth;
  throw std::invalid_argument("transcription \"" + std::string(text) + "\": expected kong, midi or both");
}

Split parse_split(std::string_view text) {
  if (text == "train") return Split::kTrain;
  if (text == "validation" || text == "val") return Split::kValidation;
  throw std::invalid_argument("split \"" + std::string(text) + "\": expected train or validation");
}

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

double album_hash_unit(std::string_view performer, std::string_view album) {
  std::string key;
  key.reserve(performer.size() + album.size() + 1);
  key.append(performer).append("/").append(album);
  return static_cast<double>(mix64(fnv1a64(key)) >> 11) * 0x1.0p-53;
}

void assign_splits(std::vector<CorpusEntry>& entries, double validation_fraction) {
  if (!(validation_fraction >= 0.0 && validation_fraction <= 1.0)) {
    throw std::invalid_argument("validation fraction " + std::to_string(validation_fraction) +
                                " is outside [0, 1]");
  }
  // performer -> album -> u
  std::map<std::string, std::map<std::string, double>> albums;
  for (const CorpusEntry& entry : entries) albums[entry.performer].emplace(entry.album, 0.0);
  std::set<std::pair<std::string, std::string>> validation;
  for (auto& [performer, by_album] : albums) {
    const std::string* lowest = nullptr;
    double lowest_u = 2.0;
    bool any_validation = false;
    for (auto& [album, u] : by_album) {
      u = album_hash_unit(performer, album);
      if (u < validation_fraction) {
        validation.emplace(performer, album);
        any_validation = true;
      }
      if (u < lowest_u) {
        lowest_u = u;
        lowest = &album;
      }
    }
    const double expected_albums = validation_fraction * static_cast<double>(by_album.size());
    if (!any_validation && expected_albums >= 0.5 && lowest != nullptr)
      validation.emplace(performer, *lowest);
  }
  for (CorpusEntry& entry : entries) {
    entry.split = validation.contains({entry.performer, entry.album}) ? Split::kValidation : Split::kTrain;
  }
}

std::vector<CorpusEntry> index_corpus(const CorpusOptions& options) {
  if (!fs::is_directory(options.data_dir)) {
    throw CorpusError("data folder " + options.data_dir.string() +
                      " does not exist (set --data or TATUMFLOW_DATA)");
  }
  std::vector<Transcription> selected;
  if (options.transcriptions != TranscriptionSet::kKong) selected.push_back(Transcription::kMidi);
  if (options.transcriptions != TranscriptionSet::kMidi) selected.push_back(Transcription::kKong);

  std::vector<CorpusEntry> entries;
  for (const Transcription transcription : selected) {
    const fs::path manifest =
        options.data_dir / (std::string("manifest_") + folder_of(transcription) + ".tsv");
    std::vector<CorpusEntry> part;
    if (fs::exists(manifest)) {
      part = read_manifest(manifest, transcription);
    } else if (fs::is_directory(options.data_dir / folder_of(transcription))) {
      part = walk_folder(options.data_dir, transcription);
    } else {
      throw CorpusError(options.data_dir.string() + ": neither " + manifest.filename().string() + " nor a " +
                        folder_of(transcription) + "/ folder");
    }
    entries.insert(entries.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  std::sort(entries.begin(), entries.end(), [](const CorpusEntry& a, const CorpusEntry& b) {
    return std::tie(a.performer, a.album, a.title, a.transcription, a.path) <
           std::tie(b.performer, b.album, b.title, b.transcription, b.path);
  });
  assign_splits(entries, options.validation_fraction);
  return entries;
}

bool performer_matches(std::string_view performer, std::string_view filter) {
  return filter.empty() || lower_ascii(performer).find(lower_ascii(filter)) != std::string::npos;
}

std::vector<CorpusEntry> filter_corpus(const std::vector<CorpusEntry>& entries, const CorpusFilter& filter) {
  std::vector<CorpusEntry> kept;
  for (const CorpusEntry& entry : entries) {
    if (filter.max_files > 0 && kept.size() >= filter.max_files) break;
    if (filter.split && entry.split != *filter.split) continue;
    if (!performer_matches(entry.performer, filter.performer)) continue;
    kept.push_back(entry);
  }
  return kept;
}

fs::path repo_dir() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) return (exe.parent_path() / "../..").lexically_normal();
  return ".";
}

fs::path default_data_dir() {
  if (const char* env = std::getenv("TATUMFLOW_DATA"); env != nullptr && *env != '\0') return env;
  return (repo_dir() / "../shared/data/pijama").lexically_normal();
}

}  // namespace tatumflow::dataset
