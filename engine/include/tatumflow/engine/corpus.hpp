// SPDX-License-Identifier: GPL-3.0-or-later
// The PiJAMA corpus index: which MIDI files exist, who plays them, and which
// side of the train/validation split each one is on. Reads the manifests
// (`manifest_midi.tsv`, `manifest_midi_kong.tsv`) or, where one is missing,
// walks the folder. Functions here allocate and touch the file system: any
// non-real-time thread may call them.
//
// The split is by album, so a recording (in either transcription) is never on
// both sides:
//   u(album) = mix64(FNV-1a-64("performer/album")) / 2^64, uniform in [0, 1);
//   an album is validation when u < fraction.
// A performer whose expected number of validation albums (fraction x albums) is
// at least 0.5 but who drew none gets their lowest-u album as validation, so
// every performer with enough albums (Art Tatum's 8 at the default 0.1) is
// evaluated on albums the model never saw. The mix64 finish matters: raw FNV-1a
// maps names that differ only in their last characters ("Vol. 2", "Vol. 3")
// to almost the same high bits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tatumflow::dataset {

enum class Transcription : std::uint8_t { kMidi = 0, kKong = 1 };  // folders midi/ and midi_kong/
enum class TranscriptionSet : std::uint8_t { kMidi, kKong, kBoth };
enum class Split : std::uint8_t { kTrain = 0, kValidation = 1 };

[[nodiscard]] const char* to_string(Transcription transcription);  // "midi", "kong"
[[nodiscard]] const char* to_string(TranscriptionSet set);         // "midi", "kong", "both"
[[nodiscard]] const char* to_string(Split split);                  // "train", "validation"
// Inverses of to_string; throw std::invalid_argument naming the accepted words.
[[nodiscard]] TranscriptionSet parse_transcription_set(std::string_view text);
[[nodiscard]] Split parse_split(std::string_view text);

// Bad manifest or folder: the message names the file (and line) at fault.
class CorpusError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CorpusEntry {
  std::string path;  // relative to the data folder, e.g. "midi_kong/studio/Art Tatum/<album>/<title>.midi"
  Transcription transcription = Transcription::kMidi;
  std::string setting;  // "live" or "studio" (empty when the folder layout does not say)
  std::string performer;
  std::string album;
  std::string title;
  double seconds = 0.0;    // from the manifest; 0 when the folder was walked
  std::int64_t notes = 0;  // from the manifest; 0 when the folder was walked
  Split split = Split::kTrain;
};

struct CorpusOptions {
  std::filesystem::path data_dir;
  TranscriptionSet transcriptions = TranscriptionSet::kBoth;
  double validation_fraction = 0.1;  // in [0, 1]
};

// Entries sorted by (performer, album, title, transcription), splits assigned.
// Throws CorpusError for a missing folder, a malformed manifest line (naming
// file and line), or a manifest path that leaves its folder.
[[nodiscard]] std::vector<CorpusEntry> index_corpus(const CorpusOptions& options);

// Sets every entry's split by the rule above, from the (performer, album) pairs
// present in `entries`.
void assign_splits(std::vector<CorpusEntry>& entries, double validation_fraction);

// The album's position u in [0, 1) used by the split rule.
[[nodiscard]] double album_hash_unit(std::string_view performer, std::string_view album);

[[nodiscard]] std::uint64_t fnv1a64(std::string_view bytes);

// Case-insensitive substring match; an empty filter matches everyone.
[[nodiscard]] bool performer_matches(std::string_view performer, std::string_view filter);

struct CorpusFilter {
  std::string performer;       // substring, case-insensitive; empty = all
  std::optional<Split> split;  // empty = both
  std::size_t max_files = 0;   // 0 = no limit; keeps the first ones in index order
};

// Applied after the split is assigned, so filtering never moves an album.
[[nodiscard]] std::vector<CorpusEntry> filter_corpus(const std::vector<CorpusEntry>& entries,
                                                     const CorpusFilter& filter);

// The checkout this executable was built in, from its location in
// <repo>/<build dir>/bin/; "." when that cannot be read.
[[nodiscard]] std::filesystem::path repo_dir();

// TATUMFLOW_DATA if set, else <repo>/../shared/data/pijama.
[[nodiscard]] std::filesystem::path default_data_dir();

}  // namespace tatumflow::dataset
