// SPDX-License-Identifier: GPL-3.0-or-later
#include "tatumflow/engine/performer_classifier.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <numbers>
#include <numeric>
#include <thread>
#include <type_traits>
#include <utility>

#include "tatumflow/engine/progress.hpp"
#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::classify {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little, "the model file is little-endian");

namespace {

constexpr char kMagic[8] = {'T', 'F', 'P', 'E', 'R', 'F', 'C', '\0'};
constexpr double kUsPerSecond = 1e6;
constexpr double kMinStd = 1e-6;
constexpr double kAdamBeta1 = 0.9;
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEpsilon = 1e-8;
constexpr double kMinProbability = 1e-12;  // keeps the log loss finite
// Sanity limits for reading a model: far above any real model, low enough
// that a corrupt count cannot ask for gigabytes.
constexpr std::uint32_t kMaxPerformers = 100'000;
constexpr std::uint32_t kMaxStringBytes = 4096;
constexpr int kMaxPedalChannels = 16;

std::int64_t end_us(const Performance& performance) {
  std::int64_t end = performance.length_us;
  for (const Note& note : performance.notes) end = std::max(end, note.offset_us());
  return end;
}

Performance cut_window(const Performance& performance, std::int64_t start_us, std::int64_t clip_us,
                       std::int64_t length_us) {
  Performance clip;
  const std::int64_t stop_us = start_us + clip_us;
  const auto first = std::lower_bound(performance.notes.begin(), performance.notes.end(), start_us,
                                      [](const Note& n, std::int64_t t) { return n.onset_us < t; });
  for (auto it = first; it != performance.notes.end() && it->onset_us < stop_us; ++it) {
    Note note = *it;
    note.onset_us -= start_us;
    note.duration_us = std::min(it->offset_us(), stop_us) - it->onset_us;
    clip.notes.push_back(note);
  }
  std::array<bool, kMaxPedalChannels> down{};
  for (const PedalChange& change : performance.pedals) {
    if (change.time_us >= start_us) break;
    down[change.channel % kMaxPedalChannels] = change.down;
  }
  for (int channel = 0; channel < kMaxPedalChannels; ++channel) {
    if (down[static_cast<std::size_t>(channel)])
      clip.pedals.push_back({0, true, static_cast<std::uint8_t>(channel)});
  }
  for (const PedalChange& change : performance.pedals) {
    if (change.time_us >= start_us && change.time_us < stop_us) {
      clip.pedals.push_back({change.time_us - start_us, change.down, change.channel});
    }
  }
  clip.length_us = length_us;
  clip.sort();
  return clip;
}

std::array<float, kTokenStatCount> token_stats(const Performance& clip) {
  const std::vector<tokens::Token> sequence = tokens::encode(clip, {.add_sos = false, .add_eos = false});
  const double seconds = std::max(clip.seconds(), 1e-3);
  double notes = 0, velocities = 0, sustains = 0, durations = 0, duration_log = 0, shifts = 0, shift_log = 0;
  double chord_notes = 0;
  bool moved = true;
  for (const tokens::Token token : sequence) {
    switch (tokens::kind_of(token)) {
      case tokens::Kind::NoteOn:
        if (!moved && notes > 0) chord_notes += 1;
        notes += 1;
        moved = false;
        break;
      case tokens::Kind::Velocity:
        velocities += 1;
        break;
      case tokens::Kind::SustainOn:
      case tokens::Kind::SustainOff:
        sustains += 1;
        break;
      case tokens::Kind::Duration:
        durations += 1;
        duration_log += std::log2(static_cast<double>(tokens::value_of(token)));
        break;
      case tokens::Kind::TimeShift:
        shifts += 1;
        shift_log += std::log2(static_cast<double>(tokens::value_of(token)));
        moved = true;
        break;
      case tokens::Kind::Chunk:
        moved = true;
        break;
      default:
        break;
    }
  }
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  return {
      static_cast<float>(std::log2(1.0 + static_cast<double>(sequence.size()) / seconds)),
      static_cast<float>(ratio(velocities, notes)),
      static_cast<float>(std::log2(1.0 + sustains / seconds)),
      static_cast<float>(ratio(duration_log, durations)),
      static_cast<float>(ratio(shift_log, shifts)),
      static_cast<float>(ratio(chord_notes, notes)),
  };
}

void check_features(std::span<const float> features, std::size_t expected, const char* where) {
  if (features.size() != expected) {
    throw std::invalid_argument(std::string(where) + ": " + std::to_string(features.size()) +
                                " feature values, expected " + std::to_string(expected));
  }
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (!std::isfinite(features[i])) {
      throw std::invalid_argument(std::string(where) + ": feature " + std::to_string(i % kFeatureSize) +
                                  " of clip " + std::to_string(i / kFeatureSize) + " is not finite");
    }
  }
}

