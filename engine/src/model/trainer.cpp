// SPDX-License-Identifier: GPL-3.0-or-later
// model_train.hpp: the training loop (AdamW, warmup + cosine schedule, gradient
// accumulation, clipping, EMA, data-parallel averaging), exact resume,
// validation, metrics CSV and checkpoints.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "autocast.hpp"
#include "checkpoint.hpp"
#include "diffusion.hpp"
#include "distributed.hpp"
#include "network.hpp"
#include "tatumflow/engine/augment.hpp"
#include "tatumflow/engine/dataset.hpp"
#include "tatumflow/engine/model_train.hpp"
#include "tatumflow/engine/progress.hpp"
#include "tatumflow/engine/random.hpp"
#include "tatumflow/engine/theory_features.hpp"

namespace tatumflow::model {

namespace fs = std::filesystem;
using tokens::Token;

namespace {

constexpr std::uint64_t kValidationSeed = 0x76616c6964ULL;

// Builds micro-batches from the token cache: a window of window_tokens + 1
// tokens, and as style/theory reference the tokens just before it (or just
// after, near a performance's start), both augmented with the same draws.
class BatchSource {
 public:
  BatchSource(const dataset::TokenCache& cache, const TrainConfig& config, dataset::Split split)
      : cache_(cache),
        config_(config),
        sampler_(cache, static_cast<std::size_t>(config.window_tokens) + 1,
                 dataset::SamplerOptions{split, config.performer, std::nullopt}) {}

  TrainingBatch next(Rng& rng, bool augmented) const {
    const auto size = static_cast<std::int64_t>(config_.batch_size);
    const std::int64_t width = config_.window_tokens + 1;
    const std::int64_t reference_width = config_.reference_tokens;
    auto tokens = torch::full({size, width}, static_cast<std::int64_t>(tokens::kPad), torch::kInt64);
    auto reference =
        torch::full({size, reference_width}, static_cast<std::int64_t>(tokens::kPad), torch::kInt64);
    auto theory = torch::zeros({size, kTheoryFeatureTotal});
    auto token_rows = tokens.accessor<std::int64_t, 2>();
    auto reference_rows = reference.accessor<std::int64_t, 2>();
    for (std::int64_t b = 0; b < size; ++b) {
      const dataset::Window window = sampler_.sample_window(rng);
      std::vector<Token> sequence(window.tokens.begin(), window.tokens.end());
      std::vector<Token> source = reference_of(window);
      if (augmented) {
        const Rng draws(rng.next());
        Rng for_window = draws;
        Rng for_reference = draws;
        sequence = augment::augment_tokens(sequence, for_window, config_.augment);
        if (!source.empty()) source = augment::augment_tokens(source, for_reference, config_.augment);
      }
      const auto kept = std::min<std::int64_t>(width, static_cast<std::int64_t>(sequence.size()));
      for (std::int64_t i = 0; i < kept; ++i) token_rows[b][i] = sequence[static_cast<std::size_t>(i)];
      // The reference's end touches the window, so keep its last tokens.
      const auto reference_kept =
          std::min<std::int64_t>(reference_width, static_cast<std::int64_t>(source.size()));
      const std::size_t offset = source.size() - static_cast<std::size_t>(reference_kept);
      for (std::int64_t i = 0; i < reference_kept; ++i)
        reference_rows[b][i] = source[offset + static_cast<std::size_t>(i)];
      theory[b].copy_(theory_tensor(theory_of(source))[0]);
    }
    return {tokens, reference, theory};
  }

 private:
  std::vector<Token> reference_of(const dataset::Window& window) const {
    const std::span<const Token> all = cache_.tokens(window.performance);
    const auto want = static_cast<std::size_t>(config_.reference_tokens);
    std::size_t begin = 0;
    std::size_t end = 0;
    if (window.start >= want / 4) {
      end = window.start;
      begin = end > want ? end - want : 0;
    } else {
      begin = std::min<std::size_t>(window.start + window.tokens.size(), all.size());
      end = std::min(begin + want, all.size());
    }
    const auto reference = dataset::style_reference(all, begin, end);
    return {reference.begin(), reference.end()};
  }

