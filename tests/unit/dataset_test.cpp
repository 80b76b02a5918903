// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/dataset.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "tatumflow/engine/corpus.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::dataset {
namespace {

namespace fs = std::filesystem;

// A few seconds of notes and pedal changes, different for every seed.
Performance synthetic_performance(std::uint64_t seed, double seconds) {
  Rng rng(seed);
  Performance performance;
  for (std::int64_t onset_us = 0; onset_us < static_cast<std::int64_t>(seconds * 1e6);
       onset_us += 50'000 + static_cast<std::int64_t>(rng.below(400'000))) {
    Note note;
    note.onset_us = onset_us;
    note.duration_us = 20'000 + static_cast<std::int64_t>(rng.below(1'000'000));
    note.pitch = static_cast<std::uint8_t>(30 + rng.below(70));
    note.velocity = static_cast<std::uint8_t>(20 + rng.below(100));
    performance.notes.push_back(note);
  }
  performance.pedals = {{1'000'000, true, 0}, {2'500'000, false, 0}};
  performance.sort();
  return performance;
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

struct Recording {
  std::string setting, performer, album, title;
};

// A corpus in a temporary folder: both transcriptions of every recording,
// written with write_smf, listed in manifests like PiJAMA's.
class SyntheticCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            ("tatumflow_dataset_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    data_ = root_ / "pijama";
    fs::create_directories(data_);
    for (int album = 0; album < 8; ++album) {
      for (int track = 0; track < 2; ++track) {
        recordings_.push_back({"studio", "Art Tatum", "Masterpieces Vol. " + std::to_string(album + 1),
                               "Tune " + std::to_string(track)});
      }
    }
    for (const char* performer : {"Bill Evans", "Keith Jarrett", "Mary Lou Williams"}) {
      for (int album = 0; album < 2; ++album) {
        recordings_.push_back(
            {"live", performer, std::string(performer) + " Live " + std::to_string(album), "Solo"});
      }
    }
    write_corpus("midi", /*manifest=*/true);
    write_corpus("midi_kong", /*manifest=*/true);
  }

  void TearDown() override { fs::remove_all(root_); }

  void write_corpus(const std::string& folder, bool manifest) {
    std::ofstream out;
    if (manifest) {
      out.open(data_ / ("manifest_" + folder + ".tsv"));
      out << "path\tsetting\tperformer\talbum\ttitle\tseconds\tnotes\tpedal_events\terror\n";
    }
    std::uint64_t seed = folder == "midi" ? 1 : 1000;
    for (const Recording& r : recordings_) {
      const fs::path relative = fs::path(r.setting) / r.performer / r.album / (r.title + ".midi");
      fs::create_directories((data_ / folder / relative).parent_path());
      const Performance performance = synthetic_performance(seed++, 12.0);
      write_smf(data_ / folder / relative, performance);
      if (manifest) {
        out << relative.generic_string() << '\t' << r.setting << '\t' << r.performer << '\t' << r.album
            << '\t' << r.title << '\t' << performance.seconds() << '\t' << performance.notes.size()
            << "\t2\t\n";
      }
    }
  }

  [[nodiscard]] std::vector<CorpusEntry> index(TranscriptionSet set = TranscriptionSet::kBoth,
                                               double fraction = 0.1) const {
    return index_corpus({data_, set, fraction});
  }

  CacheBuildReport build(const std::vector<CorpusEntry>& entries, const fs::path& out, unsigned threads = 2,
                         std::uint64_t shard_tokens = std::uint64_t{32} << 20) const {
    CacheBuildOptions options;
    options.data_dir = data_;
    options.out_dir = out;
    options.source = "synthetic";
    options.threads = threads;
    options.shard_tokens = shard_tokens;
    return build_token_cache(entries, options);
  }

  void write_manifest(const std::string& text) const {
    std::ofstream(data_ / "manifest_midi.tsv", std::ios::trunc) << text;
  }

  // The message of the CorpusError that indexing throws.
  [[nodiscard]] std::string index_error() const {
    try {
      (void)index(TranscriptionSet::kMidi);
    } catch (const CorpusError& e) {
      return e.what();
    }
    ADD_FAILURE() << "index_corpus did not throw";
    return "";
  }

  fs::path root_;
  fs::path data_;
  std::vector<Recording> recordings_;
};

