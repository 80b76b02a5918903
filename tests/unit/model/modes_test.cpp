// SPDX-License-Identifier: GPL-3.0-or-later
// The re-generation modes (model_modes.hpp: transfer, improvise, edit) on two
// tiny models made here: a random one, and a "trusting" one whose readout was
// trained to decode clean latents and whose denoiser predicts zero noise, so
// it keeps whatever signal the noised latents still hold. On the trusting model
// the share of content kept must fall as the strength rises, which tests the
// SDEdit noise level end to end without a trained denoiser.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../../support/midi_checks.hpp"
#include "../../support/model_fixtures.hpp"
#include "model/checkpoint.hpp"
#include "tatumflow/engine/model_modes.hpp"
#include "tatumflow/protocol/smf.hpp"

namespace tatumflow::model {
namespace {

using tokens::Token;

// Trains the token embedding, latent encoder and readout until latents decode
// back to their tokens, also with some noise added (up to 60 % of the
// variance), as a denoiser's output would have; returns the clean accuracy.
double train_readout(TatumFlowNet& net) {
  std::vector<std::int64_t> values;
  for (int variant = 0; variant < 7; ++variant) {
    const auto piece = tokens::encode(testing::synthetic_performance(variant, 12.0));
    values.insert(values.end(), piece.begin(), piece.end());
  }
  const auto ids = torch::tensor(values, torch::kInt64).unsqueeze(0);
  const std::int64_t latent = net->config().latent;
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    const auto clean = net->encode_latent(ids);
    const auto noise_share = torch::rand({1, ids.size(1), 1}) * 0.6;
    const auto noised = torch::layer_norm(
        torch::sqrt(1 - noise_share) * clean + torch::sqrt(noise_share) * torch::randn_like(clean), {latent});
    const auto logits = net->readout(noised);
    torch::nn::functional::cross_entropy(logits.view({-1, tokens::kVocabSize}), ids.view({-1})).backward();
    optimizer.step();
  }
  torch::NoGradGuard no_grad;
  const auto predicted = net->readout(net->encode_latent(ids)).argmax(-1);
  return predicted.eq(ids).to(torch::kFloat64).mean().item<double>();
}

Regeneration with_strength(float strength) {
  Regeneration regeneration;
  regeneration.strength = strength;
  return regeneration;
}

// Share of positions where two token sequences agree.
double agreement(std::span<const Token> a, std::span<const Token> b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) same += a[i] == b[i] ? 1 : 0;
  return double(same) / double(std::max<std::size_t>(n, 1));
}

// Cosine between a pitch-class histogram (harmony 0..11) and a set of pitch classes.
double pitch_class_match(const TheoryFeatures& features, std::initializer_list<int> classes) {
  double dot = 0, norm = 0;
  for (int pc = 0; pc < 12; ++pc) {
    const double h = features.harmony[harmony_index::kPitchClass + static_cast<std::size_t>(pc)];
    norm += h * h;
    if (std::find(classes.begin(), classes.end(), pc) != classes.end()) dot += h;
  }
  return norm > 0 ? dot / std::sqrt(norm * double(classes.size())) : 0.0;
}

class ModesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new testing::TempDir("tf-modes");
    ModelConfig config = testing::tiny_model_config();
    torch::manual_seed(2);
    TatumFlowNet random_net(config);
    {
      torch::NoGradGuard no_grad;
      for (auto& parameter : random_net->parameters()) parameter.normal_(0.0, 0.1);
    }
    random_ = save_and_load(random_net, config, "random.tfc");
  }
  static void TearDownTestSuite() {
    random_.reset();
    trusting_.reset();
    delete directory_;
  }

  // Made on first use: training its readout takes seconds, and ctest runs each test on its own.
  static const ModelContext& trusting() {
    if (!trusting_) {
      ModelConfig config = testing::tiny_model_config();
      config.prediction = Prediction::kEps;
      torch::manual_seed(3);
      TatumFlowNet net(config);
      readout_accuracy_ = train_readout(net);
      {
        torch::NoGradGuard no_grad;
        for (auto& item : net->named_parameters()) {
          if (item.key().starts_with("latent_head.")) item.value().zero_();
        }
      }
      trusting_ = save_and_load(net, config, "trusting.tfc");
    }
    return *trusting_;
  }

  static std::shared_ptr<const ModelContext> save_and_load(TatumFlowNet& net, const ModelConfig& config,
                                                           const std::string& name) {
    const auto path = directory_->path() / name;
    write_checkpoint(path, {"model", 1, config},
                     [&](auto& archive) { write_tensors(archive, "model", net->named_parameters()); });
    return ModelContext::load(path);
  }

  static std::vector<Token> content(int variant = 2, double seconds = 12.0) {
    return tokens::encode(testing::synthetic_performance(variant, seconds),
                          {.add_sos = true, .add_eos = false});
  }

  static GenerationControls controls(std::uint64_t seed) {
    GenerationControls c;
    c.seed = seed;
    c.diffusion_steps = 8;
    c.use_style = true;
    return c;
  }

  static RegeneratedPiece run(const ModelContext& model, float strength, std::uint64_t seed,
                              const TheoryEdit& edit = {}, bool guide_edit = false) {
    const auto piece = content();
    Regeneration regeneration = with_strength(strength);
    regeneration.edit = edit;
    regeneration.guide_edit = guide_edit;
    return regenerate(model, piece, encode_style(model, content(5)), controls(seed), regeneration);
  }

  static testing::TempDir* directory_;
  static std::shared_ptr<const ModelContext> random_;
  static std::shared_ptr<const ModelContext> trusting_;
  static double readout_accuracy_;
};

testing::TempDir* ModesTest::directory_ = nullptr;
std::shared_ptr<const ModelContext> ModesTest::random_;
std::shared_ptr<const ModelContext> ModesTest::trusting_;
double ModesTest::readout_accuracy_ = 0.0;

TEST_F(ModesTest, OneTokenPerContentPositionInBlocks) {
  const auto piece = content();
  const RegeneratedPiece out = run(*random_, 0.7f, 1);
  ASSERT_EQ(out.tokens.size(), piece.size());
  EXPECT_EQ(out.tokens.front(), tokens::kSos);
  // The tiny model's 160 positions give blocks of 80.
  EXPECT_EQ(out.blocks, static_cast<int>((piece.size() - 1 + 79) / 80));
  EXPECT_GT(out.blocks, 1);
  EXPECT_EQ(out.denoising_steps, 6);  // ceil(0.7 * 8)
  EXPECT_EQ(out.noise_time, 70);      // of T = 100
  EXPECT_FALSE(out.cancelled);
  EXPECT_EQ(out.performance.notes, tokens::decode(out.tokens).notes);
}

TEST_F(ModesTest, SameSeedSameFileOtherSeedOtherMusic) {
  for (const float strength : {0.4f, 1.0f}) {
    const RegeneratedPiece a = run(*random_, strength, 11);
    const RegeneratedPiece b = run(*random_, strength, 11);
    const RegeneratedPiece c = run(*random_, strength, 12);
    EXPECT_EQ(a.tokens, b.tokens) << "strength " << strength;
    EXPECT_EQ(encode_smf(a.performance), encode_smf(b.performance)) << "strength " << strength;
    EXPECT_NE(a.tokens, c.tokens) << "strength " << strength;
  }
}

