// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/dataset.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "tatumflow/engine/progress.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::dataset {

static_assert(std::endian::native == std::endian::little, "cache shards and index are little-endian");

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'T', 'F', 'C', 'A', 'C', 'H', 'E', '\0'};
constexpr const char* kIndexName = "index.bin";
constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ULL;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

std::string shard_name(std::size_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard_%04zu.bin", shard);
  return name;
}

bool is_cache_file(const std::string& name) {
  if (name == kIndexName || name == std::string(kIndexName) + ".tmp") return true;
  if (!name.starts_with("shard_") || !name.ends_with(".bin") || name.size() <= 10) return false;
  return std::all_of(name.begin() + 6, name.end() - 4, [](char c) { return c >= '0' && c <= '9'; });
}

// FNV-1a over whole tokens, finished with mix64: one multiply per token, so
// verifying a full corpus at open costs tens of milliseconds.
class TokenChecksum {
 public:
  void add(std::span<const tokens::Token> sequence) {
    for (const tokens::Token token : sequence) hash_ = (hash_ ^ token) * kFnvPrime;
  }
  [[nodiscard]] std::uint64_t value() const { return mix64(hash_); }

 private:
  std::uint64_t hash_ = kFnvBasis;
};

class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    const auto* raw = reinterpret_cast<const std::uint8_t*>(&value);
    bytes_.insert(bytes_.end(), raw, raw + sizeof(T));
  }
  void put_string(const std::string& text) {
    put(static_cast<std::uint32_t>(text.size()));
    bytes_.insert(bytes_.end(), text.begin(), text.end());
  }
  void put_raw(const void* data, std::size_t size) {
    const auto* raw = static_cast<const std::uint8_t*>(data);
    bytes_.insert(bytes_.end(), raw, raw + size);
  }
  [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

class ByteReader {
 public:
  ByteReader(std::span<const std::uint8_t> bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}

  template <typename T>
  T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  std::string get_string() {
    const auto size = get<std::uint32_t>();
    need(size);
    std::string text(reinterpret_cast<const char*>(bytes_.data() + position_), size);
    position_ += size;
    return text;
  }
  void get_raw(void* out, std::size_t size) {
    need(size);
    std::memcpy(out, bytes_.data() + position_, size);
    position_ += size;
  }
  [[nodiscard]] std::size_t position() const { return position_; }

 private:
  void need(std::size_t size) const {
    if (size > bytes_.size() - position_) {
      throw CacheError(file_ + ": truncated (needs " + std::to_string(size) + " more bytes at byte " +
                       std::to_string(position_) + " of " + std::to_string(bytes_.size()) + ")");
    }
  }
  std::span<const std::uint8_t> bytes_;
  std::string file_;
  std::size_t position_ = 0;
};

std::vector<std::uint8_t> read_whole_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CacheError(path.string() + ": cannot be opened");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw CacheError(path.string() + ": read error");
  return bytes;
}