CorpusFilter performer_filter(const std::string& performer) {
  CorpusFilter filter;
  filter.performer = performer;
  return filter;
}

CorpusFilter split_filter(Split split) {
  CorpusFilter filter;
  filter.split = split;
  return filter;
}

CorpusFilter count_filter(std::size_t max_files) {
  CorpusFilter filter;
  filter.max_files = max_files;
  return filter;
}

SamplerOptions sampler_options(std::optional<Split> split, const std::string& performer,
                               std::optional<Transcription> transcription) {
  SamplerOptions options;
  options.split = split;
  options.performer = performer;
  options.transcription = transcription;
  return options;
}

std::string open_error(const fs::path& dir) {
  try {
    (void)TokenCache::open(dir);
  } catch (const CacheError& e) {
    return e.what();
  }
  ADD_FAILURE() << "TokenCache::open did not throw";
  return "";
}

TEST(Corpus, Fnv1a64MatchesTheReferenceVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(Corpus, AlbumHashSpreadsNamesThatDifferOnlyAtTheEnd) {
  const double vol2 = album_hash_unit("Art Tatum", "Vol. 2");
  const double vol3 = album_hash_unit("Art Tatum", "Vol. 3");
  EXPECT_GE(vol2, 0.0);
  EXPECT_LT(vol2, 1.0);
  EXPECT_GT(std::abs(vol2 - vol3), 1e-3);
  EXPECT_EQ(vol2, album_hash_unit("Art Tatum", "Vol. 2"));
}

TEST(Corpus, ValidationShareFollowsTheFraction) {
  std::vector<CorpusEntry> entries(4000);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].performer = "P" + std::to_string(i);
    entries[i].album = "A";
  }
  assign_splits(entries, 0.2);
  const auto validation = std::count_if(entries.begin(), entries.end(),
                                        [](const CorpusEntry& e) { return e.split == Split::kValidation; });
  // Binomial(4000, 0.2): standard deviation 25, so +-100 is four of them.
  EXPECT_NEAR(static_cast<double>(validation), 800.0, 100.0);
  EXPECT_THROW(assign_splits(entries, 1.5), std::invalid_argument);
}

TEST_F(SyntheticCorpus, ManifestGivesEveryColumn) {
  const std::vector<CorpusEntry> entries = index();
  ASSERT_EQ(entries.size(), 2 * recordings_.size());
  const auto tatum = std::find_if(entries.begin(), entries.end(), [](const CorpusEntry& e) {
    return e.performer == "Art Tatum" && e.transcription == Transcription::kKong;
  });
  ASSERT_NE(tatum, entries.end());
  EXPECT_EQ(tatum->setting, "studio");
  EXPECT_EQ(tatum->album, "Masterpieces Vol. 1");
  EXPECT_EQ(tatum->title, "Tune 0");
  EXPECT_EQ(tatum->path, "midi_kong/studio/Art Tatum/Masterpieces Vol. 1/Tune 0.midi");
  EXPECT_GT(tatum->seconds, 10.0);
  EXPECT_GT(tatum->notes, 10);
  EXPECT_EQ(index(TranscriptionSet::kKong).size(), recordings_.size());
  EXPECT_EQ(index(TranscriptionSet::kMidi).size(), recordings_.size());
}

TEST_F(SyntheticCorpus, SplitIsDeterministicAndKeepsAlbumsAndRecordingsTogether) {
  const std::vector<CorpusEntry> first = index();
  const std::vector<CorpusEntry> second = index();
  ASSERT_EQ(first.size(), second.size());
  std::map<std::string, Split> album_side;
  std::map<std::string, Split> recording_side;
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].path, second[i].path);
    EXPECT_EQ(first[i].split, second[i].split);
    const std::string album = first[i].performer + "/" + first[i].album;
    const auto [album_it, new_album] = album_side.emplace(album, first[i].split);
    EXPECT_EQ(album_it->second, first[i].split) << album << " is on both sides";
    const auto [recording_it, new_recording] =
        recording_side.emplace(album + "/" + first[i].title, first[i].split);
    EXPECT_EQ(recording_it->second, first[i].split) << "both transcriptions of a recording must share a side";
  }
  // Selecting one transcription does not move anything.
  for (const CorpusEntry& entry : index(TranscriptionSet::kKong)) {
    EXPECT_EQ(album_side.at(entry.performer + "/" + entry.album), entry.split);
  }
}