  const dataset::TokenCache& cache_;
  const TrainConfig& config_;
  dataset::WindowSampler sampler_;
};

double learning_rate(const TrainConfig& config, std::int64_t step) {
  if (step < config.warmup_steps) return config.lr * double(step + 1) / double(config.warmup_steps + 1);
  const double span = std::max<double>(double(config.steps - config.warmup_steps), 1.0);
  const double progress = std::min(double(step - config.warmup_steps) / span, 1.0);
  return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + std::cos(M_PI * progress));
}

std::uint64_t step_seed(std::uint64_t seed, int rank, std::int64_t step, std::uint64_t stream) {
  return mix64(mix64(mix64(seed ^ stream) + static_cast<std::uint64_t>(rank)) +
               static_cast<std::uint64_t>(step));
}

// Means of what the log window saw; modes that did not occur stay empty.
struct Accumulator {
  double loss = 0;
  int steps = 0;
  double ar_loss = 0, ar_accuracy = 0;
  int ar_batches = 0;
  double recon = 0, diff = 0;
  int diffusion_batches = 0;
  double kl = 0, theory = 0, readout = 0, latent_variance = 0;
  int batches = 0;
  double grad_norm = 0;
  double tokens = 0, seconds = 0;
  std::array<double, kNoiseBuckets> bucket_loss{};
  std::array<std::int64_t, kNoiseBuckets> bucket_count{};