void softmax(std::vector<double>& values) {
  const double top = *std::max_element(values.begin(), values.end());
  double total = 0.0;
  for (double& v : values) total += (v = std::exp(v - top));
  for (double& v : values) v /= total;
}

// --- model file -------------------------------------------------------------------

class Writer {
 public:
  void bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    buffer_.insert(buffer_.end(), p, p + size);
  }
  template <typename T>
  void value(T v) {
    static_assert(std::is_arithmetic_v<T>);
    bytes(&v, sizeof v);
  }
  void string(const std::string& s) {
    value(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  template <typename T>
  void array(const std::vector<T>& values) {
    bytes(values.data(), values.size() * sizeof(T));
  }
  [[nodiscard]] const std::vector<std::uint8_t>& buffer() const { return buffer_; }

 private:
  std::vector<std::uint8_t> buffer_;
};

class Reader {
 public:
  Reader(std::span<const std::uint8_t> data, std::string path) : data_(data), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFileError(path_ + ": byte " + std::to_string(offset_) + ": " + what);
  }
  void bytes(void* out, std::size_t size, const char* what) {
    if (size > data_.size() - offset_) fail(std::string("truncated while reading ") + what);
    std::memcpy(out, data_.data() + offset_, size);
    offset_ += size;
  }
  template <typename T>
  T value(const char* what) {
    T v{};
    bytes(&v, sizeof v, what);
    return v;
  }
  std::string string(const char* what) {
    const auto size = value<std::uint32_t>(what);
    if (size > kMaxStringBytes) fail(std::string(what) + " is " + std::to_string(size) + " bytes long");
    std::string s(size, '\0');
    bytes(s.data(), size, what);
    return s;
  }
  template <typename T>
  std::vector<T> array(std::size_t count, const char* what) {
    std::vector<T> values;
    if (count > (data_.size() - offset_) / sizeof(T)) fail(std::string("truncated while reading ") + what);
    values.resize(count);
    bytes(values.data(), count * sizeof(T), what);
    return values;
  }
  [[nodiscard]] std::size_t offset() const { return offset_; }

 private:
  std::span<const std::uint8_t> data_;
  std::string path_;
  std::size_t offset_ = 0;
};

