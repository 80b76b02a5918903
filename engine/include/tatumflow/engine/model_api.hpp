// SPDX-License-Identifier: GPL-3.0-or-later
// Chunked generation with a trained TatumFlow model, for the daemon and the CLI.
// No torch here: the model lives behind ModelContext.
//
// Threads: a ModelContext is immutable once loaded (apart from its step
// combiner, which synchronises itself) and may be shared by any number of
// inference threads at once; on a GPU their autoregressive decoding steps then
// share forward passes (LoadOptions::step_sharing). A GenerationState belongs to one
// session and is used by one inference thread at a time. Nothing here may run
// on a real-time thread (everything allocates and runs the model).
//
// Errors: every function throws only ModelError or a type derived from it
// (CheckpointError, ConfigError); torch failures arrive translated.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/engine/theory_features.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::model {

// A checkpoint that is missing, truncated, corrupt, from another format or
// tokenizer version, or whose tensors do not fit its model config. what()
// names the file and the problem.
class CheckpointError : public ModelError {
 public:
  using ModelError::ModelError;
};

// A point in the style VAE's space: the posterior mean and log variance of a
// reference. Plain data; copy it anywhere.
struct StyleLatent {
  std::array<float, kStyleDim> mean{};
  std::array<float, kStyleDim> log_variance{};

  // (1 - alpha) a + alpha b, for morphing between styles. // any thread
  [[nodiscard]] static StyleLatent mix(const StyleLatent& a, const StyleLatent& b, float alpha);
};

enum class GenerationMode { kAutoregressive, kDiffusion };
[[nodiscard]] const char* to_string(GenerationMode mode);  // any thread

// Deterministic DDIM (eta 0) or ancestral DDPM (eta 1) over the same strided steps.
enum class DiffusionSampler { kDdim, kDdpm };

struct GenerationControls {
  GenerationMode mode = GenerationMode::kAutoregressive;
  float temperature = 1.0f;  // token sampling; 0 = greedy
  int top_k = 50;            // 0 = no limit
  float top_p = 0.95f;       // nucleus; 1 = no limit
  // The style vector is mean + creativity * sigma * noise (noise fixed by seed).
  float creativity = 0.0f;
  bool use_style = false;  // false: the learned "no style" embedding
  // Classifier-free guidance on the style (with use_style); 1 = off. In
  // autoregressive mode anything else decodes every token twice.
  float guidance = 1.5f;
  // Diffusion mode only:
  int diffusion_steps = 50;  // denoising steps per block; fewer when the deadline demands
  DiffusionSampler sampler = DiffusionSampler::kDdim;
  std::uint64_t seed = 0;
  // Harmony/melody/rhythm/dynamics to condition on, e.g. of the call, or with the
  // harmony replaced by harmony_from_chords(); empty = the learned "no theory".
  std::shared_ptr<const TheoryFeatures> theory;
};

struct GeneratedChunk {
  std::vector<tokens::Token> tokens;  // continue the context exactly
  std::vector<Note> notes;            // onset_us relative to start_us
  std::vector<PedalChange> pedals;    // time_us relative to start_us
  std::int64_t start_us = 0;          // tokenizer clock at the end of the context
  std::int64_t length_us = 0;         // clock advance of `tokens`
  int diffusion_steps_run = 0;        // per block, the last one
  bool cancelled = false;             // stopped by the cancel flag
  bool deadline_missed = false;       // stopped early because the deadline passed
};

struct ModelInfo {
  ModelConfig config;
  std::string device;
  std::int64_t parameters = 0;
  std::int64_t trained_steps = 0;
  // The longest window generation feeds the network: the training window where
  // the checkpoint records it (later positions were never trained), else
  // config.max_positions.
  std::int64_t context_positions = 0;
  std::filesystem::path path;
};