TEST_F(SyntheticCorpus, PerformerWithEnoughAlbumsAlwaysGetsAValidationAlbum) {
  for (const double fraction : {0.07, 0.1, 0.15}) {  // 8 albums: 0.56, 0.8, 1.2 expected
    std::set<std::string> validation;
    std::set<std::string> train;
    for (const CorpusEntry& entry : index(TranscriptionSet::kBoth, fraction)) {
      if (entry.performer != "Art Tatum") continue;
      (entry.split == Split::kValidation ? validation : train).insert(entry.album);
    }
    EXPECT_GE(validation.size(), 1U) << fraction;
    EXPECT_GE(train.size(), 5U) << fraction;
  }
  for (const CorpusEntry& entry : index(TranscriptionSet::kBoth, 0.0)) EXPECT_EQ(entry.split, Split::kTrain);
  for (const CorpusEntry& entry : index(TranscriptionSet::kBoth, 1.0))
    EXPECT_EQ(entry.split, Split::kValidation);
}

TEST_F(SyntheticCorpus, FiltersBySplitPerformerAndCount) {
  const std::vector<CorpusEntry> entries = index();
  const auto tatum = filter_corpus(entries, performer_filter("tATUM"));
  EXPECT_EQ(tatum.size(), 32U);
  for (const CorpusEntry& entry : tatum) EXPECT_EQ(entry.performer, "Art Tatum");
  const auto validation = filter_corpus(entries, split_filter(Split::kValidation));
  EXPECT_FALSE(validation.empty());
  for (const CorpusEntry& entry : validation) EXPECT_EQ(entry.split, Split::kValidation);
  EXPECT_EQ(filter_corpus(entries, count_filter(3)).size(), 3U);
  EXPECT_TRUE(filter_corpus(entries, performer_filter("Nobody")).empty());
}

TEST_F(SyntheticCorpus, MissingManifestFallsBackToTheFolderLayout) {
  fs::remove(data_ / "manifest_midi_kong.tsv");
  const std::vector<CorpusEntry> walked = index(TranscriptionSet::kKong);
  ASSERT_EQ(walked.size(), recordings_.size());
  const std::vector<CorpusEntry> listed = index(TranscriptionSet::kMidi);
  for (std::size_t i = 0; i < walked.size(); ++i) {
    EXPECT_EQ(walked[i].performer, listed[i].performer);
    EXPECT_EQ(walked[i].album, listed[i].album);
    EXPECT_EQ(walked[i].title, listed[i].title);
    EXPECT_EQ(walked[i].setting, listed[i].setting);
    EXPECT_EQ(walked[i].split, listed[i].split);
  }
}

TEST_F(SyntheticCorpus, MalformedManifestNamesFileAndLine) {
  const std::string header = "path\tsetting\tperformer\talbum\ttitle\tseconds\tnotes\tpedal_events\terror\n";
  const std::string good = "live/A/B/c.midi\tlive\tA\tB\tc\t1.5\t10\t0\t\n";

  write_manifest(header + good + "live/A/B/d.midi\tlive\tA\tB\n");
  std::string message = index_error();
  EXPECT_NE(message.find("manifest_midi.tsv:3:"), std::string::npos) << message;
  EXPECT_NE(message.find("found 4"), std::string::npos) << message;

  write_manifest(header + "live/A/B/c.midi\tlive\tA\tB\tc\tlong\t10\t0\t\n");
  message = index_error();
  EXPECT_NE(message.find("manifest_midi.tsv:2:"), std::string::npos) << message;
  EXPECT_NE(message.find("seconds"), std::string::npos) << message;

  write_manifest(header + "../../etc/passwd\tlive\tA\tB\tc\t1\t10\t0\t\n");
  EXPECT_NE(index_error().find("manifest_midi.tsv:2:"), std::string::npos);

  write_manifest(header + good + good);
  EXPECT_NE(index_error().find("listed twice (first on line 2)"), std::string::npos);

  write_manifest("file\tperformer\n" + good);
  EXPECT_NE(index_error().find("manifest_midi.tsv:1:"), std::string::npos);

  EXPECT_THROW((void)index_corpus({root_ / "absent", TranscriptionSet::kBoth, 0.1}), CorpusError);
}