std::uint64_t checksum(std::span<const std::uint8_t> bytes) {
  return dataset::fnv1a64(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace

FeatureVector clip_features(const Performance& clip) {
  const TheoryFeatures theory = compute_theory_features(clip);
  FeatureVector features{};
  auto out = features.begin();
  out = std::copy(theory.harmony.begin(), theory.harmony.end(), out);
  out = std::copy(theory.melody.begin(), theory.melody.end(), out);
  out = std::copy(theory.rhythm.begin(), theory.rhythm.end(), out);
  out = std::copy(theory.dynamics.begin(), theory.dynamics.end(), out);
  const auto stats = token_stats(clip);
  std::copy(stats.begin(), stats.end(), out);
  return features;
}

std::vector<Performance> cut_clips(const Performance& performance, std::int64_t clip_us,
                                   std::int64_t min_clip_us) {
  if (clip_us <= 0 || min_clip_us <= 0 || min_clip_us > clip_us) {
    throw std::invalid_argument("cut_clips: clip length " + std::to_string(clip_us) + " us and minimum " +
                                std::to_string(min_clip_us) + " us must satisfy 0 < minimum <= length");
  }
  std::vector<Performance> clips;
  if (performance.notes.empty()) return clips;
  const std::int64_t first_us = performance.notes.front().onset_us;
  const std::int64_t last_us = end_us(performance);
  if (last_us - first_us < min_clip_us) {
    clips.push_back(cut_window(performance, first_us, last_us - first_us + 1, last_us - first_us));
    return clips;
  }
  for (std::int64_t start = first_us; last_us - start >= min_clip_us; start += clip_us) {
    Performance clip = cut_window(performance, start, clip_us, std::min(clip_us, last_us - start));
    if (!clip.notes.empty()) clips.push_back(std::move(clip));
  }
  return clips;
}

ClipSet extract_corpus_clips(const std::vector<dataset::CorpusEntry>& entries, const ExtractOptions& options,
                             std::vector<dataset::FailedFile>& failed, ProgressBar* progress) {
  struct Part {
    std::vector<FeatureVector> features;
    std::vector<float> seconds;
    std::optional<dataset::FailedFile> failure;
  };
  std::vector<Part> parts(entries.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < entries.size(); i = next++) {
      Part& part = parts[i];
      try {
        const Performance performance = read_smf(options.data_dir / entries[i].path);
        for (const Performance& clip : cut_clips(performance, options.clip_us, options.min_clip_us)) {
          part.features.push_back(clip_features(clip));
          part.seconds.push_back(static_cast<float>(static_cast<double>(clip.length_us) / kUsPerSecond));
        }
      } catch (const SmfError& e) {
        part.failure = dataset::FailedFile{entries[i].path, e.what()};
      } catch (const std::invalid_argument& e) {
        part.failure = dataset::FailedFile{entries[i].path, e.what()};
      }
      if (progress != nullptr) progress->add();
    }
  };
  const unsigned threads =
      options.threads > 0 ? options.threads : std::max(1U, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& thread : pool) thread.join();

  ClipSet set;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].failure) failed.push_back(*parts[i].failure);
    for (std::size_t c = 0; c < parts[i].features.size(); ++c) {
      set.features.insert(set.features.end(), parts[i].features[c].begin(), parts[i].features[c].end());
      set.entry.push_back(static_cast<std::uint32_t>(i));
      set.seconds.push_back(parts[i].seconds[c]);
    }
  }
  return set;
}

std::vector<std::string> performers_with_train_minutes(const ClipSet& clips,
                                                       const std::vector<dataset::CorpusEntry>& entries,
                                                       double min_minutes) {
  std::map<std::string, double> seconds;
  for (std::size_t c = 0; c < clips.size(); ++c) {
    const dataset::CorpusEntry& entry = entries.at(clips.entry[c]);
    if (entry.split == dataset::Split::kTrain) seconds[entry.performer] += clips.seconds[c];
  }
  std::vector<std::string> performers;
  for (const auto& [name, total] : seconds) {
    if (total >= min_minutes * 60.0) performers.push_back(name);
  }
  return performers;
}

LabelledClips select_clips(const ClipSet& clips, const std::vector<dataset::CorpusEntry>& entries,
                           const std::vector<std::string>& performers, dataset::Split split) {
  std::map<std::string, std::uint32_t> label_of;
  for (std::size_t i = 0; i < performers.size(); ++i)
    label_of.emplace(performers[i], static_cast<std::uint32_t>(i));
  LabelledClips selected;
  for (std::size_t c = 0; c < clips.size(); ++c) {
    const dataset::CorpusEntry& entry = entries.at(clips.entry[c]);
    const auto label = label_of.find(entry.performer);
    if (entry.split != split || label == label_of.end()) continue;
    const auto row = clips.features.begin() + static_cast<std::ptrdiff_t>(c * kFeatureSize);
    selected.features.insert(selected.features.end(), row, row + kFeatureSize);
    selected.labels.push_back(label->second);
  }
  return selected;
}