// Whether generate_chunk calls running on several threads at once (one per
// session) batch their autoregressive steps into shared forward passes: a
// thread that finds the network idle runs every step waiting at that moment.
// A lone thread never waits, and its tokens are the same either way; in a
// shared pass float rounding may differ in the last bit.
enum class StepSharing {
  kAuto,      // shared on a GPU, separate on the CPU
  kShared,    // on the CPU a shared pass runs on one core what separate
              // threads spread over all (`tatumflow bench realtime` measures both)
  kSeparate,  // each thread runs its own steps
};
[[nodiscard]] const char* to_string(StepSharing sharing);  // any thread

struct LoadOptions {
  StepSharing step_sharing = StepSharing::kAuto;
  // Positions generation may feed the network (ModelInfo::context_positions);
  // 0: the checkpoint's own. For experiments: positions past the training
  // window were never trained.
  std::int64_t context_positions = 0;
};

// Autoregressive decoding on one ModelContext since it was loaded.
struct DecodeStats {
  std::uint64_t steps = 0;   // tokens fed one at a time, all sessions together
  std::uint64_t passes = 0;  // forward passes they ran in (fewer than steps when shared)
  int widest_pass = 0;       // most steps in one pass

  // Steps per pass; 0 before the first. // any thread
  [[nodiscard]] double steps_per_pass() const { return passes == 0 ? 0.0 : double(steps) / double(passes); }
};

class ModelContext {
 public:
  // Loads a checkpoint (a training checkpoint's EMA weights, or an exported
  // model) onto `device`: "cpu", "cuda" or "cuda:N". Throws CheckpointError
  // for a bad file and ModelError for an unavailable device. // any thread
  [[nodiscard]] static std::shared_ptr<const ModelContext> load(const std::filesystem::path& path,
                                                                const std::string& device = "cpu",
                                                                const LoadOptions& options = {});
  ~ModelContext();
  ModelContext(const ModelContext&) = delete;
  ModelContext& operator=(const ModelContext&) = delete;

  [[nodiscard]] const ModelInfo& info() const;     // any thread
  [[nodiscard]] DecodeStats decode_stats() const;  // any thread

  struct Impl;
  [[nodiscard]] const Impl& impl() const { return *impl_; }  // for the model library itself

 private:
  explicit ModelContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One session's decoding state: the attention cache of what it generated last
// (reused when the next context extends it) and scratch buffers. Results do not
// depend on it: the same context, style, controls and seed give the same chunk
// whether the cache is warm or cold (up to float rounding in the logits, which
// could only flip an exact tie), unless a deadline cut the diffusion steps.
class GenerationState {
 public:
  GenerationState();  // any thread
  ~GenerationState();
  GenerationState(GenerationState&&) noexcept;
  GenerationState& operator=(GenerationState&&) noexcept;

  void reset();  // drops the cache // inference thread

  struct Impl;
  [[nodiscard]] Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Generates the music that follows `context` for chunk_seconds of the tokenizer
// clock (the last token may move the clock past it). The AR mode samples token
// by token with a grammar mask (a NOTE_ON is always followed by its DURATION,
// velocity before the first note of a chunk, no time shift across a chunk
// boundary); the diffusion mode denoises blocks of latent positions with DDIM
// given the context as clean prefix, then decodes them with the same mask.
// Checks `cancel` and `deadline` between tokens / denoising steps and returns
// what it has (flagged) when either fires. Deterministic for a fixed seed.
// // inference thread
[[nodiscard]] GeneratedChunk generate_chunk(
    const ModelContext& model, GenerationState& state, std::span<const tokens::Token> context,
    const StyleLatent& style, const GenerationControls& controls, double chunk_seconds,
    const std::atomic<bool>* cancel = nullptr,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());

// The style VAE's posterior for a token sequence (any length). // inference thread
[[nodiscard]] StyleLatent encode_style(const ModelContext& model, std::span<const tokens::Token> sequence);

// Torch's intra-op thread count, process-wide (2 cores: 1 thread plus
// OPENBLAS_NUM_THREADS=2 was fastest). // any thread, before generating
void set_torch_threads(int threads);

// Features the theory encoder reads, for a token sequence. // any thread
[[nodiscard]] TheoryFeatures theory_of(std::span<const tokens::Token> sequence);

}  // namespace tatumflow::model
