// SPDX-License-Identifier: GPL-3.0-or-later
#include "checkpoint.hpp"

#include <toml++/toml.h>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::model {

namespace fs = std::filesystem;

namespace {

constexpr std::array<char, 8> kMagic = {'T', 'A', 'T', 'U', 'M', 'F', 'L', 'W'};
constexpr std::size_t kFixedBytes = 8 + 4 + 4;

std::uint64_t checksum(std::string_view bytes) {
  std::uint64_t hash = 0x243f6a8885a308d3ULL ^ bytes.size();
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes.data() + i, 8);
    hash = mix64(hash ^ word);
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  return mix64(hash ^ tail ^ 0x9e3779b97f4a7c15ULL);
}

template <typename T>
void put(std::string& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

template <typename T>
T get(std::string_view bytes, std::size_t offset) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

[[noreturn]] void fail(const fs::path& path, const std::string& problem) {
  throw CheckpointError("checkpoint " + path.string() + ": " + problem);
}

std::string header_toml(const CheckpointHeader& header) {
  toml::table meta{{"kind", header.kind},
                   {"step", header.step},
                   {"tokenizer_version", static_cast<std::int64_t>(tokens::kTokenizerVersion)},
                   {"vocab_size", static_cast<std::int64_t>(tokens::kVocabSize)}};
  if (header.window_tokens > 0) meta.insert("window_tokens", header.window_tokens);
  std::ostringstream out;
  out << toml::table{{"checkpoint", meta}} << "\n\n" << to_toml(header.config);
  return out.str();
}

CheckpointHeader parse_header(std::string_view text, const fs::path& path) {
  CheckpointHeader header;
  toml::table root;
  try {
    root = toml::parse(text, path.string());
  } catch (const toml::parse_error& e) {
    fail(path, "corrupt header (" + std::string(e.description()) + ")");
  }
  const auto kind = root["checkpoint"]["kind"].value<std::string>();
  const auto step = root["checkpoint"]["step"].value<std::int64_t>();
  const auto tokenizer = root["checkpoint"]["tokenizer_version"].value<std::int64_t>();
  const auto vocab = root["checkpoint"]["vocab_size"].value<std::int64_t>();
  if (!kind || !step || !tokenizer || !vocab)
    fail(path, "corrupt header ([checkpoint] kind/step/versions missing)");
  if (*tokenizer != tokens::kTokenizerVersion || *vocab != tokens::kVocabSize) {
    fail(path, "written for tokenizer version " + std::to_string(*tokenizer) + " with " +
                   std::to_string(*vocab) + " tokens; this build has version " +
                   std::to_string(tokens::kTokenizerVersion) + " with " + std::to_string(tokens::kVocabSize));
  }
  header.kind = *kind;
  header.step = *step;
  header.window_tokens = root["checkpoint"]["window_tokens"].value_or(std::int64_t{0});
  try {
    header.config = parse_model_config(text, path.string() + " (header)");
  } catch (const ConfigError& e) {
    fail(path, std::string("bad model config in header: ") + e.what());
  }
  return header;
}

}  // namespace

void write_checkpoint(const fs::path& path, const CheckpointHeader& header,
                      const std::function<void(torch::serialize::OutputArchive&)>& fill) {
  torch::serialize::OutputArchive archive;
  fill(archive);
  std::ostringstream payload_stream;
  archive.save_to(payload_stream);
  const std::string payload = payload_stream.str();
  const std::string text = header_toml(header);

  std::string head(kMagic.begin(), kMagic.end());
  put<std::uint32_t>(head, kCheckpointVersion);
  put<std::uint32_t>(head, static_cast<std::uint32_t>(text.size()));
  head += text;
  put<std::uint64_t>(head, payload.size());
  put<std::uint64_t>(head, checksum(payload));

  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    out.flush();
    if (!out) fail(temporary, "cannot write");
  }
  fs::rename(temporary, path);
}