PerformerClassifier PerformerClassifier::train(const LabelledClips& clips,
                                               std::vector<std::string> performers, ModelInfo info) {
  const TrainOptions& options = info.train;
  const std::size_t classes = performers.size();
  const std::size_t n = clips.size();
  if (classes < 2) throw std::invalid_argument("performer classifier: needs at least 2 performers");
  if (n == 0) throw std::invalid_argument("performer classifier: no training clips");
  if (options.epochs < 1 || options.batch_size < 1 || !(options.learning_rate > 0) || !(options.l2 >= 0)) {
    throw std::invalid_argument(
        "performer classifier: epochs and batch size must be >= 1, learning rate > 0, l2 >= 0");
  }
  check_features(clips.features, n * kFeatureSize, "performer classifier training");
  for (std::size_t i = 0; i < n; ++i) {
    if (clips.labels[i] >= classes) {
      throw std::invalid_argument("performer classifier: clip " + std::to_string(i) + " has label " +
                                  std::to_string(clips.labels[i]) + " of " + std::to_string(classes) +
                                  " performers");
    }
  }

  PerformerClassifier model;
  model.performers_ = std::move(performers);
  model.mean_.assign(kFeatureSize, 0.0);
  model.inv_std_.assign(kFeatureSize, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t d = 0; d < kFeatureSize; ++d) model.mean_[d] += clips.features[i * kFeatureSize + d];
  }
  for (double& m : model.mean_) m /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t d = 0; d < kFeatureSize; ++d) {
      const double centred = clips.features[i * kFeatureSize + d] - model.mean_[d];
      model.inv_std_[d] += centred * centred;
    }
  }
  for (double& s : model.inv_std_) {
    const double std = std::sqrt(s / static_cast<double>(n));
    s = std > kMinStd ? 1.0 / std : 1.0;
  }
  std::vector<float> x(n * kFeatureSize);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t d = 0; d < kFeatureSize; ++d) {
      const std::size_t at = i * kFeatureSize + d;
      x[at] = static_cast<float>((clips.features[at] - model.mean_[d]) * model.inv_std_[d]);
    }
  }

  std::vector<double> class_weight(classes, 1.0);
  if (options.balance_classes) {
    std::vector<std::size_t> counts(classes, 0);
    for (const std::uint32_t label : clips.labels) ++counts[label];
    for (std::size_t k = 0; k < classes; ++k) {
      class_weight[k] =
          counts[k] > 0 ? static_cast<double>(n) / (static_cast<double>(classes * counts[k])) : 0.0;
    }
  }

  model.weights_.assign(kFeatureSize * classes, 0.0F);
  model.bias_.assign(classes, 0.0F);
  std::vector<double> grad_w(model.weights_.size());
  std::vector<double> grad_b(classes);
  std::vector<double> m_w(model.weights_.size(), 0.0), v_w(model.weights_.size(), 0.0);
  std::vector<double> m_b(classes, 0.0), v_b(classes, 0.0);
  std::vector<double> probabilities(classes);
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(options.seed);
  const std::size_t batches_per_epoch = (n + options.batch_size - 1) / options.batch_size;
  const auto total_steps = static_cast<double>(batches_per_epoch * static_cast<std::size_t>(options.epochs));
  std::size_t step = 0;

  auto adam = [&](std::vector<float>& param, const std::vector<double>& grad, std::vector<double>& m,
                  std::vector<double>& v, double rate, double correction1, double correction2) {
    for (std::size_t j = 0; j < param.size(); ++j) {
      m[j] = kAdamBeta1 * m[j] + (1.0 - kAdamBeta1) * grad[j];
      v[j] = kAdamBeta2 * v[j] + (1.0 - kAdamBeta2) * grad[j] * grad[j];
      param[j] -=
          static_cast<float>(rate * (m[j] / correction1) / (std::sqrt(v[j] / correction2) + kAdamEpsilon));
    }
  };

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    double epoch_loss = 0.0;
    double epoch_weight = 0.0;
    for (std::size_t begin = 0; begin < n; begin += options.batch_size) {
      const std::size_t end = std::min(n, begin + options.batch_size);
      const auto batch = static_cast<double>(end - begin);
      std::fill(grad_w.begin(), grad_w.end(), 0.0);
      std::fill(grad_b.begin(), grad_b.end(), 0.0);
      for (std::size_t b = begin; b < end; ++b) {
        const std::size_t i = order[b];
        const std::span<const float> row(x.data() + i * kFeatureSize, kFeatureSize);
        model.logits(row, probabilities);
        softmax(probabilities);
        const std::uint32_t label = clips.labels[i];
        const double weight = class_weight[label];
        epoch_loss -= weight * std::log(std::max(probabilities[label], kMinProbability));
        epoch_weight += weight;
        for (std::size_t k = 0; k < classes; ++k) {
          probabilities[k] = weight * (probabilities[k] - (k == label ? 1.0 : 0.0)) / batch;
          grad_b[k] += probabilities[k];
        }
        for (std::size_t d = 0; d < kFeatureSize; ++d) {
          const double value = row[d];
          double* g = grad_w.data() + d * classes;
          for (std::size_t k = 0; k < classes; ++k) g[k] += value * probabilities[k];
        }
      }
      for (std::size_t j = 0; j < grad_w.size(); ++j) grad_w[j] += options.l2 * model.weights_[j];
      ++step;
      const double rate = options.learning_rate * 0.5 *
                          (1.0 + std::cos(std::numbers::pi * static_cast<double>(step - 1) / total_steps));
      const double correction1 = 1.0 - std::pow(kAdamBeta1, static_cast<double>(step));
      const double correction2 = 1.0 - std::pow(kAdamBeta2, static_cast<double>(step));
      adam(model.weights_, grad_w, m_w, v_w, rate, correction1, correction2);
      adam(model.bias_, grad_b, m_b, v_b, rate, correction1, correction2);
    }
    info.final_train_loss = epoch_weight > 0 ? epoch_loss / epoch_weight : 0.0;
  }
  info.train_clips = n;
  model.info_ = std::move(info);
  return model;
}

