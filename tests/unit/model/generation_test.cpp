// SPDX-License-Identifier: GPL-3.0-or-later
// The public chunked-generation API (model_api.hpp) on a small random model:
// grammar, chunk length, seeded determinism, cache reuse, style guidance,
// cancellation, deadlines, bad requests, style encoding.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "../../support/model_fixtures.hpp"
#include "model/checkpoint.hpp"
#include "tatumflow/engine/model_api.hpp"
#include "tatumflow/engine/model_train.hpp"

namespace tatumflow::model {
namespace {

using tokens::Kind;
using tokens::Token;

class GenerationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new testing::TempDir("tf-generate");
    const auto path = directory_->path() / "model.tfc";
    torch::manual_seed(2);
    TatumFlowNet net(testing::tiny_model_config());
    {
      torch::NoGradGuard no_grad;
      for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.1);
    }
    write_checkpoint(path, {"model", 1, testing::tiny_model_config()},
                     [&](auto& archive) { write_tensors(archive, "model", net->named_parameters()); });
    model_ = ModelContext::load(path);
  }
  static void TearDownTestSuite() {
    model_.reset();
    delete directory_;
  }

  static std::vector<Token> prompt(int variant = 2) {
    return tokens::encode(testing::synthetic_performance(variant, 6.0), {.add_sos = true, .add_eos = false});
  }

  static GenerationControls controls(GenerationMode mode, std::uint64_t seed) {
    GenerationControls c;
    c.mode = mode;
    c.seed = seed;
    c.diffusion_steps = 4;
    return c;
  }

  static void expect_grammatical(const std::vector<Token>& context, const GeneratedChunk& chunk) {
    Kind previous = context.empty() ? Kind::Sos : tokens::kind_of(context.back());
    for (Token token : chunk.tokens) {
      const Kind kind = tokens::kind_of(token);
      EXPECT_TRUE(kind != Kind::Pad && kind != Kind::Sos && kind != Kind::Eos && kind != Kind::Mask &&
                  kind != Kind::NoteOff && kind != Kind::Invalid)
          << tokens::to_string(token);
      EXPECT_EQ(previous == Kind::NoteOn, kind == Kind::Duration)
          << "after " << int(previous) << ": " << tokens::to_string(token);
      if (previous == Kind::Velocity) {
        EXPECT_EQ(kind, Kind::NoteOn);
      }
      previous = kind;
    }
    for (const Note& note : chunk.notes) {
      EXPECT_GE(note.onset_us, 0);
      EXPECT_LE(note.onset_us, chunk.length_us);
    }
  }

  static testing::TempDir* directory_;
  static std::shared_ptr<const ModelContext> model_;
};

testing::TempDir* GenerationTest::directory_ = nullptr;
std::shared_ptr<const ModelContext> GenerationTest::model_;

TEST_F(GenerationTest, AutoregressiveChunkIsGrammaticalAndCoversTheChunk) {
  GenerationState state;
  const auto context = prompt();
  const GeneratedChunk chunk =
      generate_chunk(*model_, state, context, {}, controls(GenerationMode::kAutoregressive, 1), 2.0);
  EXPECT_FALSE(chunk.cancelled);
  EXPECT_FALSE(chunk.deadline_missed);
  EXPECT_EQ(chunk.start_us, tokens::end_time_us(context));
  EXPECT_GE(chunk.length_us, 2'000'000);
  EXPECT_FALSE(chunk.tokens.empty());
  expect_grammatical(context, chunk);
  std::vector<Token> all = context;
  all.insert(all.end(), chunk.tokens.begin(), chunk.tokens.end());
  EXPECT_EQ(tokens::end_time_us(all), chunk.start_us + chunk.length_us);
}

TEST_F(GenerationTest, SameSeedSameChunkOtherSeedOtherChunk) {
  const auto context = prompt();
  GenerationState a, b, c;
  const auto first =
      generate_chunk(*model_, a, context, {}, controls(GenerationMode::kAutoregressive, 5), 2.0);
  const auto second =
      generate_chunk(*model_, b, context, {}, controls(GenerationMode::kAutoregressive, 5), 2.0);
  const auto other =
      generate_chunk(*model_, c, context, {}, controls(GenerationMode::kAutoregressive, 6), 2.0);
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_NE(first.tokens, other.tokens);
}

