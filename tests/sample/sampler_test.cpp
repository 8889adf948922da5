// The Sampler as a whole: greedy, seeded determinism, distribution of draws, chain order and
// parameter validation.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "sample/sampler.h"

namespace loom::sample {
namespace {

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// A fixed pseudo-random logit vector (no RNG from the library under test).
std::vector<float> varied_logits(size_t n, uint32_t salt) {
  std::vector<float> out(n);
  uint32_t x = 2463534242u ^ salt;
  for (float& l : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    l = static_cast<float>(x % 1000) / 250.0f;  // [0, 4)
  }
  return out;
}

std::vector<int32_t> run(Sampler& sampler, size_t steps, size_t vocab) {
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < steps; ++i) {
    const int32_t t = sampler.sample(varied_logits(vocab, static_cast<uint32_t>(i)));
    sampler.accept(t);
    tokens.push_back(t);
  }
  return tokens;
}

std::vector<double> frequencies(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) freq[static_cast<size_t>(sampler.sample(logits))] += 1.0;
  for (double& f : freq) f /= draws;
  return freq;
}

// Expects a loom::Error(kInvalidArgument) whose message contains every fragment.
void expect_invalid(const SamplingParams& params, std::initializer_list<std::string> fragments,
                    int32_t vocab = 10) {
  try {
    Sampler sampler(params, vocab);
    ADD_FAILURE() << "no error for " << *fragments.begin();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    for (const std::string& f : fragments) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
          << "message \"" << e.what() << "\" lacks \"" << f << "\"";
    }
  }
}

// --- greedy ----------------------------------------------------------------------------------

TEST(Greedy, PicksTheArgmaxAndTheLowestIdOnTies) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params, 5);
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f, 3.0f}), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{-1.0f, -2.0f, -1.0f, -5.0f, -INFINITY}), 0);
  EXPECT_TRUE(sampler.greedy());
}

TEST(Greedy, IgnoresTruncationEvenWhenItWouldDropTheArgmax) {
  // Typical-p 0.5 alone would drop token 0 (see steps_test); temperature 0 still picks it.
  SamplingParams params;
  params.temperature = 0.0f;
  params.typical_p = 0.5f;
  params.top_k = 2;
  params.min_p = 0.9f;
  Sampler sampler(params, 4);
  EXPECT_TRUE(sampler.active_steps().empty());
  EXPECT_EQ(sampler.sample(logits_of({0.4, 0.2, 0.2, 0.2})), 0);
}

TEST(Greedy, HonoursLogitBiasAndPenalties) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.logit_bias = {{2, 3.5f}};
  params.repetition_penalty = 1.5f;
  Sampler sampler(params, 3);
  EXPECT_EQ(sampler.active_steps(),
            (std::vector<StepKind>{StepKind::kPenalties, StepKind::kLogitBias}));
  const std::vector<float> logits = {2.0f, 1.9f, -1.0f};
  EXPECT_EQ(sampler.sample(logits), 2);  // -1 + 3.5 = 2.5
  sampler.accept(2);
  // Penalty first, then bias: -1 * 1.5 + 3.5 = 2.0 ties token 0, and the lower id wins.
  EXPECT_EQ(sampler.sample(logits), 0);
}

TEST(Greedy, NaNIsAnErrorNamingTheToken) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params, 3);
  try {
    sampler.sample(std::vector<float>{1.0f, 2.0f, NAN});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("token 2 is NaN"), std::string::npos);
  }
}

TEST(Greedy, AllMinusInfinityIsAnError) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params, 2);
  try {
    sampler.sample(std::vector<float>{-INFINITY, -INFINITY});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
  }
}

TEST(Penalties, RepetitionPenaltyChangesTheGreedyChoice) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 1.5f;
  Sampler sampler(params, 2);
  const std::vector<float> logits = {2.0f, 1.9f};
  EXPECT_EQ(sampler.sample(logits), 0);
  sampler.accept(0);
  EXPECT_EQ(sampler.sample(logits), 1);  // 2.0 / 1.5 = 1.33 < 1.9
  sampler.reset();
  EXPECT_EQ(sampler.sample(logits), 0);
}