std::vector<std::uint8_t> encode_index(const CacheHeader& header,
                                       const std::vector<CachedPerformance>& records,
                                       const std::vector<std::uint64_t>& shard_checksums) {
  ByteWriter out;
  out.put_raw(kMagic, sizeof kMagic);
  out.put(header.format_version);
  out.put(header.tokenizer_version);
  out.put(header.vocab_size);
  out.put_string(header.source);
  out.put(static_cast<std::uint32_t>(header.shard_tokens.size()));
  for (std::size_t shard = 0; shard < header.shard_tokens.size(); ++shard) {
    out.put(header.shard_tokens[shard]);
    out.put(shard_checksums[shard]);
  }
  out.put(static_cast<std::uint32_t>(records.size()));
  for (const CachedPerformance& record : records) {
    out.put_string(record.path);
    out.put(static_cast<std::uint8_t>(record.transcription));
    out.put_string(record.setting);
    out.put_string(record.performer);
    out.put_string(record.album);
    out.put_string(record.title);
    out.put(static_cast<std::uint8_t>(record.split));
    out.put(record.shard);
    out.put(record.token_offset);
    out.put(record.token_count);
    out.put(record.note_count);
    out.put(record.seconds);
  }
  std::vector<std::uint8_t> bytes = out.bytes();
  const std::uint64_t checksum =
      fnv1a64(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  const auto* raw = reinterpret_cast<const std::uint8_t*>(&checksum);
  bytes.insert(bytes.end(), raw, raw + sizeof checksum);
  return bytes;
}

// Writes performances into shard files of at most `limit` tokens each; a
// performance never spans two shards. The open shard's number is the count of
// closed ones.
class ShardWriter {
 public:
  ShardWriter(fs::path dir, std::uint64_t limit)
      : dir_(std::move(dir)), limit_(std::max<std::uint64_t>(1, limit)) {}

  // Returns (shard, token offset) where the tokens were stored.
  std::pair<std::uint32_t, std::uint64_t> append(std::span<const tokens::Token> sequence) {
    if (!file_.is_open() || (in_shard_ > 0 && in_shard_ + sequence.size() > limit_)) start_shard();
    const std::uint64_t offset = in_shard_;
    file_.write(reinterpret_cast<const char*>(sequence.data()),
                static_cast<std::streamsize>(sequence.size() * sizeof(tokens::Token)));
    if (!file_) throw CacheError(open_path().string() + ": write failed");
    checksum_.add(sequence);
    in_shard_ += sequence.size();
    return {static_cast<std::uint32_t>(shard_tokens_.size()), offset};
  }

  void close() {
    if (!file_.is_open()) return;
    file_.close();
    if (!file_) throw CacheError(open_path().string() + ": write failed");
    shard_tokens_.push_back(in_shard_);
    shard_checksums_.push_back(checksum_.value());
  }

  [[nodiscard]] const std::vector<std::uint64_t>& shard_tokens() const { return shard_tokens_; }
  [[nodiscard]] const std::vector<std::uint64_t>& shard_checksums() const { return shard_checksums_; }

 private:
  [[nodiscard]] fs::path open_path() const { return dir_ / shard_name(shard_tokens_.size()); }

  void start_shard() {
    close();
    file_.open(open_path(), std::ios::binary | std::ios::trunc);
    if (!file_) throw CacheError(open_path().string() + ": cannot be created");
    in_shard_ = 0;
    checksum_ = TokenChecksum();
  }

  fs::path dir_;
  std::uint64_t limit_;
  std::ofstream file_;
  std::uint64_t in_shard_ = 0;
  TokenChecksum checksum_;
  std::vector<std::uint64_t> shard_tokens_;
  std::vector<std::uint64_t> shard_checksums_;
};

struct Tokenized {
  bool done = false;
  std::vector<tokens::Token> sequence;
  std::uint32_t notes = 0;
  double seconds = 0.0;
  std::string failure;  // SmfError text; empty when parsed
  std::exception_ptr error;
};

// The index goes first, so an interrupted build never leaves a cache that looks complete.
void remove_cache_files(const fs::path& dir) {
  fs::remove(dir / kIndexName);
  for (const auto& item : fs::directory_iterator(dir)) {
    if (item.is_regular_file() && is_cache_file(item.path().filename().string())) fs::remove(item.path());
  }
}

}  // namespace

void CacheBuildReport::count(const CachedPerformance& record) {
  SplitTotals& side = record.split == Split::kTrain ? train : validation;
  ++side.files;
  side.tokens += record.token_count;
  side.seconds += record.seconds;
  ++files;
  notes += record.note_count;
  tokens += record.token_count;
  seconds += record.seconds;
}