TEST_F(GenerationTest, WarmCacheGivesTheColdResult) {
  std::vector<Token> context = prompt();
  GenerationState warm;
  const auto first =
      generate_chunk(*model_, warm, context, {}, controls(GenerationMode::kAutoregressive, 3), 1.0);
  context.insert(context.end(), first.tokens.begin(), first.tokens.end());
  const auto continued =
      generate_chunk(*model_, warm, context, {}, controls(GenerationMode::kAutoregressive, 3), 1.0);
  GenerationState cold;
  const auto fresh =
      generate_chunk(*model_, cold, context, {}, controls(GenerationMode::kAutoregressive, 3), 1.0);
  EXPECT_EQ(continued.tokens, fresh.tokens);
}

TEST_F(GenerationTest, ContextLongerThanTheWindowSlides) {
  std::vector<Token> context =
      tokens::encode(testing::synthetic_performance(4, 60.0), {.add_sos = true, .add_eos = false});
  ASSERT_GT(context.size(), 2U * static_cast<std::size_t>(testing::tiny_model_config().max_positions));
  GenerationState state;
  const auto chunk =
      generate_chunk(*model_, state, context, {}, controls(GenerationMode::kAutoregressive, 1), 3.0);
  EXPECT_GE(chunk.length_us, 3'000'000);
  expect_grammatical(context, chunk);
}

// Each session's chunk when generated alone, and all of them on threads of
// their own at once: the same tokens, in fewer forward passes when shared
// (which the CPU does not do unless asked).
TEST_F(GenerationTest, ConcurrentSessionsShareStepsAndKeepTheirTokens) {
  constexpr int kSessions = 4;
  const auto run = [&](const ModelContext& model, int session) {
    GenerationState state;
    return generate_chunk(model, state, prompt(session + 1), {},
                          controls(GenerationMode::kAutoregressive, 10 + session), 30.0);
  };
  std::vector<GeneratedChunk> expected;
  for (int session = 0; session < kSessions; ++session) expected.push_back(run(*model_, session));
  const auto concurrently = [&](const ModelContext& model) {
    std::vector<GeneratedChunk> got(kSessions);
    std::vector<std::thread> threads;
    for (int session = 0; session < kSessions; ++session)
      threads.emplace_back([&, session] { got[static_cast<std::size_t>(session)] = run(model, session); });
    for (std::thread& thread : threads) thread.join();
    return got;
  };

  const auto load = [&](StepSharing sharing) {
    return ModelContext::load(directory_->path() / "model.tfc", "cpu", {.step_sharing = sharing});
  };
  const auto shared_model = load(StepSharing::kShared);
  const auto separate_model = load(StepSharing::kSeparate);
  const std::vector<GeneratedChunk> shared = concurrently(*shared_model);
  const std::vector<GeneratedChunk> separate = concurrently(*separate_model);
  const std::vector<GeneratedChunk> automatic = concurrently(*model_);
  for (int session = 0; session < kSessions; ++session) {
    const auto i = static_cast<std::size_t>(session);
    ASSERT_GT(expected[i].tokens.size(), 40U);
    EXPECT_EQ(shared[i].tokens, expected[i].tokens) << "session " << session;
    EXPECT_EQ(separate[i].tokens, expected[i].tokens) << "session " << session;
    EXPECT_EQ(automatic[i].tokens, expected[i].tokens) << "session " << session;
  }
  const DecodeStats stats = shared_model->decode_stats();
  EXPECT_GT(stats.steps, 200U);
  // Four threads decoding a few hundred steps each always overlap somewhere.
  EXPECT_LT(stats.passes, stats.steps);
  EXPECT_GE(stats.widest_pass, 2);
  for (const ModelContext* unshared : {separate_model.get(), model_.get()}) {
    EXPECT_EQ(unshared->decode_stats().passes, unshared->decode_stats().steps);
    EXPECT_EQ(unshared->decode_stats().widest_pass, 1);
  }
}