TEST_F(ModesTest, StrengthSetsHowMuchOfTheContentIsKept) {
  const ModelContext& model = trusting();
  ASSERT_GT(readout_accuracy_, 0.99) << "the trusting model's readout did not learn its tokens";
  const auto piece = content();
  std::vector<double> kept;
  for (const float strength : {0.0f, 0.3f, 0.6f, 1.0f}) {
    kept.push_back(agreement(run(model, strength, 4).tokens, piece));
  }
  EXPECT_GT(kept[0], 0.95);
  for (std::size_t i = 1; i < kept.size(); ++i) {
    EXPECT_LT(kept[i], kept[i - 1]) << "strength step " << i;
  }
  EXPECT_LT(kept[3], 0.5);
  EXPECT_GT(kept[0] - kept[3], 0.5);
}

TEST_F(ModesTest, ImprovisedVariationsDifferFromEachOtherAndKeepMoreAtLowCreativity) {
  // improvise = regenerate with one seed per variation and the style drawn around the base's.
  const auto base = content();
  const ModelContext& model = trusting();
  const StyleLatent style = encode_style(model, base);
  const auto variation = [&](float creativity, std::uint64_t seed) {
    GenerationControls c = controls(seed);
    c.creativity = creativity;
    return regenerate(model, base, style, c, with_strength(0.1f + 0.8f * creativity)).tokens;
  };
  const auto first = variation(0.4f, 1);
  const auto second = variation(0.4f, 2);
  EXPECT_NE(first, second);
  EXPECT_GT(agreement(variation(0.1f, 1), base), agreement(variation(0.9f, 1), base));
}

TEST_F(ModesTest, OutputIsValidMidiWithNoHangingNotes) {
  for (const float strength : {0.0f, 0.5f, 1.0f}) {
    const RegeneratedPiece out = run(*random_, strength, 7);
    ASSERT_FALSE(out.performance.notes.empty());
    const auto file = encode_smf(out.performance);
    EXPECT_EQ(parse_smf(file).notes.size(), out.performance.notes.size());
    EXPECT_EQ(testing::closed_notes(file), static_cast<int>(out.performance.notes.size()))
        << "strength " << strength;
  }
}

TEST_F(ModesTest, ChordEditConditionsEachStretchOnTheChordsSoundingThen) {
  const Performance base = tokens::decode(content(2, 12.0));
  TheoryEdit edit;
  edit.chords = "F#maj7 B7";
  edit.seconds_per_chord = 2.0;
  const TheoryFeatures plain = stretch_theory(base, 0, 4'000'000, {});
  const TheoryFeatures both = stretch_theory(base, 0, 4'000'000, edit);
  EXPECT_EQ(both.harmony, harmony_from_chords("F#maj7 B7", 2.0));
  // The progression repeats: 4-6 s is F#maj7 again, 6.5-7.5 s inside B7.
  EXPECT_EQ(stretch_theory(base, 4'000'000, 6'000'000, edit).harmony, harmony_from_chords("F#maj7", 2.0));
  EXPECT_EQ(stretch_theory(base, 6'500'000, 7'500'000, edit).harmony, harmony_from_chords("B7", 2.0));
  // Only the harmony moves, and toward the chord tones (F# A# C# E F B D#).
  EXPECT_EQ(both.melody, plain.melody);
  EXPECT_EQ(both.rhythm, plain.rhythm);
  EXPECT_EQ(both.dynamics, plain.dynamics);
  const std::initializer_list<int> chord_tones = {6, 10, 1, 5, 11, 3};
  EXPECT_GT(pitch_class_match(both, chord_tones), pitch_class_match(plain, chord_tones) + 0.3);
}

TEST_F(ModesTest, ComponentEditTakesOnlyThatComponentFromTheSource) {
  const Performance base = tokens::decode(content(2, 12.0));
  auto source =
      std::make_shared<TheoryFeatures>(compute_theory_features(testing::synthetic_performance(6, 8.0)));
  TheoryEdit edit;
  edit.source = source;
  edit.from_source[static_cast<std::size_t>(TheoryComponent::kMelody)] = true;
  const TheoryFeatures plain = stretch_theory(base, 0, 5'000'000, {});
  const TheoryFeatures edited = stretch_theory(base, 0, 5'000'000, edit);
  EXPECT_EQ(edited.melody, source->melody);
  EXPECT_NE(edited.melody, plain.melody);
  EXPECT_EQ(edited.harmony, plain.harmony);
  EXPECT_EQ(edited.rhythm, plain.rhythm);
}

