// SPDX-License-Identifier: GPL-3.0-or-later
// The tokenized corpus cache and the training window sampler.
//
// A cache is a folder:
//   shard_0000.bin ...  the tokens of whole performances, uint16 little-endian,
//                       back to back, each shard at most shard_tokens long;
//   index.bin           header (format and tokenizer version, vocabulary size,
//                       what the cache was built from, per-shard token count and
//                       checksum), then one record per performance (path,
//                       transcription, setting, performer, album, title, split,
//                       shard, token offset and count, note count, seconds),
//                       then a checksum of everything before it.
// Each performance is tokens::encode() of its file, SOS and EOS included.
// Writing the index last (by rename) means a cache is either complete or has
// no index.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow {
class ProgressBar;
}

namespace tatumflow::dataset {

inline constexpr std::uint32_t kCacheFormatVersion = 1;

// A cache that is missing, stale (other tokenizer version) or damaged; the
// message names the file and says what is wrong.
class CacheError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CachedPerformance {
  std::uint32_t id = 0;  // position in the cache
  std::string path;      // relative to the data folder
  Transcription transcription = Transcription::kMidi;
  std::string setting;
  std::string performer;
  std::string album;
  std::string title;
  Split split = Split::kTrain;
  std::uint32_t shard = 0;
  std::uint64_t token_offset = 0;  // in tokens, within the shard
  std::uint32_t token_count = 0;
  std::uint32_t note_count = 0;
  double seconds = 0.0;
};

struct CacheHeader {
  std::uint32_t format_version = kCacheFormatVersion;
  std::uint32_t tokenizer_version = tokens::kTokenizerVersion;
  std::uint32_t vocab_size = tokens::kVocabSize;
  std::string source;  // what it was built from (data folder, options): decides whether a rebuild is needed
  std::vector<std::uint64_t> shard_tokens;
};

struct CacheBuildOptions {
  std::filesystem::path data_dir;  // CorpusEntry::path is relative to it
  std::filesystem::path out_dir;   // created if missing; earlier cache files in it are replaced
  std::string source;              // recorded in the header
  unsigned threads = 0;            // 0: std::thread::hardware_concurrency()
  std::uint64_t shard_tokens = std::uint64_t{32} << 20;  // 64 MiB of uint16
};

struct FailedFile {
  std::string path;
  std::string message;  // the SmfError text
};

struct SplitTotals {
  std::uint64_t files = 0;
  std::uint64_t tokens = 0;
  double seconds = 0.0;
};

struct CacheBuildReport {
  std::uint64_t files = 0;  // stored
  std::vector<FailedFile> failed;
  std::uint64_t notes = 0;
  std::uint64_t tokens = 0;
  SplitTotals train;
  SplitTotals validation;
  std::uint64_t performers = 0;
  double seconds = 0.0;  // of music
  std::uint64_t shards = 0;
  std::uint64_t bytes = 0;  // shards plus index

  // Adds one stored performance to the totals (not to `performers`, which the
  // caller counts as distinct names). Any thread owning the report.
  void count(const CachedPerformance& record);
};

// Parses and tokenizes every entry on `threads` workers and writes the cache
// in entry order, so the output does not depend on the thread count. Files
// that fail to parse (SmfError) are listed in the report and skipped. Throws
// CacheError when the output cannot be written. `progress`, if given, gets one
// add() per file. Any non-real-time thread.
CacheBuildReport build_token_cache(const std::vector<CorpusEntry>& entries, const CacheBuildOptions& options,
                                   ProgressBar* progress = nullptr);

// Why the cache in `dir` cannot be reused for `source`, or an empty string when it can.
[[nodiscard]] std::string cache_staleness(const std::filesystem::path& dir, const std::string& source);

// A read-only view of a built cache; the shards are memory-mapped and shared
// by copies. Every const member may be called from any thread at once.
class TokenCache {
 public:
  // Verifies the index and shard checksums and sizes. Throws CacheError for a
  // missing, truncated or corrupt file, or a cache written by another format
  // or tokenizer version.
  [[nodiscard]] static TokenCache open(const std::filesystem::path& dir);

  [[nodiscard]] const CacheHeader& header() const { return header_; }
  [[nodiscard]] const std::vector<CachedPerformance>& performances() const { return performances_; }
  // The tokens of performance `index` (< performances().size()).
  [[nodiscard]] std::span<const tokens::Token> tokens(std::size_t index) const;
  [[nodiscard]] std::uint64_t total_tokens() const;

 private:
  TokenCache() = default;
  CacheHeader header_;
  std::vector<CachedPerformance> performances_;
  std::vector<std::shared_ptr<const tokens::Token>> shards_;  // mmap'ed, unmapped by the last copy
};

struct SamplerOptions {
  std::optional<Split> split;                  // empty: both
  std::string performer;                       // substring, case-insensitive; empty: all
  std::optional<Transcription> transcription;  // empty: both
};

struct Window {
  std::uint32_t performance = 0;  // index into TokenCache::performances()
  std::uint64_t start = 0;        // token offset within the performance
  std::span<const tokens::Token> tokens;
};

// The style/theory reference a window is conditioned on: tokens [begin, end) of
// a performance, opened at a chunk boundary in their first half when there is
// one, so that it decodes like a window. Training and evaluation both take it
// from here. Any thread.
[[nodiscard]] std::span<const tokens::Token> style_reference(std::span<const tokens::Token> performance,
                                                             std::size_t begin, std::size_t end);

// Draws fixed-length windows that start on a chunk boundary (the SOS at 0 or a
// <T> token), uniformly over all such starts whose window fits in its
// performance, so long performances are drawn in proportion to their length.
// A performance shorter than the window gives one window: the whole of it
// (shorter than window_tokens; callers pad with tokens::kPad).
// The cache must outlive the sampler. sample_window() is O(1) and does not
// allocate; call it from any thread, each with its own Rng.
class WindowSampler {
 public:
  // Throws std::invalid_argument when window_tokens is 0 or no performance matches.
  WindowSampler(const TokenCache& cache, std::size_t window_tokens, const SamplerOptions& options = {});

  [[nodiscard]] Window sample_window(Rng& rng) const;
  [[nodiscard]] std::size_t start_count() const { return starts_.size(); }
  [[nodiscard]] std::size_t performance_count() const { return performance_count_; }
  [[nodiscard]] std::size_t window_tokens() const { return window_tokens_; }

 private:
  struct Start {
    std::uint32_t performance;
    std::uint32_t offset;
  };
  const TokenCache* cache_;
  std::size_t window_tokens_;
  std::size_t performance_count_ = 0;
  std::vector<Start> starts_;
};

}  // namespace tatumflow::dataset