TEST_F(GenerationTest, DiffusionChunkIsGrammaticalAndSeeded) {
  const auto context = prompt();
  GenerationState a, b;
  GenerationControls c = controls(GenerationMode::kDiffusion, 9);
  c.use_style = true;
  const StyleLatent style = encode_style(*model_, context);
  const auto first = generate_chunk(*model_, a, context, style, c, 2.0);
  const auto second = generate_chunk(*model_, b, context, style, c, 2.0);
  EXPECT_EQ(first.tokens, second.tokens);
  EXPECT_FALSE(first.tokens.empty());
  EXPECT_EQ(first.diffusion_steps_run, 4);
  expect_grammatical(context, first);

  c.sampler = DiffusionSampler::kDdpm;
  GenerationState d, e;
  const auto ancestral = generate_chunk(*model_, d, context, style, c, 2.0);
  EXPECT_EQ(ancestral.tokens, generate_chunk(*model_, e, context, style, c, 2.0).tokens);
  EXPECT_NE(ancestral.tokens, first.tokens);
  expect_grammatical(context, ancestral);
}

TEST_F(GenerationTest, TheoryConditioningChangesTheOutput) {
  const auto context = prompt();
  GenerationState a, b;
  GenerationControls c = controls(GenerationMode::kAutoregressive, 4);
  const auto plain = generate_chunk(*model_, a, context, {}, c, 2.0);
  auto theory = std::make_shared<TheoryFeatures>(theory_of(context));
  theory->harmony = harmony_from_chords("Dm7 G7 Cmaj7", 1.0);
  c.theory = theory;
  const auto edited = generate_chunk(*model_, b, context, {}, c, 2.0);
  EXPECT_NE(plain.tokens, edited.tokens);
}

// Autoregressive classifier-free guidance: 0 decodes as if unstyled, 1 as
// styled alone, more goes past the style; a warm cache keeps both streams.
TEST_F(GenerationTest, StyleGuidanceRunsFromUnstyledThroughStyled) {
  std::vector<Token> context = prompt();
  const StyleLatent style = encode_style(*model_, prompt(3));
  const auto chunk = [&](bool use_style, float guidance, GenerationState& state) {
    GenerationControls c = controls(GenerationMode::kAutoregressive, 8);
    c.use_style = use_style;
    c.guidance = guidance;
    return generate_chunk(*model_, state, context, style, c, 2.0).tokens;
  };
  GenerationState s1, s2, s3, s4, warm, cold;
  const auto unstyled = chunk(false, 1.0f, s1);
  const auto styled = chunk(true, 1.0f, s2);
  ASSERT_NE(unstyled, styled);
  EXPECT_EQ(chunk(true, 0.0f, s3), unstyled);
  const auto guided = chunk(true, 3.0f, s4);
  EXPECT_NE(guided, styled);
  EXPECT_NE(guided, unstyled);

  const auto first = chunk(true, 3.0f, warm);
  context.insert(context.end(), first.begin(), first.end());
  EXPECT_EQ(chunk(true, 3.0f, warm), chunk(true, 3.0f, cold));
}

TEST_F(GenerationTest, CancelAndDeadlineStopAtOnce) {
  const auto context = prompt();
  GenerationState state;
  const std::atomic<bool> cancel{true};
  const auto cancelled =
      generate_chunk(*model_, state, context, {}, controls(GenerationMode::kAutoregressive, 1), 2.0, &cancel);
  EXPECT_TRUE(cancelled.cancelled);
  EXPECT_TRUE(cancelled.tokens.empty());
  const auto late = generate_chunk(*model_, state, context, {}, controls(GenerationMode::kDiffusion, 1), 2.0,
                                   nullptr, std::chrono::steady_clock::now() - std::chrono::seconds(1));
  EXPECT_TRUE(late.deadline_missed);
  EXPECT_TRUE(late.tokens.empty());
}

TEST_F(GenerationTest, BadRequestsAreModelErrors) {
  GenerationState state;
  const auto context = prompt();
  GenerationControls bad = controls(GenerationMode::kAutoregressive, 1);
  bad.top_p = 0.0f;
  EXPECT_THROW((void)generate_chunk(*model_, state, context, {}, bad, 2.0), ModelError);
  EXPECT_THROW(
      (void)generate_chunk(*model_, state, context, {}, controls(GenerationMode::kAutoregressive, 1), 0.0),
      ModelError);
  const std::vector<Token> outside = {tokens::kSos, static_cast<Token>(tokens::kVocabSize)};
  EXPECT_THROW(
      (void)generate_chunk(*model_, state, outside, {}, controls(GenerationMode::kAutoregressive, 1), 1.0),
      ModelError);
  EXPECT_THROW((void)encode_style(*model_, {}), ModelError);
}

