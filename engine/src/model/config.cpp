// SPDX-License-Identifier: GPL-3.0-or-later
#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "tatumflow/engine/model_config.hpp"

namespace tatumflow::model {

namespace fs = std::filesystem;

const char* to_string(Prediction prediction) {
  switch (prediction) {
    case Prediction::kX0:
      return "x0";
    case Prediction::kEps:
      return "eps";
    case Prediction::kV:
      return "v";
  }
  return "?";
}

namespace {

// Reads typed keys from one TOML table and rejects keys nobody asked for, so a
// misspelt setting is an error instead of a silently ignored default.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string source, std::string section)
      : table_(table), source_(std::move(source)), section_(std::move(section)) {}

  template <typename T>
  void read(const char* key, T& value, T low, T high) {
    const toml::node* node = find(key);
    if (node == nullptr) return;
    std::optional<T> parsed;
    if constexpr (std::is_same_v<T, double>) {
      parsed = node->value<double>();
    } else {
      if (const auto integer = node->value<std::int64_t>()) {
        if (*integer < static_cast<std::int64_t>(low) || *integer > static_cast<std::int64_t>(high)) {
          fail(key, "is " + std::to_string(*integer) + ", outside [" + std::to_string(low) + ", " +
                        std::to_string(high) + "]");
        }
        parsed = static_cast<T>(*integer);
      }
    }
    if (!parsed) fail(key, "must be a number");
    if (*parsed < low || *parsed > high) {
      std::ostringstream range;
      range << "is " << *parsed << ", outside [" << low << ", " << high << "]";
      fail(key, range.str());
    }
    value = *parsed;
  }

  void read(const char* key, bool& value) {
    if (const toml::node* node = find(key)) {
      const auto parsed = node->value<bool>();
      if (!parsed) fail(key, "must be true or false");
      value = *parsed;
    }
  }

  void read(const char* key, std::string& value) {
    if (const toml::node* node = find(key)) {
      const auto parsed = node->value<std::string>();
      if (!parsed) fail(key, "must be a string");
      value = *parsed;
    }
  }