CacheBuildReport build_token_cache(const std::vector<CorpusEntry>& entries, const CacheBuildOptions& options,
                                   ProgressBar* progress) {
  std::error_code error;
  fs::create_directories(options.out_dir, error);
  if (error) throw CacheError(options.out_dir.string() + ": cannot be created: " + error.message());
  remove_cache_files(options.out_dir);

  const std::size_t count = entries.size();
  unsigned threads =
      options.threads > 0 ? options.threads : std::max(1U, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::clamp<std::size_t>(count, 1, threads));
  // Workers run at most this far ahead of the writer, which bounds memory.
  const std::size_t max_ahead = 4 * static_cast<std::size_t>(threads) + 8;

  std::vector<Tokenized> results(count);
  std::mutex mutex;
  std::condition_variable result_ready;
  std::condition_variable room_ready;
  std::size_t next = 0;     // guarded by mutex
  std::size_t written = 0;  // guarded by mutex
  bool stop = false;        // guarded by mutex

  auto worker = [&] {
    for (;;) {
      std::size_t i = 0;
      {
        std::unique_lock lock(mutex);
        room_ready.wait(lock, [&] { return stop || next >= count || next < written + max_ahead; });
        if (stop || next >= count) return;
        i = next++;
      }
      Tokenized result;
      try {
        const Performance performance = read_smf(options.data_dir / entries[i].path);
        result.sequence = tokens::encode(performance);
        result.notes = static_cast<std::uint32_t>(performance.notes.size());
        result.seconds = performance.seconds();
      } catch (const SmfError& e) {
        result.failure = e.what();
      } catch (...) {
        result.error = std::current_exception();
      }
      result.done = true;
      {
        std::lock_guard lock(mutex);
        results[i] = std::move(result);
      }
      result_ready.notify_all();
    }
  };

  std::vector<std::thread> pool;
  auto stop_pool = [&] {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    room_ready.notify_all();
    for (std::thread& thread : pool) thread.join();
    pool.clear();
  };

  CacheBuildReport report;
  std::vector<CachedPerformance> records;
  ShardWriter shards(options.out_dir, options.shard_tokens);
  std::set<std::string> performers;
  try {
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
    for (std::size_t i = 0; i < count; ++i) {
      Tokenized result;
      {
        std::unique_lock lock(mutex);
        result_ready.wait(lock, [&] { return results[i].done; });
        result = std::move(results[i]);
        results[i] = Tokenized();
        written = i + 1;
      }
      room_ready.notify_all();
      if (result.error) std::rethrow_exception(result.error);
      const CorpusEntry& entry = entries[i];
      if (progress != nullptr) progress->add(1);
      if (!result.failure.empty()) {
        report.failed.push_back({entry.path, result.failure});
        continue;
      }
      if (result.sequence.size() > UINT32_MAX) throw CacheError(entry.path + ": more than 2^32 tokens");
      const auto [shard, offset] = shards.append(result.sequence);
      CachedPerformance record;
      record.id = static_cast<std::uint32_t>(records.size());
      record.path = entry.path;
      record.transcription = entry.transcription;
      record.setting = entry.setting;
      record.performer = entry.performer;
      record.album = entry.album;
      record.title = entry.title;
      record.split = entry.split;
      record.shard = shard;
      record.token_offset = offset;
      record.token_count = static_cast<std::uint32_t>(result.sequence.size());
      record.note_count = result.notes;
      record.seconds = result.seconds;

      report.count(record);
      performers.insert(record.performer);
      records.push_back(std::move(record));
    }
    stop_pool();
  } catch (...) {
    stop_pool();
    throw;
  }
  shards.close();

  CacheHeader header;
  header.source = options.source;
  header.shard_tokens = shards.shard_tokens();
  const std::vector<std::uint8_t> index = encode_index(header, records, shards.shard_checksums());
  const fs::path temporary = options.out_dir / (std::string(kIndexName) + ".tmp");
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(index.data()), static_cast<std::streamsize>(index.size()));
    out.close();
    if (!out) throw CacheError(temporary.string() + ": write failed");
  }
  fs::rename(temporary, options.out_dir / kIndexName);

  report.performers = performers.size();
  report.shards = header.shard_tokens.size();
  report.bytes = index.size();
  for (const std::uint64_t tokens_in_shard : header.shard_tokens) report.bytes += tokens_in_shard * 2;
  return report;
}

std::string cache_staleness(const fs::path& dir, const std::string& source) {
  if (!fs::exists(dir / kIndexName)) return "no cache in " + dir.string();
  try {
    const TokenCache cache = TokenCache::open(dir);
    if (cache.header().source != source) {
      return "built from \"" + cache.header().source + "\", not \"" + source + "\"";
    }
  } catch (const CacheError& e) {
    return e.what();
  }
  return "";
}

