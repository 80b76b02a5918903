// SPDX-License-Identifier: GPL-3.0-or-later
// Speed of the model engine on seeded random weights, for `tatumflow bench
// engine`: a full autoregressive forward pass, KV-cached decoding after a
// prompt (prefill timed apart), and DDIM denoising steps over a diffusion
// window. No torch here. Runs the model on the calling thread and allocates:
// an inference thread, never a real-time one. Throws ModelError.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "tatumflow/engine/model_config.hpp"
#include "tatumflow/engine/tokenizer.hpp"

namespace tatumflow::model {

struct EngineBenchOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  std::uint64_t seed = 1;      // weights, prompts and sampling
  int repeats = 5;             // timed runs of each measurement
  int warmup = 1;              // untimed runs before them
  int forward_tokens = 512;
  std::vector<int> prompt_tokens = {256, 1024};
  int decode_tokens = 64;
  int diffusion_positions = 512;  // window: the first half clean context, the rest noised
  int diffusion_steps = 8;        // DDIM steps per timed run; a step's time is the run's / steps
};

struct DecodeTimings {
  int prompt_tokens = 0;
  // prompt + decode_tokens <= the config's max_positions. When false the run
  // used a positional table extended to fit (see EngineBenchResult).
  bool fits_config = true;
  std::vector<double> prefill_ms;         // per repeat: cache allocation + the prompt's causal pass
  std::vector<double> tokens_per_second;  // per repeat: decode_tokens sampled and fed back
};

struct EngineBenchResult {
  std::int64_t parameters = 0;  // of the model as benchmarked
  // The config's max_positions, or prompt + decode_tokens for the longest
  // prompt when that is larger: random weights time the same at any table
  // size, so a longer prompt is measured instead of being silently cut.
  int max_positions = 0;
  int torch_threads = 0;
  std::vector<double> forward_ms;     // per repeat: batch 1, forward_tokens, causal, logits of every position
  std::vector<DecodeTimings> decode;  // one per prompt length
  std::vector<double> ddim_step_ms;   // per repeat: one DDIM step, batch 1 (no guidance)
};

// Throws ModelError for options out of range (repeats, lengths < 1, warmup < 0,
// forward or diffusion window beyond the config's max_positions).
// // inference thread
[[nodiscard]] EngineBenchResult bench_engine(const ModelConfig& config, const EngineBenchOptions& options);

}  // namespace tatumflow::model

namespace tatumflow::model {

// The answer path of a live session on a trained model, on any device: how soon
// the first chunk is ready once the call ends, the real-time factor of one
// session, of several sessions whose denoising runs batched in one pass, and of
// several sessions decoding on threads of their own at once.
struct RealtimeBenchOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  int repeats = 10;
  int warmup = 2;                      // also warms the GPU's kernels and allocator
  double chunk_seconds = 2.0;          // music per answer chunk
  int diffusion_steps = 8;             // DDIM steps per block, as the daemon's default
  float guidance = 1.5f;               // classifier-free guidance doubles the denoising batch
  std::vector<int> sessions = {1, 8};  // batched denoising and concurrent sessions measured
  int fresh_positions = 128;           // positions generated per window in the batched measurement
  bool bf16 = true;                    // bf16 autocast of denoising on a CUDA device
  std::uint64_t seed = 1;
};

struct BatchedTimings {
  int sessions = 0;
  std::vector<double> window_ms;  // per repeat: all sessions' windows denoised and read out
};

// Several sessions answering at once, each on an inference thread of its own
// (the daemon's pool), in autoregressive mode: one chunk each from a cold
// state, all started together. Each repeat runs the sessions once with their
// steps shared (StepSharing::kShared) and once with every thread running its
// own, side by side.
struct ConcurrentTimings {
  int sessions = 0;
  std::vector<double> shared_ms;  // per repeat: until the last session's chunk is done
  std::vector<double> separate_ms;
  std::vector<double> music_seconds;  // per repeat: the chunks' mean length (shared runs)
  double steps_per_pass = 0.0;        // shared runs: decoding steps per forward pass
};

struct RealtimeBenchResult {
  std::string device;
  std::int64_t parameters = 0;
  int call_tokens = 0;
  double call_seconds = 0.0;
  double tokens_per_music_second = 0.0;   // density of the call, which sizes the answer's positions
  std::vector<double> first_chunk_ms;     // diffusion chunk with a cold state, context = the call
  std::vector<double> first_chunk_ar_ms;  // the same in autoregressive mode
  double chunk_music_seconds = 0.0;       // what one diffusion chunk covers (median over repeats)
  double chunk_music_seconds_ar = 0.0;
  int window_positions = 0;
  std::vector<BatchedTimings> batched;
  std::vector<ConcurrentTimings> concurrent;  // one per entry of options.sessions
};

// `call` is the player's phrase as tokens (tokens::encode). Throws ModelError
// (CheckpointError for a bad checkpoint). // inference thread
[[nodiscard]] RealtimeBenchResult bench_realtime(const std::filesystem::path& checkpoint,
                                                 std::span<const tokens::Token> call,
                                                 const RealtimeBenchOptions& options);

}  // namespace tatumflow::model