  void read(const char* key, std::vector<int>& value, int low, int high) {
    const toml::node* node = find(key);
    if (node == nullptr) return;
    const toml::array* array = node->as_array();
    if (array == nullptr) fail(key, "must be an array of integers");
    value.clear();
    for (const toml::node& item : *array) {
      const auto parsed = item.value<std::int64_t>();
      if (!parsed || *parsed < low || *parsed > high) {
        fail(key, "must hold integers in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
      }
      value.push_back(static_cast<int>(*parsed));
    }
  }

  // Call after the last read: any key not read is a typo or a setting from another version.
  void finish() const {
    if (table_ == nullptr) return;
    for (const auto& [key, node] : *table_) {
      const std::string name(key.str());
      if (node.is_table() || read_.count(name) != 0) continue;
      fail(name.c_str(), "is not a known setting");
    }
  }

  [[noreturn]] void fail(const char* key, const std::string& problem) const {
    std::string where = source_;
    if (table_ != nullptr) {
      if (const toml::node* node = table_->get(key)) {
        where += ":" + std::to_string(node->source().begin.line);
      }
    }
    throw ConfigError(where + ": " + (section_.empty() ? "" : section_ + ".") + key + " " + problem);
  }

 private:
  const toml::node* find(const char* key) {
    read_.insert(key);
    return table_ == nullptr ? nullptr : table_->get(key);
  }

  const toml::table* table_;
  std::string source_;
  std::string section_;
  std::set<std::string> read_;
};

toml::table parse_toml(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(source + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

ModelConfig model_from_table(const toml::table& root, const std::string& source) {
  ModelConfig config;
  const toml::table* table = root.get_as<toml::table>("model");
  if (table == nullptr) throw ConfigError(source + ": missing [model] table");
  TableReader reader(table, source, "model");
  reader.read("name", config.name);
  reader.read("hidden", config.hidden, 8, 8192);
  reader.read("latent", config.latent, 4, 4096);
  reader.read("layers", config.layers, 1, 256);
  reader.read("heads", config.heads, 1, 256);
  reader.read("mlp_ratio", config.mlp_ratio, 1, 16);
  reader.read("max_positions", config.max_positions, 16, 65536);
  reader.read("scales", config.scales, 1, 64);
  reader.read("style_hidden", config.style_hidden, 4, 4096);
  reader.read("theory_component", config.theory_component, 4, 4096);
  reader.read("theory_dim", config.theory_dim, 4, 8192);
  reader.read("diffusion_steps", config.diffusion_steps, 10, 100000);
  reader.read("cosine_offset", config.cosine_offset, 0.0, 0.5);
  std::string prediction = to_string(config.prediction);
  reader.read("prediction", prediction);
  if (prediction == "x0") {
    config.prediction = Prediction::kX0;
  } else if (prediction == "eps") {
    config.prediction = Prediction::kEps;
  } else if (prediction == "v") {
    config.prediction = Prediction::kV;
  } else {
    reader.fail("prediction", "is \"" + prediction + "\"; use \"x0\", \"eps\" or \"v\"");
  }
  reader.read("tie_embeddings", config.tie_embeddings);
  reader.finish();
  try {
    config.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(source + ": " + e.what());
  }
  return config;
}

}  // namespace

void ModelConfig::validate() const {
  if (hidden % heads != 0) {
    throw ConfigError("model.hidden (" + std::to_string(hidden) + ") must be a multiple of model.heads (" +
                      std::to_string(heads) + ")");
  }
  if (scales.empty() || scales.front() != 1) throw ConfigError("model.scales must start with 1");
  for (std::size_t i = 1; i < scales.size(); ++i) {
    if (scales[i] <= scales[i - 1]) throw ConfigError("model.scales must be strictly increasing");
  }
}

void TrainConfig::validate() const {
  model.validate();
  if (window_tokens + 1 > model.max_positions) {
    throw ConfigError("data.window_tokens (" + std::to_string(window_tokens) +
                      ") + 1 exceeds model.max_positions (" + std::to_string(model.max_positions) + ")");
  }
  if (min_lr > lr) throw ConfigError("optim.min_lr must not exceed optim.lr");
  try {
    tatumflow::augment::validate(augment);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("[augment]: ") + e.what());
  }
  if (mask_prefix + mask_infill + mask_suffix + mask_none <= 0.0) {
    throw ConfigError("diffusion: at least one mask probability must be positive");
  }
}

ModelConfig parse_model_config(std::string_view toml_text, const std::string& source) {
  return model_from_table(parse_toml(toml_text, source), source);
}

ModelConfig load_model_config(const fs::path& path) {
  return parse_model_config(read_text(path), path.string());
}

std::string to_toml(const ModelConfig& config) {
  toml::array scales;
  for (int scale : config.scales) scales.push_back(scale);
  toml::table model{
      {"name", config.name},
      {"hidden", config.hidden},
      {"latent", config.latent},
      {"layers", config.layers},
      {"heads", config.heads},
      {"mlp_ratio", config.mlp_ratio},
      {"max_positions", config.max_positions},
      {"scales", scales},
      {"style_hidden", config.style_hidden},
      {"theory_component", config.theory_component},
      {"theory_dim", config.theory_dim},
      {"diffusion_steps", config.diffusion_steps},
      {"cosine_offset", config.cosine_offset},
      {"prediction", to_string(config.prediction)},
      {"tie_embeddings", config.tie_embeddings},
  };
  std::ostringstream out;
  out << toml::table{{"model", model}} << '\n';
  return out.str();
}

TrainConfig load_train_config(const fs::path& path) {
  const std::string source = path.string();
  const toml::table root = parse_toml(read_text(path), source);
  TrainConfig config;
  const auto section = [&](const char* name) {
    return TableReader(root.get_as<toml::table>(name), source, name);
  };

  TableReader top(&root, source, "");
  std::string model_config;
  top.read("model_config", model_config);
  std::int64_t seed = 1;
  top.read("seed", seed, std::int64_t{0}, std::int64_t{1} << 62);
  config.seed = static_cast<std::uint64_t>(seed);
  top.finish();
  if (model_config.empty()) top.fail("model_config", "is required (a path to configs/model/<size>.toml)");
  config.model_config =
      fs::path(model_config).is_absolute() ? fs::path(model_config) : path.parent_path() / model_config;
  config.model = load_model_config(config.model_config);

  TableReader data = section("data");
  std::string cache_dir;
  data.read("cache", cache_dir);
  config.cache_dir = cache_dir;
  data.read("performer", config.performer);
  data.read("window_tokens", config.window_tokens, 8, 65535);
  data.read("reference_tokens", config.reference_tokens, 8, 65535);
  data.read("batch_size", config.batch_size, 1, 4096);
  data.finish();

  TableReader optim = section("optim");
  optim.read("lr", config.lr, 0.0, 1.0);
  optim.read("min_lr", config.min_lr, 0.0, 1.0);
  optim.read("warmup_steps", config.warmup_steps, 0, 1 << 30);
  optim.read("weight_decay", config.weight_decay, 0.0, 10.0);
  optim.read("beta1", config.beta1, 0.0, 0.99999);
  optim.read("beta2", config.beta2, 0.0, 0.99999);
  optim.read("grad_accum", config.grad_accum, 1, 4096);
  optim.read("clip_norm", config.clip_norm, 0.0, 1e6);
  optim.read("steps", config.steps, std::int64_t{1}, std::int64_t{1} << 40);
  optim.finish();

  TableReader loss = section("loss");
  loss.read("recon", config.loss.recon, 0.0, 1e3);
  loss.read("diff", config.loss.diff, 0.0, 1e3);
  loss.read("kl", config.loss.kl, 0.0, 1e3);
  loss.read("kl_free_nats_per_dim", config.loss.kl_free_nats_per_dim, 0.0, 10.0);
  loss.read("theory", config.loss.theory, 0.0, 1e3);
  loss.read("readout", config.loss.readout, 0.0, 1e3);
  loss.finish();

  TableReader diffusion = section("diffusion");
  diffusion.read("probability", config.diffusion_probability, 0.0, 1.0);
  diffusion.read("mask_prefix", config.mask_prefix, 0.0, 1.0);
  diffusion.read("mask_infill", config.mask_infill, 0.0, 1.0);
  diffusion.read("mask_suffix", config.mask_suffix, 0.0, 1.0);
  diffusion.read("mask_none", config.mask_none, 0.0, 1.0);
  diffusion.read("style_dropout", config.style_dropout, 0.0, 1.0);
  diffusion.read("theory_dropout", config.theory_dropout, 0.0, 1.0);
  diffusion.read("detach_latent_target", config.detach_latent_target);
  diffusion.finish();

  TableReader augmenting = section("augment");
  tatumflow::augment::AugmentOptions& aug = config.augment;
  augmenting.read("pitch_shift_probability", aug.pitch_shift_probability, 0.0, 1.0);
  augmenting.read("max_pitch_shift", aug.max_pitch_shift, 0, 24);
  augmenting.read("time_stretch_probability", aug.time_stretch_probability, 0.0, 1.0);
  augmenting.read("min_time_stretch", aug.min_time_stretch, 0.1, 10.0);
  augmenting.read("max_time_stretch", aug.max_time_stretch, 0.1, 10.0);
  augmenting.read("velocity_scale_probability", aug.velocity_scale_probability, 0.0, 1.0);
  augmenting.read("min_velocity_scale", aug.min_velocity_scale, 0.01, 10.0);
  augmenting.read("max_velocity_scale", aug.max_velocity_scale, 0.01, 10.0);
  augmenting.read("note_dropout_probability", aug.note_dropout_probability, 0.0, 1.0);
  augmenting.read("min_note_dropout", aug.min_note_dropout, 0.0, 1.0);
  augmenting.read("max_note_dropout", aug.max_note_dropout, 0.0, 1.0);
  augmenting.finish();

  TableReader ema = section("ema");
  ema.read("decay", config.ema_decay, 0.0, 0.999999);
  ema.finish();

  TableReader checkpoint = section("checkpoint");
  std::string out_dir = config.out_dir.string();
  std::string init_from;
  checkpoint.read("out", out_dir);
  checkpoint.read("init_from", init_from);
  checkpoint.read("every", config.checkpoint_every, 1, 1 << 30);
  checkpoint.finish();
  config.out_dir = out_dir;
  config.init_from = init_from;

  TableReader log = section("log");
  log.read("every", config.log_every, 1, 1 << 30);
  log.read("val_every", config.val_every, 1, 1 << 30);
  log.read("val_batches", config.val_batches, 0, 1 << 20);
  log.finish();

  for (const auto& [key, node] : root) {
    static const std::set<std::string> sections = {"data",    "optim", "loss",       "diffusion",
                                                   "augment", "ema",   "checkpoint", "log"};
    if (node.is_table() && sections.count(std::string(key.str())) == 0) {
      throw ConfigError(source + ": unknown section [" + std::string(key.str()) + "]");
    }
  }
  try {
    config.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(source + ": " + e.what());
  }
  return config;
}

fs::path default_config_dir() {
  if (const char* env = std::getenv("TATUMFLOW_CONFIG_DIR"); env != nullptr && *env != '\0') return env;
  std::error_code error;
  fs::path dir = fs::read_symlink("/proc/self/exe", error).parent_path();
  for (; !error && !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "configs" / "model")) return dir / "configs";
  }
  return "configs";
}

fs::path model_config_path(std::string_view size) {
  const fs::path dir = default_config_dir() / "model";
  const fs::path path = dir / (std::string(size) + ".toml");
  if (fs::is_regular_file(path)) return path;
  std::vector<std::string> sizes;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".toml") sizes.push_back(entry.path().stem().string());
  }
  std::sort(sizes.begin(), sizes.end());
  std::string known;
  for (const std::string& name : sizes) known += (known.empty() ? "" : ", ") + name;
  throw ConfigError(
      "no model size \"" + std::string(size) + "\" in " + dir.string() +
      (known.empty() ? " (folder missing or empty; set TATUMFLOW_CONFIG_DIR)" : " (known: " + known + ")"));
}

}  // namespace tatumflow::model