TEST_F(SyntheticCorpus, CacheHoldsEveryPerformanceAndItsTokens) {
  const std::vector<CorpusEntry> entries = index();
  const CacheBuildReport report = build(entries, root_ / "cache");
  EXPECT_EQ(report.files, entries.size());
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(report.performers, 4U);
  EXPECT_EQ(report.train.files + report.validation.files, report.files);
  EXPECT_GT(report.validation.files, 0U);

  const TokenCache cache = TokenCache::open(root_ / "cache");
  EXPECT_EQ(cache.header().tokenizer_version, tokens::kTokenizerVersion);
  EXPECT_EQ(cache.header().vocab_size, static_cast<std::uint32_t>(tokens::kVocabSize));
  EXPECT_EQ(cache.header().source, "synthetic");
  ASSERT_EQ(cache.performances().size(), entries.size());
  std::uint64_t tokens_total = 0;
  std::uint64_t notes_total = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const CachedPerformance& record = cache.performances()[i];
    EXPECT_EQ(record.id, i);
    EXPECT_EQ(record.path, entries[i].path);
    EXPECT_EQ(record.performer, entries[i].performer);
    EXPECT_EQ(record.album, entries[i].album);
    EXPECT_EQ(record.title, entries[i].title);
    EXPECT_EQ(record.setting, entries[i].setting);
    EXPECT_EQ(record.transcription, entries[i].transcription);
    EXPECT_EQ(record.split, entries[i].split);
    const Performance performance = read_smf(data_ / entries[i].path);
    const std::vector<tokens::Token> expected = tokens::encode(performance);
    const auto stored = cache.tokens(i);
    ASSERT_TRUE(std::equal(stored.begin(), stored.end(), expected.begin(), expected.end()))
        << entries[i].path;
    EXPECT_EQ(record.note_count, performance.notes.size());
    EXPECT_NEAR(record.seconds, performance.seconds(), 1e-9);
    tokens_total += stored.size();
    notes_total += record.note_count;
  }
  EXPECT_EQ(tokens_total, report.tokens);
  EXPECT_EQ(tokens_total, cache.total_tokens());
  EXPECT_EQ(notes_total, report.notes);
  EXPECT_EQ(cache_staleness(root_ / "cache", "synthetic"), "");
  EXPECT_NE(cache_staleness(root_ / "cache", "other options"), "");
  EXPECT_NE(cache_staleness(root_ / "nothing", "synthetic"), "");
}

TEST_F(SyntheticCorpus, CacheBytesDoNotDependOnThreadsAndShardsNeverSplitAPerformance) {
  const std::vector<CorpusEntry> entries = index();
  const std::uint64_t shard_tokens = 700;  // a few performances per shard
  const CacheBuildReport one = build(entries, root_ / "one", 1, shard_tokens);
  const CacheBuildReport three = build(entries, root_ / "three", 3, shard_tokens);
  ASSERT_GT(one.shards, 2U);
  EXPECT_EQ(one.shards, three.shards);
  EXPECT_EQ(read_bytes(root_ / "one" / "index.bin"), read_bytes(root_ / "three" / "index.bin"));
  for (std::size_t shard = 0; shard < one.shards; ++shard) {
    char name[32];
    std::snprintf(name, sizeof name, "shard_%04zu.bin", shard);
    EXPECT_EQ(read_bytes(root_ / "one" / name), read_bytes(root_ / "three" / name)) << name;
  }
  const TokenCache cache = TokenCache::open(root_ / "one");
  for (const CachedPerformance& record : cache.performances()) {
    EXPECT_LE(record.token_offset + record.token_count, cache.header().shard_tokens.at(record.shard));
    const auto sequence = cache.tokens(record.id);
    EXPECT_EQ(sequence.front(), tokens::kSos);
    EXPECT_EQ(sequence.back(), tokens::kEos);
  }
}

