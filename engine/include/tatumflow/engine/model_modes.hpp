// SPDX-License-Identifier: GPL-3.0-or-later
// The generation modes that re-play existing music instead of continuing it:
// style transfer, improvising on a base, re-harmonising and swapping one theory
// component. All are one operation, SDEdit in the latent diffusion space: the
// content's latents are noised to a level set by `strength`, then denoised
// under a (new) style and (edited) theory conditioning. No torch here.
//
// Threads and errors as in model_api.hpp: a ModelContext may be shared, these
// functions run on an inference thread (they allocate and run the model) and
// throw only ModelError.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/theory_features.hpp"
#include "tatumflow/engine/tokenizer.hpp"
#include "tatumflow/protocol/performance.hpp"

namespace tatumflow::model {

enum class TheoryComponent : std::uint8_t { kHarmony, kMelody, kRhythm, kDynamics };
inline constexpr std::size_t kTheoryComponentCount = 4;

[[nodiscard]] const char* to_string(TheoryComponent component);  // "harmony" ... // any thread
// "harmony", "melody", "rhythm" or "dynamics"; ModelError naming anything else. // any thread
[[nodiscard]] TheoryComponent parse_theory_component(std::string_view name);

// Changes to the theory features a stretch of re-generated music is conditioned
// on. Without any, each stretch gets the content's own features over that stretch.
struct TheoryEdit {
  // Non-empty: the harmony of this progression (parse_chord_list syntax), each
  // chord seconds_per_chord long, repeated for as long as the content lasts;
  // a stretch gets the harmony of the chords sounding during it.
  std::string chords;
  double seconds_per_chord = 2.0;
  // Components taken from `source` (e.g. another file's features) instead.
  std::shared_ptr<const TheoryFeatures> source;
  std::array<bool, kTheoryComponentCount> from_source{};  // indexed by TheoryComponent

  [[nodiscard]] bool empty() const;  // any thread
};

// The features the stretch [start_us, end_us) of `base` is conditioned on: the
// features of the notes starting in it, with `edit` applied. ModelError for a
// bad chord list or a component asked of a missing source. // any thread
[[nodiscard]] TheoryFeatures stretch_theory(const Performance& base, std::int64_t start_us,
                                            std::int64_t end_us, const TheoryEdit& edit);

struct Regeneration {
  // 0 keeps the content (its latents are only read back through the model);
  // 1 starts from pure noise, keeping only the conditioning. The content is
  // noised to diffusion time strength * T and denoised with
  // ceil(strength * controls.diffusion_steps) steps.
  float strength = 0.5f;
  TheoryEdit edit;
  // What classifier-free guidance (controls.guidance) pushes away from: the
  // "no style" embedding (false: follow the style harder), or the unedited
  // theory (true: make the edit more audible; needs a non-empty edit).
  bool guide_edit = false;
};

struct RegeneratedPiece {
  std::vector<tokens::Token> tokens;  // SOS, then one token per content position
  Performance performance;            // the tokens decoded: sorted, every note closed
  int blocks = 0;
  int denoising_steps = 0;      // per block
  std::int64_t noise_time = 0;  // the content's noise level, of model.info().config.diffusion_steps
  bool cancelled = false;       // stopped by the cancel flag; `tokens` holds the finished blocks
};

// Re-generates `content` (e.g. tokens::encode of a file; a leading SOS and a
// trailing EOS are not re-generated) in blocks of positions. Each block is
// noised per `regeneration`, denoised with the music re-generated before it as
// clean context (DDIM or DDPM per controls.sampler), conditioned on `style`
// (controls.use_style, creativity and seed as in generate_chunk) and on
// stretch_theory() of the content in the block's time span, then read out to
// tokens with generate_chunk's grammar mask and sampling controls. The result
// has as many tokens as the content, so it lasts about as long, not exactly.
// controls.mode is not used (always diffusion); controls.theory, when set,
// stands in for the content's own features under the edit. Checks `cancel`
// between denoising steps. Deterministic for a fixed seed. // inference thread
[[nodiscard]] RegeneratedPiece regenerate(const ModelContext& model, std::span<const tokens::Token> content,
                                          const StyleLatent& style, const GenerationControls& controls,
                                          const Regeneration& regeneration,
                                          const std::atomic<bool>* cancel = nullptr);

// A style drawn from the style VAE's prior N(0, I), fixed by `seed`: a
// "random performer". // any thread (not real-time)
[[nodiscard]] StyleLatent prior_style(std::uint64_t seed);

}  // namespace tatumflow::model