void PerformerClassifier::logits(std::span<const float> standardised, std::vector<double>& out) const {
  const std::size_t classes = performers_.size();
  out.assign(bias_.begin(), bias_.end());
  for (std::size_t d = 0; d < kFeatureSize; ++d) {
    const double value = standardised[d];
    const float* w = weights_.data() + d * classes;
    for (std::size_t k = 0; k < classes; ++k) out[k] += value * w[k];
  }
}

std::vector<double> PerformerClassifier::probabilities(std::span<const float> features) const {
  check_features(features, kFeatureSize, "performer classifier");
  std::vector<float> standardised(kFeatureSize);
  for (std::size_t d = 0; d < kFeatureSize; ++d) {
    standardised[d] = static_cast<float>((features[d] - mean_[d]) * inv_std_[d]);
  }
  std::vector<double> result;
  logits(standardised, result);
  softmax(result);
  return result;
}

std::optional<std::vector<double>> PerformerClassifier::performance_probabilities(
    const Performance& performance, std::size_t* clip_count) const {
  const std::vector<Performance> clips = cut_clips(performance, info_.clip_us, info_.min_clip_us);
  if (clip_count != nullptr) *clip_count = clips.size();
  if (clips.empty()) return std::nullopt;
  std::vector<double> mean(performers_.size(), 0.0);
  for (const Performance& clip : clips) {
    const FeatureVector features = clip_features(clip);
    const std::vector<double> p = probabilities(features);
    for (std::size_t k = 0; k < mean.size(); ++k) mean[k] += p[k] / static_cast<double>(clips.size());
  }
  return mean;
}

std::optional<std::size_t> PerformerClassifier::performer_index(std::string_view name) const {
  const auto it = std::find(performers_.begin(), performers_.end(), name);
  if (it == performers_.end()) return std::nullopt;
  return static_cast<std::size_t>(std::distance(performers_.begin(), it));
}