  void add(const LossReport& report) {
    if (report.diffusion) {
      recon += report.token_loss;
      diff += report.diffusion_loss;
      ++diffusion_batches;
      for (int i = 0; i < kNoiseBuckets; ++i) {
        bucket_loss[static_cast<std::size_t>(i)] += report.bucket_loss[static_cast<std::size_t>(i)];
        bucket_count[static_cast<std::size_t>(i)] += report.bucket_count[static_cast<std::size_t>(i)];
      }
    } else {
      ar_loss += report.token_loss;
      ar_accuracy += report.token_accuracy;
      ++ar_batches;
    }
    kl += report.kl;
    theory += report.theory;
    readout += report.readout;
    latent_variance += report.latent_variance;
    ++batches;
  }
};

std::string number(double value) {
  std::ostringstream out;
  out << std::setprecision(6) << value;
  return out.str();
}

std::string mean_or_blank(double sum, double count) { return count > 0 ? number(sum / count) : ""; }

struct Validation {
  double ar_nll = 0, ar_accuracy = 0, recon = 0, diff = 0;
};

const char* const kCsvHeader =
    "step,lr,loss,ar_loss,ar_accuracy,recon_loss,diff_loss,kl,theory,readout,latent_var,grad_norm,tokens_per_"
    "s,"
    "diff_t1,diff_t2,diff_t3,diff_t4,diff_t5,val_ar_nll,val_ar_accuracy,val_recon,val_diff";

std::string csv_row(std::int64_t step, double lr, const Accumulator& a,
                    const std::optional<Validation>& validation) {
  std::ostringstream row;
  row << step << ',' << number(lr) << ',' << mean_or_blank(a.loss, a.steps) << ','
      << mean_or_blank(a.ar_loss, a.ar_batches) << ',' << mean_or_blank(a.ar_accuracy, a.ar_batches) << ','
      << mean_or_blank(a.recon, a.diffusion_batches) << ',' << mean_or_blank(a.diff, a.diffusion_batches)
      << ',' << mean_or_blank(a.kl, a.batches) << ',' << mean_or_blank(a.theory, a.batches) << ','
      << mean_or_blank(a.readout, a.batches) << ',' << mean_or_blank(a.latent_variance, a.batches) << ','
      << mean_or_blank(a.grad_norm, a.steps) << ',' << mean_or_blank(a.tokens, a.seconds);
  for (int i = 0; i < kNoiseBuckets; ++i) {
    row << ','
        << mean_or_blank(a.bucket_loss[static_cast<std::size_t>(i)],
                         double(a.bucket_count[static_cast<std::size_t>(i)]));
  }
  if (validation) {
    row << ',' << number(validation->ar_nll) << ',' << number(validation->ar_accuracy) << ','
        << number(validation->recon) << ',' << number(validation->diff);
  } else {
    row << ",,,,";
  }
  return row.str();
}

// Keeps the header and the rows up to `step`, so a resumed run continues the file seamlessly.
void truncate_metrics(const fs::path& path, std::int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::vector<std::string> kept;
  std::string line;
  while (std::getline(in, line)) {
    if (kept.empty() || std::strtoll(line.c_str(), nullptr, 10) <= step) kept.push_back(line);
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (const std::string& row : kept) out << row << '\n';
}

std::string digest(const std::vector<torch::Tensor>& tensors) {
  std::uint64_t hash = 0;
  for (const auto& tensor : tensors) {
    const auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(cpu.data_ptr());
    const auto size = static_cast<std::size_t>(cpu.numel()) * cpu.element_size();
    for (std::size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
    hash = mix64(hash);
  }
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << hash;
  return out.str();
}

TrainingBatch to_device(const TrainingBatch& batch, const torch::Device& device) {
  if (device.is_cpu()) return batch;
  return {batch.tokens.to(device, /*non_blocking=*/true), batch.reference.to(device, true),
          batch.theory.to(device, true)};
}

torch::Device training_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw ConfigError("unknown device \"" + name + "\" (use cpu, cuda or cuda:N)");
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    throw ConfigError("device \"" + name + "\" requested, but this build or machine has no CUDA");
  return device;
}

Validation validate(TatumFlowNet& net, const NoiseSchedule& schedule, const BatchSource& source,
                    const TrainConfig& config, const torch::Device& device, bool bf16) {
  torch::NoGradGuard no_grad;
  net->eval();
  Validation result;
  double ar_tokens = 0, diff_tokens = 0;
  for (int i = 0; i < config.val_batches; ++i) {
    // The same windows and noise at every validation, so the numbers are comparable.
    Rng rng(step_seed(config.seed, 0, i, kValidationSeed));
    const TrainingBatch batch = to_device(source.next(rng, false), device);
    const Bf16Autocast autocast(device, bf16);
    auto generator =
        at::make_generator<at::CPUGeneratorImpl>(step_seed(config.seed, 0, i, kValidationSeed + 1));
    TrainConfig plain = config;
    plain.style_dropout = 0.0;
    plain.theory_dropout = 0.0;
    const LossReport ar = compute_losses(net, schedule, batch, false, plain, generator);
    const LossReport diffusion = compute_losses(net, schedule, batch, true, plain, generator);
    result.ar_nll += ar.token_loss * double(ar.token_targets);
    result.ar_accuracy += ar.token_accuracy * double(ar.token_targets);
    ar_tokens += double(ar.token_targets);
    result.recon += diffusion.token_loss * double(diffusion.token_targets);
    result.diff += diffusion.diffusion_loss * double(diffusion.token_targets);
    diff_tokens += double(diffusion.token_targets);
  }
  net->train();
  result.ar_nll /= std::max(ar_tokens, 1.0);
  result.ar_accuracy /= std::max(ar_tokens, 1.0);
  result.recon /= std::max(diff_tokens, 1.0);
  result.diff /= std::max(diff_tokens, 1.0);
  return result;
}

std::unique_ptr<torch::optim::AdamW> make_optimizer(TatumFlowNet& net, const TrainConfig& config) {
  // No weight decay on biases, norms' gains, embeddings' single vectors (1-D tensors).
  std::vector<torch::Tensor> decayed, plain;
  for (const auto& parameter : net->parameters())
    (parameter.dim() >= 2 ? decayed : plain).push_back(parameter);
  const auto options = [&](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(config.lr).betas({config.beta1, config.beta2}).weight_decay(decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, options(config.weight_decay));
  groups.emplace_back(plain, options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(config.lr));
}

void run_plot(const fs::path& metrics, const fs::path& png) {
  const fs::path script = default_config_dir().parent_path() / "scripts" / "plot-metrics";
  if (!fs::exists(script)) {
    std::cerr << "tatumflow train: no " << script << "; skipping the loss plot\n";
    return;
  }
  const auto quote = [](const fs::path& p) {
    std::string out = "'";
    for (char c : p.string()) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  };
  const std::string command = "/usr/bin/python3 " + quote(script) + " " + quote(metrics) + " " + quote(png);
  if (std::system(command.c_str()) != 0) std::cerr << "tatumflow train: plotting failed: " << command << '\n';
}

}  // namespace

std::vector<std::pair<std::string, std::int64_t>> parameter_counts(const ModelConfig& config) {
  try {
    return TatumFlowNet(config)->parameter_groups();
  } catch (const c10::Error& e) {
    throw ModelError(std::string("building the model: ") + e.what_without_backtrace());
  }
}

CheckpointSummary inspect_checkpoint(const fs::path& path) {
  const LoadedCheckpoint loaded = read_checkpoint(path);
  return {loaded.header.kind, loaded.header.step, loaded.header.config, loaded.header.window_tokens,
          parameter_counts(loaded.header.config)};
}

TrainSummary train(TrainConfig config, const TrainOptions& options) {
  if (options.cache_dir) config.cache_dir = *options.cache_dir;
  if (options.out_dir) config.out_dir = *options.out_dir;
  if (options.steps) config.steps = *options.steps;
  config.validate();
  if (config.cache_dir.empty()) throw ConfigError("no token cache: set [data] cache or pass --cache");

  retain_freed_memory();
  const torch::Device device = training_device(options.device);
  const std::unique_ptr<DataParallel> parallel = DataParallel::from_environment();
  TrainSummary summary;
  summary.rank = parallel ? parallel->rank() : 0;
  summary.world_size = parallel ? parallel->world_size() : 1;
  const bool lead = summary.rank == 0;
  summary.checkpoint = config.out_dir / "checkpoint.tfc";
  summary.model = config.out_dir / "model.tfc";
  summary.metrics = config.out_dir / "metrics.csv";

  const dataset::TokenCache cache = dataset::TokenCache::open(config.cache_dir);
  const BatchSource training(cache, config, dataset::Split::kTrain);
  std::optional<BatchSource> held_out;
  if (config.val_batches > 0) {
    try {
      held_out.emplace(cache, config, dataset::Split::kValidation);
    } catch (const std::invalid_argument& e) {
      if (lead)
        std::cerr << "tatumflow train: no validation windows (" << e.what() << "); validation is off\n";
    }
  }

  torch::manual_seed(config.seed);
  TatumFlowNet net(config.model);
  const NoiseSchedule schedule(config.model);
  auto parameters = net->named_parameters();
  std::vector<torch::Tensor> weights = net->parameters();
  std::int64_t step = 0;

  if (!config.init_from.empty() && !(options.resume && fs::exists(summary.checkpoint))) {
    load_initial_weights(config.init_from, config.model, config.model_config.string(), parameters);
  }
  net->to(device);
  torch::OrderedDict<std::string, torch::Tensor> ema;
  for (const auto& item : parameters) ema.insert(item.key(), item.value().detach().clone());
  auto optimizer = make_optimizer(net, config);

  if (options.resume && fs::exists(summary.checkpoint)) {
    LoadedCheckpoint resumed = read_checkpoint(summary.checkpoint);
    if (resumed.header.kind != "training")
      throw CheckpointError(summary.checkpoint.string() + " is not a training checkpoint");
    if (!(resumed.header.config == config.model)) {
      throw ConfigError(summary.checkpoint.string() + " was trained with another model config than " +
                        config.model_config.string());
    }
    read_tensors(resumed.archive, "model", parameters, summary.checkpoint);
    read_tensors(resumed.archive, "ema", ema, summary.checkpoint);
    torch::serialize::InputArchive state;
    resumed.archive.read("optimizer", state);
    optimizer->load(state);
    step = resumed.header.step;
  }
  if (parallel) {
    parallel->broadcast(weights);
    parallel->broadcast(ema.values());
  }
  summary.first_step = step;

  if (lead) {
    fs::create_directories(config.out_dir);
    if (step > 0) truncate_metrics(summary.metrics, step);
  }
  std::ofstream csv;
  if (lead) {
    const bool fresh = !fs::exists(summary.metrics) || fs::file_size(summary.metrics) == 0 || step == 0;
    csv.open(summary.metrics, fresh ? std::ios::trunc : std::ios::app);
    if (!csv) throw ModelError("cannot write " + summary.metrics.string());
    if (fresh) csv << kCsvHeader << '\n';
  }

  const auto save = [&](std::int64_t at_step) {
    write_checkpoint(summary.checkpoint, {"training", at_step, config.model, config.window_tokens},
                     [&](auto& archive) {
                       write_tensors(archive, "model", parameters);
                       write_tensors(archive, "ema", ema);
                       torch::serialize::OutputArchive state;
                       optimizer->save(state);
                       archive.write("optimizer", state);
                     });
    write_checkpoint(summary.model, {"model", at_step, config.model, config.window_tokens},
                     [&](auto& archive) { write_tensors(archive, "model", ema); });
  };

  std::unique_ptr<ProgressBar> bar;
  if (lead && options.progress) {
    bar = std::make_unique<ProgressBar>("train", static_cast<std::uint64_t>(config.steps - step),
                                        ProgressBar::Options{"steps", stderr, ProgressBar::Mode::kAuto});
  }
  net->train();
  auto generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);
  Accumulator window;
  const auto run_started = std::chrono::steady_clock::now();
  double run_tokens = 0;
  std::int64_t steps_this_run = 0;
  while (step < config.steps && (options.stop_after == 0 || steps_this_run < options.stop_after)) {
    const auto started = std::chrono::steady_clock::now();
    const double lr = learning_rate(config, step);
    for (auto& group : optimizer->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer->zero_grad();
    // Every draw of this step follows from (seed, rank, step): resuming needs no RNG state.
    Rng data_rng(step_seed(config.seed, summary.rank, step, 1));
    generator.set_current_seed(step_seed(config.seed, summary.rank, step, 2));
    double loss = 0;
    double tokens = 0;
    for (int micro = 0; micro < config.grad_accum; ++micro) {
      const TrainingBatch batch = to_device(training.next(data_rng, true), device);
      const bool diffusion = data_rng.chance(config.diffusion_probability);
      const LossReport report = [&] {
        const Bf16Autocast autocast(device, options.bf16);
        return compute_losses(net, schedule, batch, diffusion, config, generator);
      }();
      (report.total / config.grad_accum).backward();
      loss += report.total.item<double>() / config.grad_accum;
      tokens += batch.tokens.narrow(1, 0, config.window_tokens).ne(tokens::kPad).sum().item<double>();
      window.add(report);
    }
    for (auto& weight : weights) {
      if (!weight.grad().defined()) weight.mutable_grad() = torch::zeros_like(weight);
    }
    if (parallel) {
      std::vector<torch::Tensor> grads;
      for (auto& weight : weights) grads.push_back(weight.grad());
      parallel->average(grads);
      tokens *= summary.world_size;
    }
    const double grad_norm = torch::nn::utils::clip_grad_norm_(weights, config.clip_norm);
    optimizer->step();
    {
      torch::NoGradGuard no_grad;
      const double decay = std::min(config.ema_decay, double(1 + step) / double(10 + step));
      for (const auto& item : parameters)
        ema[item.key()].mul_(decay).add_(item.value().detach(), 1.0 - decay);
    }
    ++step;
    ++steps_this_run;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    window.loss += loss;
    window.grad_norm += grad_norm;
    ++window.steps;
    window.tokens += tokens;
    window.seconds += seconds;
    run_tokens += tokens;
    summary.last_loss = loss;

    std::optional<Validation> validation;
    if (lead && held_out && (step % config.val_every == 0 || step == config.steps)) {
      validation = validate(net, schedule, *held_out, config, device, options.bf16);
      summary.validation_nll = validation->ar_nll;
    }
    if (lead && (step % config.log_every == 0 || validation || step == config.steps)) {
      csv << csv_row(step, lr, window, validation) << '\n';
      csv.flush();
      window = Accumulator();
    }
    if (bar) {
      std::ostringstream text;
      text << "loss " << std::fixed << std::setprecision(3) << loss << "  " << std::setprecision(0)
           << tokens / std::max(seconds, 1e-9) << " tok/s";
      if (summary.validation_nll) text << "  val nll " << std::setprecision(3) << *summary.validation_nll;
      bar->set_text(text.str());
      bar->add();
    }
    if (lead && (step % config.checkpoint_every == 0 || step == config.steps)) save(step);
  }
  // A run cut short by stop_after still leaves its last step on disk, to resume or to use.
  if (lead && steps_this_run > 0 && step % config.checkpoint_every != 0 && step != config.steps) save(step);
  if (bar) bar->finish();
  csv.close();

  summary.last_step = step;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_started).count();
  summary.tokens_per_second = run_tokens / std::max(summary.seconds, 1e-9);
  summary.weights_digest = digest(weights);
  if (lead && options.plot && step == config.steps) {
    summary.plot = config.out_dir / "loss.png";
    run_plot(summary.metrics, summary.plot);
    if (!fs::exists(summary.plot)) summary.plot.clear();
  }
  return summary;
}

}  // namespace tatumflow::model