TEST(Penalties, PresenceIgnoresPromptTokensRepetitionDoesNot) {
  const std::vector<float> logits = {2.0f, 1.9f};
  const std::vector<int32_t> prompt = {0};
  {
    SamplingParams params;
    params.temperature = 0.0f;
    params.presence_penalty = 1.0f;
    Sampler sampler(params, 2);
    sampler.accept_prompt(prompt);
    EXPECT_EQ(sampler.sample(logits), 0);  // OpenAI: only generated tokens count
    sampler.accept(0);
    EXPECT_EQ(sampler.sample(logits), 1);
  }
  {
    SamplingParams params;
    params.temperature = 0.0f;
    params.repetition_penalty = 1.5f;
    Sampler sampler(params, 2);
    sampler.accept_prompt(prompt);
    EXPECT_EQ(sampler.sample(logits), 1);
  }
}

TEST(Sampler, RejectsOutOfRangeTokensAndWrongLogitCounts) {
  Sampler sampler(SamplingParams{}, 3);
  EXPECT_THROW(sampler.accept(3), Error);
  EXPECT_THROW(sampler.accept(-1), Error);
  const std::vector<int32_t> prompt = {0, 7};
  EXPECT_THROW(sampler.accept_prompt(prompt), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{1.0f, 2.0f}), Error);
}

TEST(Penalties, OnlyTheLastNPromptTokensCount) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 2.0f;
  params.penalty_last_n = 2;
  Sampler sampler(params, 3);
  const std::vector<int32_t> prompt = {0, 1, 2};  // the window holds 1 and 2
  sampler.accept_prompt(prompt);
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 1.5f, 1.5f}), 0);
}

TEST(Sampler, TheHotPathReusesItsBuffer) {
  SamplingParams params;
  params.seed = 5;
  params.top_k = 40;
  params.top_p = 0.9f;
  params.repetition_penalty = 1.1f;
  params.frequency_penalty = 0.2f;
  Sampler sampler(params, 1000);
  const std::vector<float> logits(1000, 0.5f);
  sampler.sample(logits);
  const Candidate* buffer = sampler.candidates().entries().data();
  for (int i = 0; i < 100; ++i) sampler.accept(sampler.sample(logits));
  EXPECT_EQ(sampler.candidates().entries().data(), buffer);
}

// --- determinism -----------------------------------------------------------------------------

TEST(Determinism, SameSeedSameTokens) {
  SamplingParams params;
  params.seed = 1234;
  params.top_k = 50;
  params.top_p = 0.9f;
  params.temperature = 0.8f;
  params.frequency_penalty = 0.3f;
  Sampler a(params, 500);
  Sampler b(params, 500);
  EXPECT_EQ(run(a, 100, 500), run(b, 100, 500));
}

TEST(Determinism, DifferentSeedsDifferentTokens) {
  SamplingParams params;
  params.seed = 1;
  Sampler a(params, 500);
  params.seed = 2;
  Sampler b(params, 500);
  EXPECT_NE(run(a, 100, 500), run(b, 100, 500));
}

TEST(Determinism, ResetReplaysTheFirstRun) {
  SamplingParams params;
  params.seed = 99;
  params.repetition_penalty = 1.2f;
  Sampler sampler(params, 300);
  const std::vector<int32_t> first = run(sampler, 50, 300);
  sampler.reset();
  EXPECT_EQ(run(sampler, 50, 300), first);
}

TEST(Determinism, AnUnsetSeedIsReportedAndReplays) {
  Sampler a(SamplingParams{}, 300);
  SamplingParams params;
  params.seed = a.seed();
  Sampler b(params, 300);
  EXPECT_EQ(run(a, 50, 300), run(b, 50, 300));
}

TEST(Determinism, UniformUnitIsTheTop53Bits) {
  std::mt19937_64 rng(5);
  std::mt19937_64 copy(5);
  const double u = uniform_unit(rng);
  EXPECT_EQ(u, static_cast<double>(copy() >> 11) / 9007199254740992.0);
  EXPECT_GE(u, 0.0);
  EXPECT_LT(u, 1.0);
}

// --- distribution ----------------------------------------------------------------------------

constexpr int kDraws = 20000;
// Binomial standard deviation at p = 0.5 and 20000 draws is 0.0035; 0.015 is over 4 sigma.
constexpr double kTolerance = 0.015;