TEST_F(GenerationTest, StyleEncodingIsDeterministicAndDistinguishesPieces) {
  const StyleLatent a = encode_style(*model_, prompt(1));
  const StyleLatent again = encode_style(*model_, prompt(1));
  const StyleLatent b = encode_style(*model_, prompt(3));
  EXPECT_EQ(a.mean, again.mean);
  EXPECT_NE(a.mean, b.mean);
  const StyleLatent halfway = StyleLatent::mix(a, b, 0.5f);
  EXPECT_FLOAT_EQ(halfway.mean[0], 0.5f * (a.mean[0] + b.mean[0]));
}

// A checkpoint records its training window; generation never feeds the network
// a position past it (those rows of the position table were never trained).
// Poisoning those rows with NaN must change nothing.
TEST(GenerationWindow, PositionsPastTheTrainingWindowAreNeverUsed) {
  testing::TempDir directory("tf-generate-window");
  constexpr std::int64_t kWindowTokens = 48;
  const ModelConfig config = testing::tiny_model_config();
  ASSERT_GT(config.max_positions, 2 * kWindowTokens);
  torch::manual_seed(3);
  TatumFlowNet net(config);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : net->parameters()) parameter.normal_(0.0, 0.1);
  }
  const auto save = [&](const std::filesystem::path& path, std::int64_t window_tokens) {
    write_checkpoint(path, {"model", 1, config, window_tokens},
                     [&](auto& archive) { write_tensors(archive, "model", net->named_parameters()); });
  };
  save(directory.path() / "unrecorded.tfc", 0);
  save(directory.path() / "clean.tfc", kWindowTokens);
  {
    torch::NoGradGuard no_grad;
    net->named_parameters()["positions"]
        .narrow(0, kWindowTokens, config.max_positions - kWindowTokens)
        .fill_(NAN);
  }
  save(directory.path() / "poisoned.tfc", kWindowTokens);

  EXPECT_EQ(ModelContext::load(directory.path() / "unrecorded.tfc")->info().context_positions,
            config.max_positions);
  EXPECT_EQ(inspect_checkpoint(directory.path() / "clean.tfc").window_tokens, kWindowTokens);
  const auto clean = ModelContext::load(directory.path() / "clean.tfc");
  const auto poisoned = ModelContext::load(directory.path() / "poisoned.tfc");
  ASSERT_EQ(poisoned->info().context_positions, kWindowTokens);
  // An experiment may ask for more, up to the position table.
  EXPECT_EQ(
      ModelContext::load(directory.path() / "clean.tfc", "cpu", {.context_positions = 2 * kWindowTokens})
          ->info()
          .context_positions,
      2 * kWindowTokens);
  EXPECT_THROW((void)ModelContext::load(directory.path() / "clean.tfc", "cpu",
                                        {.context_positions = config.max_positions + 1}),
               ModelError);

  const std::vector<Token> context =
      tokens::encode(testing::synthetic_performance(4, 20.0), {.add_sos = true, .add_eos = false});
  ASSERT_GT(context.size(), 2U * static_cast<std::size_t>(kWindowTokens));
  for (const GenerationMode mode : {GenerationMode::kAutoregressive, GenerationMode::kDiffusion}) {
    GenerationControls controls;
    controls.mode = mode;
    controls.seed = 7;
    controls.diffusion_steps = 4;
    GenerationState a, b;
    const GeneratedChunk expected = generate_chunk(*clean, a, context, {}, controls, 3.0);
    const GeneratedChunk got = generate_chunk(*poisoned, b, context, {}, controls, 3.0);
    EXPECT_FALSE(expected.tokens.empty()) << to_string(mode);
    EXPECT_EQ(got.tokens, expected.tokens) << to_string(mode);
  }
}

}  // namespace
}  // namespace tatumflow::model