TEST_F(ModesTest, StretchKeepsAPedalHeldIntoIt) {
  Performance held = testing::synthetic_performance(1, 10.0);
  held.pedals = {{0, true, 0}, {9'000'000, false, 0}};
  const TheoryFeatures middle = stretch_theory(held, 3'000'000, 6'000'000, {});
  EXPECT_GT(middle.dynamics[63], 0.9f);  // share of the span with the pedal down
}

TEST_F(ModesTest, EditsReachTheModel) {
  TheoryEdit chords;
  chords.chords = "F#maj7 B7";
  const RegeneratedPiece plain = run(*random_, 0.8f, 5);
  const RegeneratedPiece edited = run(*random_, 0.8f, 5, chords);
  const RegeneratedPiece pushed = run(*random_, 0.8f, 5, chords, true);
  EXPECT_NE(plain.tokens, edited.tokens);
  EXPECT_NE(edited.tokens, pushed.tokens);
}

TEST_F(ModesTest, PriorStylesAreSeededStandardNormalDraws) {
  const StyleLatent a = prior_style(1);
  EXPECT_EQ(a.mean, prior_style(1).mean);
  EXPECT_NE(a.mean, prior_style(2).mean);
  double sum = 0, squares = 0;
  for (float value : a.mean) {
    sum += value;
    squares += double(value) * value;
  }
  const double mean = sum / kStyleDim;
  EXPECT_LT(std::abs(mean), 0.5);
  EXPECT_NEAR(std::sqrt(squares / kStyleDim - mean * mean), 1.0, 0.35);
  EXPECT_EQ(a.log_variance, StyleLatent{}.log_variance);
}

TEST_F(ModesTest, CancelStopsBeforeTheFirstBlock) {
  const std::atomic<bool> cancel{true};
  const RegeneratedPiece out = regenerate(*random_, content(), {}, controls(1), {}, &cancel);
  EXPECT_TRUE(out.cancelled);
  EXPECT_EQ(out.tokens, std::vector<Token>{tokens::kSos});
  EXPECT_EQ(out.blocks, 0);
}

TEST_F(ModesTest, BadRequestsAreModelErrors) {
  const auto piece = content();
  EXPECT_THROW((void)regenerate(*random_, piece, {}, controls(1), with_strength(1.5f)), ModelError);
  Regeneration unedited_guide;
  unedited_guide.guide_edit = true;
  EXPECT_THROW((void)regenerate(*random_, piece, {}, controls(1), unedited_guide), ModelError);
  Regeneration bad_chord;
  bad_chord.edit.chords = "Dm7 Xq7";
  EXPECT_THROW((void)regenerate(*random_, piece, {}, controls(1), bad_chord), ModelError);
  Regeneration no_source;
  no_source.edit.from_source[0] = true;
  EXPECT_THROW((void)regenerate(*random_, piece, {}, controls(1), no_source), ModelError);
  const std::vector<Token> outside = {tokens::kSos, static_cast<Token>(tokens::kVocabSize)};
  EXPECT_THROW((void)regenerate(*random_, outside, {}, controls(1), {}), ModelError);
  EXPECT_THROW((void)parse_theory_component("bass"), ModelError);
  EXPECT_EQ(parse_theory_component("rhythm"), TheoryComponent::kRhythm);
  EXPECT_STREQ(to_string(TheoryComponent::kDynamics), "dynamics");
  EXPECT_THROW((void)stretch_theory(tokens::decode(piece), 5, 5, {}), ModelError);
}

}  // namespace
}  // namespace tatumflow::model