TEST_F(SyntheticCorpus, UnreadableFilesAreReportedAndSkipped) {
  const std::vector<CorpusEntry> entries = index(TranscriptionSet::kMidi);
  write_bytes(data_ / entries[1].path, {'n', 'o', 't', ' ', 'm', 'i', 'd', 'i'});
  fs::remove(data_ / entries[4].path);
  const CacheBuildReport report = build(entries, root_ / "cache");
  ASSERT_EQ(report.failed.size(), 2U);
  EXPECT_EQ(report.failed[0].path, entries[1].path);
  EXPECT_EQ(report.failed[1].path, entries[4].path);
  EXPECT_FALSE(report.failed[0].message.empty());
  EXPECT_EQ(report.files, entries.size() - 2);
  const TokenCache cache = TokenCache::open(root_ / "cache");
  ASSERT_EQ(cache.performances().size(), entries.size() - 2);
  EXPECT_EQ(cache.performances()[1].path, entries[2].path);
}

TEST_F(SyntheticCorpus, CacheFromAnotherTokenizerVersionIsRejected) {
  build(index(), root_ / "cache");
  std::vector<std::uint8_t> bytes = read_bytes(root_ / "cache" / "index.bin");
  // Layout: magic (8), format version (4), tokenizer version (4), ...; checksum last.
  const std::uint32_t old_version = tokens::kTokenizerVersion + 7;
  std::memcpy(bytes.data() + 12, &old_version, sizeof old_version);
  const std::uint64_t checksum =
      fnv1a64(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size() - 8));
  std::memcpy(bytes.data() + bytes.size() - 8, &checksum, sizeof checksum);
  write_bytes(root_ / "cache" / "index.bin", bytes);

  const std::string message = open_error(root_ / "cache");
  EXPECT_NE(message.find("tokenizer version " + std::to_string(old_version)), std::string::npos) << message;
  EXPECT_NE(message.find("rebuild"), std::string::npos) << message;
  EXPECT_NE(cache_staleness(root_ / "cache", "synthetic"), "");
}