void PerformerClassifier::save(const fs::path& path) const {
  Writer w;
  w.bytes(kMagic, sizeof kMagic);
  w.value(kModelFormatVersion);
  w.value(static_cast<std::uint32_t>(tokens::kTokenizerVersion));
  w.value(static_cast<std::uint64_t>(kFeatureSize));
  w.value(static_cast<std::uint32_t>(performers_.size()));
  for (const std::string& name : performers_) w.string(name);
  w.value(info_.clip_us);
  w.value(info_.min_clip_us);
  w.string(info_.transcription);
  w.value(info_.validation_fraction);
  w.value(info_.min_train_minutes);
  w.value(static_cast<std::int32_t>(info_.train.epochs));
  w.value(static_cast<std::uint64_t>(info_.train.batch_size));
  w.value(info_.train.learning_rate);
  w.value(info_.train.l2);
  w.value(info_.train.seed);
  w.value(static_cast<std::uint8_t>(info_.train.balance_classes ? 1 : 0));
  w.value(info_.train_clips);
  w.value(info_.final_train_loss);
  w.array(mean_);
  w.array(inv_std_);
  w.array(weights_);
  w.array(bias_);
  std::vector<std::uint8_t> bytes = w.buffer();
  const std::uint64_t sum = checksum(bytes);
  const auto* sum_bytes = reinterpret_cast<const std::uint8_t*>(&sum);
  bytes.insert(bytes.end(), sum_bytes, sum_bytes + sizeof sum);

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw ModelFileError(path.string() + ": cannot write the model file");
}

PerformerClassifier PerformerClassifier::load(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError(path.string() + ": cannot open the model file");
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
  if (in.bad()) throw ModelFileError(path.string() + ": cannot read the model file");
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw ModelFileError(path.string() + ": not a TatumFlow performer classifier (no TFPERFC header)");
  }
  Reader r(bytes, path.string());
  char magic[sizeof kMagic];
  r.bytes(magic, sizeof magic, "the header");
  const auto version = r.value<std::uint32_t>("the format version");
  if (version != kModelFormatVersion) {
    r.fail("format version " + std::to_string(version) + ", this build reads version " +
           std::to_string(kModelFormatVersion));
  }
  if (bytes.size() < sizeof kMagic + sizeof version + sizeof(std::uint64_t))
    r.fail("truncated before the checksum");
  const std::size_t body = bytes.size() - sizeof(std::uint64_t);
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + body, sizeof stored);
  if (stored != checksum(std::span(bytes.data(), body))) {
    throw ModelFileError(path.string() + ": checksum mismatch: the file is corrupt or truncated");
  }
  Reader payload(std::span(bytes.data(), body), path.string());
  payload.bytes(magic, sizeof magic, "the header");
  payload.value<std::uint32_t>("the format version");
  const auto tokenizer = payload.value<std::uint32_t>("the tokenizer version");
  if (tokenizer != tokens::kTokenizerVersion) {
    payload.fail("trained with tokenizer version " + std::to_string(tokenizer) + ", this build has " +
                 std::to_string(tokens::kTokenizerVersion));
  }
  const auto features = payload.value<std::uint64_t>("the feature count");
  if (features != kFeatureSize) {
    payload.fail("model has " + std::to_string(features) + " features per clip, this build computes " +
                 std::to_string(kFeatureSize));
  }
  const auto classes = payload.value<std::uint32_t>("the performer count");
  if (classes < 2 || classes > kMaxPerformers) payload.fail(std::to_string(classes) + " performers");

  PerformerClassifier model;
  for (std::uint32_t k = 0; k < classes; ++k) model.performers_.push_back(payload.string("a performer name"));
  ModelInfo& info = model.info_;
  info.clip_us = payload.value<std::int64_t>("the clip length");
  info.min_clip_us = payload.value<std::int64_t>("the minimum clip length");
  if (info.clip_us <= 0 || info.min_clip_us <= 0 || info.min_clip_us > info.clip_us) {
    payload.fail("clip length " + std::to_string(info.clip_us) + " us with minimum " +
                 std::to_string(info.min_clip_us) + " us");
  }
  info.transcription = payload.string("the transcription");
  info.validation_fraction = payload.value<double>("the validation fraction");
  info.min_train_minutes = payload.value<double>("the minimum minutes");
  info.train.epochs = payload.value<std::int32_t>("the epochs");
  info.train.batch_size = payload.value<std::uint64_t>("the batch size");
  info.train.learning_rate = payload.value<double>("the learning rate");
  info.train.l2 = payload.value<double>("the L2 weight");
  info.train.seed = payload.value<std::uint64_t>("the seed");
  info.train.balance_classes = payload.value<std::uint8_t>("the balance flag") != 0;
  info.train_clips = payload.value<std::uint64_t>("the clip count");
  info.final_train_loss = payload.value<double>("the training loss");
  model.mean_ = payload.array<double>(kFeatureSize, "the feature means");
  model.inv_std_ = payload.array<double>(kFeatureSize, "the feature scales");
  model.weights_ = payload.array<float>(kFeatureSize * classes, "the weights");
  model.bias_ = payload.array<float>(classes, "the biases");
  if (payload.offset() != body)
    payload.fail(std::to_string(body - payload.offset()) + " unexpected bytes after the model");
  auto finite = [](double v) { return std::isfinite(v); };
  if (!std::all_of(model.mean_.begin(), model.mean_.end(), finite) ||
      !std::all_of(model.inv_std_.begin(), model.inv_std_.end(), finite) ||
      !std::all_of(model.weights_.begin(), model.weights_.end(), finite) ||
      !std::all_of(model.bias_.begin(), model.bias_.end(), finite)) {
    throw ModelFileError(path.string() + ": the model holds non-finite numbers");
  }
  return model;
}

