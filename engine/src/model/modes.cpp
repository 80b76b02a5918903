// SPDX-License-Identifier: GPL-3.0-or-later
// model_modes.hpp: re-generation (SDEdit) for style transfer, improvisation and editing.
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "context.hpp"
#include "sampling.hpp"
#include "tatumflow/engine/model_modes.hpp"
#include "tatumflow/engine/random.hpp"

namespace tatumflow::model {

using tokens::Token;

namespace {

constexpr std::array<const char*, kTheoryComponentCount> kComponentNames = {"harmony", "melody", "rhythm",
                                                                            "dynamics"};

// Prefix plus block: the bundled model was trained on 256-token windows, so
// wider ones would reach positions it never learned.
constexpr std::int64_t kRegenerationWindow = 256;

// The notes starting in [start_us, end_us) and the pedal as it moves there, timed from start_us.
Performance excerpt(const Performance& performance, std::int64_t start_us, std::int64_t end_us) {
  Performance out;
  const auto first = std::lower_bound(performance.notes.begin(), performance.notes.end(), start_us,
                                      [](const Note& note, std::int64_t t) { return note.onset_us < t; });
  for (auto note = first; note != performance.notes.end() && note->onset_us < end_us; ++note) {
    Note shifted = *note;
    shifted.onset_us -= start_us;
    out.notes.push_back(shifted);
  }
  // A pedal held into the stretch goes down at its start; only real transitions are kept.
  bool down = false;
  for (const PedalChange& pedal : performance.pedals) {
    if (pedal.time_us >= end_us) break;
    const std::int64_t time_us = std::max<std::int64_t>(pedal.time_us - start_us, 0);
    if (pedal.down == down) continue;
    down = pedal.down;
    if (!out.pedals.empty() && out.pedals.back().time_us == time_us) {
      out.pedals.pop_back();  // cancelled before the stretch began
    } else {
      out.pedals.push_back({time_us, down, pedal.channel});
    }
  }
  out.length_us = end_us - start_us;
  out.sort();
  return out;
}

// The chords of a repeating progression that sound during [start_us, end_us), as a chord list.
std::string chords_during(const std::vector<ChordEstimate>& progression, double seconds_per_chord,
                          std::int64_t start_us, std::int64_t end_us) {
  const double chord_us = seconds_per_chord * 1e6;
  const auto first = static_cast<std::int64_t>(std::floor(double(start_us) / chord_us));
  const auto last = std::max(first, static_cast<std::int64_t>(std::ceil(double(end_us) / chord_us)) - 1);
  std::string list;
  for (std::int64_t k = first; k <= last; ++k) {
    if (!list.empty()) list += ' ';
    list += chord_name(progression[static_cast<std::size_t>(k) % progression.size()].chord);
  }
  return list;
}

// `features` of the stretch [start_us, end_us) with `edit` applied.
TheoryFeatures apply_edit(TheoryFeatures features, const TheoryEdit& edit, std::int64_t start_us,
                          std::int64_t end_us) {
  if (!edit.chords.empty()) {
    try {
      const auto progression = parse_chord_list(edit.chords, edit.seconds_per_chord);
      features.harmony = harmony_from_chords(
          chords_during(progression, edit.seconds_per_chord, start_us, end_us), edit.seconds_per_chord);
    } catch (const std::invalid_argument& e) {
      throw ModelError(std::string("theory edit: ") + e.what());
    }
  }
  const auto from = [&](TheoryComponent c) { return edit.from_source[static_cast<std::size_t>(c)]; };
  if (!edit.source) {
    if (std::any_of(edit.from_source.begin(), edit.from_source.end(), [](bool b) { return b; })) {
      throw ModelError("theory edit: components asked of no source");
    }
    return features;
  }
  if (from(TheoryComponent::kHarmony)) features.harmony = edit.source->harmony;
  if (from(TheoryComponent::kMelody)) features.melody = edit.source->melody;
  if (from(TheoryComponent::kRhythm)) features.rhythm = edit.source->rhythm;
  if (from(TheoryComponent::kDynamics)) features.dynamics = edit.source->dynamics;
  return features;
}

}  // namespace

const char* to_string(TheoryComponent component) {
  return kComponentNames[static_cast<std::size_t>(component)];
}

TheoryComponent parse_theory_component(std::string_view name) {
  for (std::size_t i = 0; i < kComponentNames.size(); ++i) {
    if (name == kComponentNames[i]) return static_cast<TheoryComponent>(i);
  }
  throw ModelError("unknown theory component \"" + std::string(name) +
                   "\" (use harmony, melody, rhythm or dynamics)");
}

bool TheoryEdit::empty() const {
  return chords.empty() && std::none_of(from_source.begin(), from_source.end(), [](bool b) { return b; });
}

TheoryFeatures stretch_theory(const Performance& base, std::int64_t start_us, std::int64_t end_us,
                              const TheoryEdit& edit) {
  if (end_us <= start_us) {
    throw ModelError("stretch_theory: empty stretch [" + std::to_string(start_us) + ", " +
                     std::to_string(end_us) + ") us");
  }
  try {
    return apply_edit(compute_theory_features(excerpt(base, start_us, end_us)), edit, start_us, end_us);
  } catch (const std::invalid_argument& e) {
    throw ModelError(std::string("stretch_theory: ") + e.what());
  }
}

StyleLatent prior_style(std::uint64_t seed) {
  GenerationControls draw;
  draw.use_style = true;
  draw.creativity = 1.0f;                     // mean 0, sigma 1: the prior itself
  draw.seed = mix64(seed ^ 0x5052494f52ULL);  // apart from the seed's own creativity noise
  const torch::Tensor z = style_vector(StyleLatent{}, draw, torch::kCPU).contiguous();
  StyleLatent out;
  std::memcpy(out.mean.data(), z.data_ptr<float>(), sizeof(float) * kStyleDim);
  return out;
}

RegeneratedPiece regenerate(const ModelContext& model, std::span<const Token> content,
                            const StyleLatent& style, const GenerationControls& controls,
                            const Regeneration& regeneration, const std::atomic<bool>* cancel) {
  check_controls(controls, "regenerate");
  if (!(regeneration.strength >= 0.0f && regeneration.strength <= 1.0f)) {
    throw ModelError("regenerate: strength must be in [0, 1], got " + std::to_string(regeneration.strength));
  }
  if (regeneration.guide_edit && regeneration.edit.empty()) {
    throw ModelError("regenerate: guide_edit needs chords or components to edit");
  }
  check_tokens(content, "regenerate: content");
  if (!content.empty() && content.front() == tokens::kSos) content = content.subspan(1);
  if (!content.empty() && content.back() == tokens::kEos) content = content.first(content.size() - 1);

  const Performance base = tokens::decode(content);
  return translate_errors("regenerate", [&] {
    c10::InferenceMode inference;
    const ModelContext::Impl& impl = model.impl();
    TatumFlowNet net = impl.net;
    const std::int64_t window = std::min<std::int64_t>(impl.info.context_positions, kRegenerationWindow);
    const std::int64_t block_size = window / 2;

    RegeneratedPiece piece;
    piece.noise_time = std::llround(double(regeneration.strength) * double(impl.schedule.steps()));
    piece.denoising_steps =
        piece.noise_time == 0
            ? 0
            : std::max(1,
                       static_cast<int>(std::ceil(regeneration.strength * float(controls.diffusion_steps))));
    piece.tokens.reserve(content.size() + 1);
    piece.tokens.push_back(tokens::kSos);

    const torch::Tensor z = style_vector(style, controls, impl.device);
    const auto condition = [&](const TheoryFeatures& features, const torch::Tensor& style_z) {
      return net->content_condition(style_z,
                                    net->encode_theory(theory_tensor(features).to(impl.device)).fused);
    };
    TokenGrammar grammar(piece.tokens);
    TokenSampler sampler;
    std::vector<float> logits(tokens::kVocabSize);
    const SamplingOptions sampling{controls.temperature, controls.top_k, controls.top_p};
    Rng rng(mix64(controls.seed) ^ mix64(content.size() + 0x726567656eULL));

    for (std::size_t begin = 0; begin < content.size(); begin += static_cast<std::size_t>(block_size)) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        piece.cancelled = true;
        break;
      }
      const auto block = content.subspan(begin, std::min<std::size_t>(content.size() - begin, block_size));
      const std::int64_t start_us = tokens::end_time_us(content.first(begin));
      const std::int64_t end_us =
          std::max(tokens::end_time_us(content.first(begin + block.size())), start_us + tokens::kStepUs);
      const TheoryFeatures unedited =
          controls.theory ? *controls.theory : stretch_theory(base, start_us, end_us, {});
      const TheoryFeatures edited = apply_edit(unedited, regeneration.edit, start_us, end_us);

      const auto context_length = std::min<std::int64_t>(static_cast<std::int64_t>(piece.tokens.size()),
                                                         window - static_cast<std::int64_t>(block.size()));
      std::vector<Token> positions(piece.tokens.end() - context_length, piece.tokens.end());
      positions.insert(positions.end(), block.begin(), block.end());
      const auto clean = net->encode_latent(token_tensor(positions, impl.device).unsqueeze(0));
      const auto fresh = static_cast<std::int64_t>(block.size());

      torch::Tensor x0 = clean;
      if (piece.noise_time > 0) {
        LatentSampling request;
        request.clean = clean;
        request.noised = torch::arange(context_length + fresh,
                                       torch::TensorOptions().dtype(torch::kInt64).device(impl.device))
                             .ge(context_length)
                             .unsqueeze(0);
        request.content = condition(edited, z);
        if (regeneration.guide_edit) {
          request.unguided = condition(unedited, z);
        } else if (controls.use_style) {
          request.unguided = condition(edited, {});
        }
        request.guidance = controls.guidance;
        request.steps = piece.denoising_steps;
        request.sampler = controls.sampler == DiffusionSampler::kDdpm ? Sampler::kDdpm : Sampler::kDdim;
        request.start_time = piece.noise_time;
        request.keep_going = [&](int) {
          return cancel == nullptr || !cancel->load(std::memory_order_relaxed);
        };
        auto generator = at::make_generator<at::CPUGeneratorImpl>(rng.next());
        const SampledLatents sampled = sample_latents(net, impl.schedule, request, generator);
        if (sampled.stopped_early) {
          piece.cancelled = true;
          break;
        }
        x0 = sampled.x0;
      }

      const auto block_logits =
          net->readout(x0[0].narrow(0, context_length, fresh)).to(torch::kCPU).contiguous();
      for (std::int64_t i = 0; i < fresh; ++i) {
        std::memcpy(logits.data(), block_logits[i].data_ptr<float>(), logits.size() * sizeof(float));
        grammar.mask(logits);
        const Token token = sampler.sample(logits, sampling, rng);
        piece.tokens.push_back(token);
        grammar.push(token);
      }
      ++piece.blocks;
    }
    piece.performance = tokens::decode(piece.tokens);
    return piece;
  });
}

}  // namespace tatumflow::model