TEST_F(SyntheticCorpus, CorruptOrTruncatedCacheIsRejected) {
  const fs::path cache = root_ / "cache";
  build(index(), cache);
  const std::vector<std::uint8_t> index_bytes = read_bytes(cache / "index.bin");
  const std::vector<std::uint8_t> shard_bytes = read_bytes(cache / "shard_0000.bin");

  std::vector<std::uint8_t> damaged = index_bytes;
  damaged[damaged.size() / 2] ^= 0x5a;
  write_bytes(cache / "index.bin", damaged);
  EXPECT_NE(open_error(cache).find("index.bin: checksum mismatch"), std::string::npos);

  write_bytes(cache / "index.bin", {index_bytes.begin(), index_bytes.begin() + 10});
  EXPECT_NE(open_error(cache).find("index.bin: truncated"), std::string::npos) << open_error(cache);

  write_bytes(cache / "index.bin", {'j', 'u', 'n', 'k', 'j', 'u', 'n', 'k', 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_NE(open_error(cache).find("not a TatumFlow token cache"), std::string::npos);

  write_bytes(cache / "index.bin", index_bytes);
  write_bytes(cache / "shard_0000.bin", {shard_bytes.begin(), shard_bytes.end() - 2});
  EXPECT_NE(open_error(cache).find("shard_0000.bin: "), std::string::npos);
  EXPECT_NE(open_error(cache).find("truncated"), std::string::npos);

  damaged = shard_bytes;
  damaged[damaged.size() / 3] ^= 0x01;
  write_bytes(cache / "shard_0000.bin", damaged);
  EXPECT_NE(open_error(cache).find("shard_0000.bin: checksum mismatch"), std::string::npos);

  write_bytes(cache / "shard_0000.bin", shard_bytes);
  EXPECT_NO_THROW((void)TokenCache::open(cache));
  EXPECT_NE(open_error(root_ / "no cache").find("no token cache"), std::string::npos);
}

TEST_F(SyntheticCorpus, RebuildReplacesAnOldCache) {
  const fs::path cache = root_ / "cache";
  build(index(), cache, 2, 300);
  const std::size_t many_shards = TokenCache::open(cache).header().shard_tokens.size();
  build(filter_corpus(index(), count_filter(2)), cache);
  const TokenCache rebuilt = TokenCache::open(cache);
  EXPECT_EQ(rebuilt.performances().size(), 2U);
  EXPECT_EQ(rebuilt.header().shard_tokens.size(), 1U);
  ASSERT_GT(many_shards, 1U);
  EXPECT_FALSE(fs::exists(cache / "shard_0001.bin"));
}

TEST_F(SyntheticCorpus, WindowsStartOnChunkBoundariesAndStayInsideTheirPerformance) {
  build(index(), root_ / "cache");
  const TokenCache cache = TokenCache::open(root_ / "cache");
  const std::size_t length = 64;
  const WindowSampler sampler(cache, length);
  EXPECT_EQ(sampler.performance_count(), cache.performances().size());
  Rng rng(42);
  std::set<std::pair<std::uint32_t, std::uint64_t>> seen;
  for (int draw = 0; draw < 20000; ++draw) {
    const Window window = sampler.sample_window(rng);
    const auto sequence = cache.tokens(window.performance);
    ASSERT_EQ(window.tokens.size(), std::min<std::size_t>(length, sequence.size()));
    ASSERT_LE(window.start + window.tokens.size(), sequence.size());
    ASSERT_EQ(window.tokens.data(), sequence.data() + window.start);
    ASSERT_TRUE(window.tokens.front() == tokens::kChunk ||
                (window.start == 0 && window.tokens.front() == tokens::kSos));
    seen.emplace(window.performance, window.start);
  }
  // 20000 uniform draws over a few hundred starts reach every one of them.
  EXPECT_EQ(seen.size(), sampler.start_count());

  Rng a(7);
  Rng b(7);
  for (int draw = 0; draw < 100; ++draw) {
    const Window wa = sampler.sample_window(a);
    const Window wb = sampler.sample_window(b);
    EXPECT_EQ(wa.performance, wb.performance);
    EXPECT_EQ(wa.start, wb.start);
  }
}

TEST_F(SyntheticCorpus, SamplerFiltersAndHandlesShortPerformances) {
  build(index(), root_ / "cache");
  const TokenCache cache = TokenCache::open(root_ / "cache");
  const WindowSampler validation(cache, 32, sampler_options(Split::kValidation, "tatum", std::nullopt));
  Rng rng(3);
  for (int draw = 0; draw < 1000; ++draw) {
    const CachedPerformance& record = cache.performances()[validation.sample_window(rng).performance];
    ASSERT_EQ(record.split, Split::kValidation);
    ASSERT_EQ(record.performer, "Art Tatum");
  }
  const WindowSampler kong(cache, 32, sampler_options(std::nullopt, "", Transcription::kKong));
  EXPECT_EQ(kong.performance_count(), recordings_.size());

  // Longer than any performance: one whole-performance window each.
  const WindowSampler whole(cache, 1'000'000);
  EXPECT_EQ(whole.start_count(), cache.performances().size());
  const Window window = whole.sample_window(rng);
  EXPECT_EQ(window.start, 0U);
  EXPECT_EQ(window.tokens.size(), cache.tokens(window.performance).size());

  EXPECT_THROW(WindowSampler(cache, 32, sampler_options(std::nullopt, "Nobody", std::nullopt)),
               std::invalid_argument);
  EXPECT_THROW(WindowSampler(cache, 0), std::invalid_argument);
}

TEST(PiJama, SplitHoldsOutArtTatumAlbumsAndKeepsRecordingsTogether) {
  const fs::path data = fs::path(TATUMFLOW_SOURCE_DIR) / ".." / "shared" / "data" / "pijama";
  if (!fs::exists(data / "manifest_midi.tsv")) GTEST_SKIP() << "PiJAMA data not found at " << data;
  const std::vector<CorpusEntry> entries = index_corpus({data, TranscriptionSet::kBoth, 0.1});
  std::map<std::string, Split> album_side;
  std::set<std::string> tatum_validation;
  std::set<std::string> tatum_train;
  double seconds[2] = {0, 0};
  for (const CorpusEntry& entry : entries) {
    const auto [it, inserted] = album_side.emplace(entry.performer + "/" + entry.album, entry.split);
    EXPECT_EQ(it->second, entry.split) << it->first;
    seconds[static_cast<int>(entry.split)] += entry.seconds;
    if (entry.performer == "Art Tatum") {
      (entry.split == Split::kValidation ? tatum_validation : tatum_train).insert(entry.album);
    }
  }
  EXPECT_GE(tatum_validation.size(), 1U);
  EXPECT_GE(tatum_train.size(), 1U);
  const double validation_share = seconds[1] / (seconds[0] + seconds[1]);
  EXPECT_GT(validation_share, 0.05);
  EXPECT_LT(validation_share, 0.2);
}

}  // namespace
}  // namespace tatumflow::dataset