TokenCache TokenCache::open(const fs::path& dir) {
  const fs::path index_path = dir / kIndexName;
  const std::string index_name = index_path.string();
  if (!fs::exists(index_path))
    throw CacheError(index_name + ": no token cache here (run `tatumflow dataset build`)");
  const std::vector<std::uint8_t> bytes = read_whole_file(index_path);

  ByteReader in(bytes, index_name);
  char magic[sizeof kMagic];
  in.get_raw(magic, sizeof magic);
  if (std::memcmp(magic, kMagic, sizeof magic) != 0)
    throw CacheError(index_name + ": not a TatumFlow token cache");
  TokenCache cache;
  CacheHeader& header = cache.header_;
  header.format_version = in.get<std::uint32_t>();
  if (header.format_version != kCacheFormatVersion) {
    throw CacheError(index_name + ": cache format " + std::to_string(header.format_version) +
                     ", this build reads " + std::to_string(kCacheFormatVersion) +
                     " (rebuild with `tatumflow dataset build`)");
  }
  if (bytes.size() < sizeof(std::uint64_t) + in.position()) throw CacheError(index_name + ": truncated");
  const std::size_t body_size = bytes.size() - sizeof(std::uint64_t);
  std::uint64_t stored_checksum = 0;
  std::memcpy(&stored_checksum, bytes.data() + body_size, sizeof stored_checksum);
  if (fnv1a64(std::string_view(reinterpret_cast<const char*>(bytes.data()), body_size)) != stored_checksum) {
    throw CacheError(index_name +
                     ": checksum mismatch (corrupt or truncated; rebuild with `tatumflow dataset build`)");
  }
  ByteReader body(std::span<const std::uint8_t>(bytes).first(body_size), index_name);
  body.get_raw(magic, sizeof magic);
  body.get<std::uint32_t>();
  header.tokenizer_version = body.get<std::uint32_t>();
  header.vocab_size = body.get<std::uint32_t>();
  if (header.tokenizer_version != tokens::kTokenizerVersion || header.vocab_size != tokens::kVocabSize) {
    throw CacheError(index_name + ": built with tokenizer version " +
                     std::to_string(header.tokenizer_version) + " (vocabulary " +
                     std::to_string(header.vocab_size) + "), this build uses version " +
                     std::to_string(tokens::kTokenizerVersion) + " (vocabulary " +
                     std::to_string(tokens::kVocabSize) + "): rebuild with `tatumflow dataset build`");
  }
  header.source = body.get_string();
  const auto shard_count = body.get<std::uint32_t>();
  std::vector<std::uint64_t> checksums;
  for (std::uint32_t shard = 0; shard < shard_count; ++shard) {
    header.shard_tokens.push_back(body.get<std::uint64_t>());
    checksums.push_back(body.get<std::uint64_t>());
  }
  const auto record_count = body.get<std::uint32_t>();
  for (std::uint32_t id = 0; id < record_count; ++id) {
    CachedPerformance record;
    record.id = id;
    record.path = body.get_string();
    const auto transcription = body.get<std::uint8_t>();
    record.setting = body.get_string();
    record.performer = body.get_string();
    record.album = body.get_string();
    record.title = body.get_string();
    const auto split = body.get<std::uint8_t>();
    record.shard = body.get<std::uint32_t>();
    record.token_offset = body.get<std::uint64_t>();
    record.token_count = body.get<std::uint32_t>();
    record.note_count = body.get<std::uint32_t>();
    record.seconds = body.get<double>();
    const std::string where = index_name + ": record " + std::to_string(id) + " (" + record.path + ")";
    if (transcription > 1 || split > 1) throw CacheError(where + ": bad transcription or split code");
    record.transcription = static_cast<Transcription>(transcription);
    record.split = static_cast<Split>(split);
    if (record.shard >= shard_count || record.token_offset > header.shard_tokens[record.shard] ||
        record.token_count > header.shard_tokens[record.shard] - record.token_offset) {
      throw CacheError(where + ": tokens lie outside its shard");
    }
    cache.performances_.push_back(std::move(record));
  }
  if (body.position() != body_size) throw CacheError(index_name + ": unexpected bytes after the last record");

  for (std::uint32_t shard = 0; shard < shard_count; ++shard) {
    const fs::path path = dir / shard_name(shard);
    const std::string name = path.string();
    const std::uint64_t expected_bytes = header.shard_tokens[shard] * sizeof(tokens::Token);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw CacheError(name + ": cannot be opened: " + std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0 || static_cast<std::uint64_t>(info.st_size) != expected_bytes) {
      ::close(fd);
      throw CacheError(name + ": " + std::to_string(info.st_size) + " bytes, the index expects " +
                       std::to_string(expected_bytes) + " (truncated or corrupt)");
    }
    void* mapped =
        expected_bytes == 0 ? nullptr : ::mmap(nullptr, expected_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (mapped == MAP_FAILED) throw CacheError(name + ": mmap failed: " + std::strerror(errno));
    std::shared_ptr<const tokens::Token> tokens_in_shard(
        static_cast<const tokens::Token*>(mapped), [expected_bytes](const tokens::Token* p) {
          if (p != nullptr) ::munmap(const_cast<tokens::Token*>(p), expected_bytes);
        });
    TokenChecksum checksum;
    checksum.add(std::span(tokens_in_shard.get(), header.shard_tokens[shard]));
    if (checksum.value() != checksums[shard]) {
      throw CacheError(name + ": checksum mismatch (corrupt; rebuild with `tatumflow dataset build`)");
    }
    cache.shards_.push_back(std::move(tokens_in_shard));
  }
  return cache;
}

std::span<const tokens::Token> TokenCache::tokens(std::size_t index) const {
  const CachedPerformance& record = performances_.at(index);
  return {shards_[record.shard].get() + record.token_offset, record.token_count};
}

std::uint64_t TokenCache::total_tokens() const {
  std::uint64_t total = 0;
  for (const std::uint64_t tokens_in_shard : header_.shard_tokens) total += tokens_in_shard;
  return total;
}

WindowSampler::WindowSampler(const TokenCache& cache, std::size_t window_tokens,
                             const SamplerOptions& options)
    : cache_(&cache), window_tokens_(window_tokens) {
  if (window_tokens == 0)
    throw std::invalid_argument("window sampler: window length must be at least 1 token");
  const std::vector<CachedPerformance>& records = cache.performances();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const CachedPerformance& record = records[i];
    if (options.split && record.split != *options.split) continue;
    if (options.transcription && record.transcription != *options.transcription) continue;
    if (!performer_matches(record.performer, options.performer)) continue;
    ++performance_count_;
    const std::span<const tokens::Token> sequence = cache.tokens(i);
    const auto index = static_cast<std::uint32_t>(i);
    if (sequence.size() <= window_tokens) {
      starts_.push_back({index, 0});
      continue;
    }
    const std::size_t last_start = sequence.size() - window_tokens;
    starts_.push_back({index, 0});
    for (std::size_t offset = 1; offset <= last_start; ++offset) {
      if (sequence[offset] == tokens::kChunk) starts_.push_back({index, static_cast<std::uint32_t>(offset)});
    }
  }
  if (starts_.empty()) {
    std::string wanted = options.split ? std::string(to_string(*options.split)) : "any split";
    if (!options.performer.empty()) wanted += ", performer matching \"" + options.performer + "\"";
    if (options.transcription) wanted += std::string(", transcription ") + to_string(*options.transcription);
    throw std::invalid_argument("window sampler: no performance in the cache matches (" + wanted + ")");
  }
}

std::span<const tokens::Token> style_reference(std::span<const tokens::Token> performance, std::size_t begin,
                                               std::size_t end) {
  for (std::size_t i = begin; i < begin + (end - begin) / 2; ++i) {
    if (performance[i] == tokens::kChunk) {
      begin = i;
      break;
    }
  }
  return performance.subspan(begin, end - begin);
}

Window WindowSampler::sample_window(Rng& rng) const {
  const Start start = starts_[rng.below(starts_.size())];
  const std::span<const tokens::Token> sequence = cache_->tokens(start.performance);
  Window window;
  window.performance = start.performance;
  window.start = start.offset;
  window.tokens = sequence.subspan(start.offset, std::min(window_tokens_, sequence.size() - start.offset));
  return window;
}

}  // namespace tatumflow::dataset