LoadedCheckpoint read_checkpoint(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, fs::exists(path) ? "cannot be opened" : "does not exist");
  std::ostringstream content;
  content << in.rdbuf();
  const std::string bytes = content.str();
  const std::string_view view(bytes);

  if (view.size() < kMagic.size() || std::memcmp(view.data(), kMagic.data(), kMagic.size()) != 0) {
    fail(path, "not a TatumFlow checkpoint (no \"TATUMFLW\" magic)");
  }
  if (view.size() < kFixedBytes) fail(path, "truncated inside the fixed header");
  const auto version = get<std::uint32_t>(view, 8);
  if (version != kCheckpointVersion) {
    fail(path, "format version " + std::to_string(version) + "; this build reads version " +
                   std::to_string(kCheckpointVersion));
  }
  const auto header_length = get<std::uint32_t>(view, 12);
  const std::size_t payload_at = kFixedBytes + header_length + 16;
  if (view.size() < payload_at) fail(path, "truncated inside the header");
  LoadedCheckpoint loaded{parse_header(view.substr(kFixedBytes, header_length), path), {}};
  const auto payload_length = get<std::uint64_t>(view, kFixedBytes + header_length);
  const auto payload_checksum = get<std::uint64_t>(view, kFixedBytes + header_length + 8);
  if (view.size() - payload_at < payload_length) {
    fail(path, "truncated: payload has " + std::to_string(view.size() - payload_at) + " of " +
                   std::to_string(payload_length) + " bytes");
  }
  if (view.size() - payload_at > payload_length) {
    fail(path,
         std::to_string(view.size() - payload_at - payload_length) + " unexpected bytes after the payload");
  }
  const std::string_view payload = view.substr(payload_at, payload_length);
  if (checksum(payload) != payload_checksum) fail(path, "corrupt: payload checksum mismatch");
  try {
    loaded.archive.load_from(payload.data(), payload.size());
  } catch (const c10::Error& e) {
    fail(path, std::string("payload is not a readable torch archive: ") + e.what_without_backtrace());
  }
  return loaded;
}

void write_tensors(torch::serialize::OutputArchive& archive, const std::string& key,
                   const torch::OrderedDict<std::string, torch::Tensor>& tensors) {
  torch::serialize::OutputArchive nested;
  for (const auto& item : tensors) nested.write(item.key(), item.value().detach().cpu());
  archive.write(key, nested);
}

void read_tensors(torch::serialize::InputArchive& archive, const std::string& key,
                  torch::OrderedDict<std::string, torch::Tensor>& tensors, const fs::path& path) {
  torch::serialize::InputArchive nested;
  if (!archive.try_read(key, nested)) fail(path, "has no \"" + key + "\" weights");
  for (const std::string& stored : nested.keys()) {
    if (tensors.find(stored) == nullptr) {
      fail(path, "\"" + key + "\" holds tensor " + stored + ", which this model version does not have");
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& item : tensors) {
    torch::Tensor stored;
    if (!nested.try_read(item.key(), stored)) fail(path, "\"" + key + "\" lacks tensor " + item.key());
    if (stored.sizes() != item.value().sizes()) {
      std::ostringstream problem;
      problem << "tensor " << key << "/" << item.key() << " has shape " << stored.sizes()
              << ", the model config needs " << item.value().sizes();
      fail(path, problem.str());
    }
    item.value().copy_(stored);
  }
}

namespace {
// A DiT block's tensor "blocks.<index><rest>"; index -1 for any other tensor.
struct BlockTensor {
  int index = -1;
  std::string rest;  // ".<module>.<tensor>"
};

constexpr std::string_view kBlocksPrefix = "blocks.";

BlockTensor block_tensor(const std::string& name) {
  if (name.rfind(kBlocksPrefix, 0) != 0) return {};
  const std::size_t dot = name.find('.', kBlocksPrefix.size());
  return {std::stoi(name.substr(kBlocksPrefix.size())), name.substr(dot)};
}

}  // namespace

void load_initial_weights(const fs::path& init_from, const ModelConfig& config,
                          const std::string& config_name,
                          torch::OrderedDict<std::string, torch::Tensor>& parameters) {
  LoadedCheckpoint init = read_checkpoint(init_from);
  const ModelConfig& stored = init.header.config;
  const std::string key = init.header.kind == "training" ? "ema" : "model";
  if (stored == config) {
    read_tensors(init.archive, key, parameters, init_from);
    return;
  }
  ModelConfig shallower = config;
  shallower.name = stored.name;
  shallower.layers = stored.layers;
  if (!(shallower == stored) || stored.layers < 1 || config.layers % stored.layers != 0) {
    throw ConfigError(
        init_from.string() + " holds model \"" + stored.name + "\", which differs from " + config_name +
        " (a model can start only from the same config, or one whose layer count divides its own)");
  }
  TatumFlowNet source(stored);
  auto source_parameters = source->named_parameters();
  read_tensors(init.archive, key, source_parameters, init_from);
  const int factor = config.layers / stored.layers;
  torch::NoGradGuard no_grad;
  for (auto& item : parameters) {
    const BlockTensor block = block_tensor(item.key());
    if (block.index < 0) {
      item.value().copy_(source_parameters[item.key()]);
    } else if (block.index % factor == 0) {
      item.value().copy_(
          source_parameters[std::string(kBlocksPrefix) + std::to_string(block.index / factor) + block.rest]);
    }
  }
}

}  // namespace tatumflow::model