TEST(Distribution, DrawsMatchTheSoftmax) {
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  SamplingParams params;
  params.seed = 7;
  Sampler sampler(params, 4);
  const std::vector<double> freq = frequencies(sampler, logits_of(probs), kDraws);
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(freq[i], probs[i], kTolerance) << i;
}

TEST(Distribution, TemperatureScalesTheDistribution) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.0f};
  SamplingParams params;
  params.seed = 8;
  params.temperature = 2.0f;
  Sampler sampler(params, 3);
  const std::vector<double> freq = frequencies(sampler, logits, kDraws);
  const double z = std::exp(1.0) + std::exp(0.5) + 1.0;
  EXPECT_NEAR(freq[0], std::exp(1.0) / z, kTolerance);
  EXPECT_NEAR(freq[1], std::exp(0.5) / z, kTolerance);
  EXPECT_NEAR(freq[2], 1.0 / z, kTolerance);
}

TEST(Distribution, TruncatedTokensAreNeverDrawnAndTheRestRenormalise) {
  const std::vector<double> probs = {0.1, 0.4, 0.05, 0.3, 0.15};
  SamplingParams params;
  params.seed = 9;
  params.top_k = 2;  // keeps 0.4 and 0.3 -> 4/7 and 3/7
  Sampler sampler(params, 5);
  const std::vector<double> freq = frequencies(sampler, logits_of(probs), kDraws);
  EXPECT_EQ(freq[0] + freq[2] + freq[4], 0.0);
  EXPECT_NEAR(freq[1], 4.0 / 7.0, kTolerance);
  EXPECT_NEAR(freq[3], 3.0 / 7.0, kTolerance);
}

TEST(Distribution, MinusInfinityIsNeverDrawn) {
  SamplingParams params;
  params.seed = 10;
  Sampler sampler(params, 3);
  const std::vector<double> freq =
      frequencies(sampler, std::vector<float>{-INFINITY, 0.0f, -INFINITY}, 1000);
  EXPECT_EQ(freq[1], 1.0);
}

// --- chain order -----------------------------------------------------------------------------

TEST(ChainOrder, DefaultOrderIsDocumented) {
  SamplingParams params;
  params.repetition_penalty = 1.1f;
  params.logit_bias = {{0, 1.0f}};
  params.top_k = 5;
  params.typical_p = 0.9f;
  params.top_p = 0.9f;
  params.min_p = 0.05f;
  params.temperature = 0.7f;
  Sampler sampler(params, 10);
  EXPECT_EQ(sampler.active_steps(),
            (std::vector<StepKind>{StepKind::kPenalties, StepKind::kLogitBias, StepKind::kTopK,
                                   StepKind::kTypicalP, StepKind::kTopP, StepKind::kMinP,
                                   StepKind::kTemperature}));
}

TEST(ChainOrder, OffStepsAreNotBuilt) {
  Sampler sampler(SamplingParams{}, 10);
  EXPECT_TRUE(sampler.active_steps().empty());
}

TEST(ChainOrder, TemperatureBeforeTopPKeepsFewerTokens) {
  // probs 0.6, 0.3, 0.1 and top_p 0.7. Default (top_p, then temperature): 0.6 < 0.7 keeps two.
  // Temperature 0.5 first sharpens to 0.783, 0.196, 0.022: the first token alone reaches 0.7.
  const std::vector<float> logits = logits_of({0.6, 0.3, 0.1});
  SamplingParams params;
  params.seed = 1;
  params.top_p = 0.7f;
  params.temperature = 0.5f;
  Sampler default_order(params, 3);
  default_order.sample(logits);
  EXPECT_EQ(default_order.candidates().size(), 2u);

  params.steps = {"temperature", "top_p"};
  Sampler temperature_first(params, 3);
  EXPECT_EQ(temperature_first.active_steps(),
            (std::vector<StepKind>{StepKind::kTemperature, StepKind::kTopP}));
  temperature_first.sample(logits);
  EXPECT_EQ(temperature_first.candidates().size(), 1u);
  EXPECT_EQ(temperature_first.candidates()[0].id, 0);
}

TEST(ChainOrder, LogitBiasBeforeOrAfterTopK) {
  const std::vector<float> logits = {5.0f, 4.0f, 0.0f};
  SamplingParams params;
  params.seed = 1;
  params.top_k = 1;
  params.logit_bias = {{2, 10.0f}};
  Sampler bias_first(params, 3);  // default: the bias lifts token 2 to the top
  EXPECT_EQ(bias_first.sample(logits), 2);
  params.steps = {"top_k", "logit_bias"};
  Sampler top_k_first(params, 3);  // top_k already removed token 2
  EXPECT_EQ(top_k_first.sample(logits), 0);
}