Evaluation evaluate(const PerformerClassifier& model, const LabelledClips& clips) {
  const std::size_t classes = model.performers().size();
  check_features(clips.features, clips.size() * kFeatureSize, "performer classifier evaluation");
  Evaluation e;
  e.clips = clips.size();
  e.clips_per_performer.assign(classes, 0);
  e.confusion.assign(classes, std::vector<std::uint32_t>(classes, 0));
  std::size_t correct = 0;
  std::size_t top3 = 0;
  for (std::size_t i = 0; i < clips.size(); ++i) {
    const std::uint32_t label = clips.labels[i];
    if (label >= classes) {
      throw std::invalid_argument("performer classifier evaluation: clip " + std::to_string(i) +
                                  " has label " + std::to_string(label) + " of " + std::to_string(classes) +
                                  " performers");
    }
    const std::vector<double> p =
        model.probabilities(std::span(clips.features.data() + i * kFeatureSize, kFeatureSize));
    const auto predicted =
        static_cast<std::size_t>(std::distance(p.begin(), std::max_element(p.begin(), p.end())));
    const auto better = std::count_if(p.begin(), p.end(), [&](double q) { return q > p[label]; });
    correct += predicted == label ? 1 : 0;
    top3 += better < 3 ? 1 : 0;
    e.log_loss -= std::log(std::max(p[label], kMinProbability));
    ++e.clips_per_performer[label];
    ++e.confusion[label][predicted];
  }
  if (e.clips > 0) {
    const auto total = static_cast<double>(e.clips);
    e.accuracy = static_cast<double>(correct) / total;
    e.top3_accuracy = static_cast<double>(top3) / total;
    e.log_loss /= total;
  }
  double recall_sum = 0.0;
  std::size_t with_clips = 0;
  e.recall.assign(classes, std::nullopt);
  for (std::size_t k = 0; k < classes; ++k) {
    if (e.clips_per_performer[k] == 0) continue;
    e.recall[k] = static_cast<double>(e.confusion[k][k]) / static_cast<double>(e.clips_per_performer[k]);
    recall_sum += *e.recall[k];
    ++with_clips;
  }
  e.balanced_accuracy = with_clips > 0 ? recall_sum / static_cast<double>(with_clips) : 0.0;
  return e;
}

}  // namespace tatumflow::classify