TEST(ChainOrder, FinalCandidatesCarryProbabilities) {
  SamplingParams params;
  params.seed = 3;
  params.top_k = 2;
  Sampler sampler(params, 4);
  sampler.sample(logits_of({0.1, 0.6, 0.2, 0.1}));
  const Candidates& c = sampler.candidates();
  ASSERT_EQ(c.size(), 2u);
  ASSERT_TRUE(c.probs_valid());
  EXPECT_NEAR(c[0].prob, 0.75, 1e-6);
  EXPECT_NEAR(c[1].prob, 0.25, 1e-6);
}

// --- validation ------------------------------------------------------------------------------

TEST(Validation, EachFieldNamesItselfAndItsRange) {
  SamplingParams p;
  p.temperature = -0.1f;
  expect_invalid(p, {"temperature", "[0, 2]"});
  p.temperature = 2.5f;
  expect_invalid(p, {"temperature", "[0, 2]"});
  p.temperature = NAN;
  expect_invalid(p, {"temperature"});

  p = {};
  p.top_k = -1;
  expect_invalid(p, {"top_k", ">= 0"});
  p = {};
  p.top_p = 0.0f;
  expect_invalid(p, {"top_p", "(0, 1]"});
  p.top_p = 1.5f;
  expect_invalid(p, {"top_p", "(0, 1]"});
  p = {};
  p.min_p = -0.5f;
  expect_invalid(p, {"min_p", "[0, 1]"});
  p = {};
  p.typical_p = 0.0f;
  expect_invalid(p, {"typical_p", "(0, 1]"});
  p = {};
  p.repetition_penalty = 0.0f;
  expect_invalid(p, {"repetition_penalty", "(0, 10]"});
  p = {};
  p.penalty_last_n = -2;
  expect_invalid(p, {"penalty_last_n", ">= -1"});
  p = {};
  p.frequency_penalty = 2.5f;
  expect_invalid(p, {"frequency_penalty", "[-2, 2]"});
  p = {};
  p.presence_penalty = -3.0f;
  expect_invalid(p, {"presence_penalty", "[-2, 2]"});
  p = {};
  p.presence_penalty = INFINITY;
  expect_invalid(p, {"presence_penalty"});
}

TEST(Validation, LogitBiasIdsAndValues) {
  SamplingParams p;
  p.logit_bias = {{10, 1.0f}};
  expect_invalid(p, {"logit_bias", "token 10", "[0, 10)"});
  p.logit_bias = {{-1, 1.0f}};
  expect_invalid(p, {"logit_bias", "token -1"});
  p.logit_bias = {{3, 101.0f}};
  expect_invalid(p, {"logit_bias", "[-100, 100]"});
  p.logit_bias = {{3, -100.0f}, {4, 100.0f}};
  EXPECT_NO_THROW(Sampler(p, 10));
}

TEST(Validation, StepNames) {
  SamplingParams p;
  p.steps = {"top_k", "nucleus"};
  expect_invalid(p, {"unknown step \"nucleus\"", "top_p"});
  p.steps = {"top_k", "top_k"};
  expect_invalid(p, {"\"top_k\" is named twice"});
  p.steps = {"top_k"};
  p.top_p = 0.5f;
  expect_invalid(p, {"\"top_p\" is configured but not in steps"});
  p.top_p = 1.0f;
  EXPECT_NO_THROW(Sampler(p, 10));
  // Greedy needs no temperature step.
  p.temperature = 0.0f;
  EXPECT_NO_THROW(Sampler(p, 10));
}

TEST(Validation, VocabSize) {
  expect_invalid(SamplingParams{}, {"vocab_size"}, 0);
}

TEST(Validation, BoundaryValuesAreAccepted) {
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.typical_p = 1.0f;
  p.frequency_penalty = -2.0f;
  p.presence_penalty = 2.0f;
  p.penalty_last_n = -1;
  p.repetition_penalty = 10.0f;
  EXPECT_NO_THROW(Sampler(p, 10));
}

}  // namespace
}  // namespace loom::sample
