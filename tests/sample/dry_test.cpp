// DryStep against a brute-force statement of the rule (every earlier position, every match
// length), on random contexts with small vocabularies so that repeats are common, and the
// properties users rely on: breakers end a match, short n-grams are free, greedy runs it.
#include "sample/dry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "sample/sampler.h"

namespace loom::sample {
namespace {

// For each token t: the longest k (<= tokens after the last breaker) such that the last k
// tokens of the window also occur ending right before an earlier position j with ctx[j] == t.
std::map<int32_t, int32_t> brute_force(const std::vector<int32_t>& ctx, int32_t last_n,
                                       const std::vector<int32_t>& breakers, int32_t allowed) {
  const int64_t n = static_cast<int64_t>(ctx.size());
  const int64_t start = last_n > 0 ? std::max<int64_t>(0, n - last_n) : 0;
  int64_t last_breaker = start - 1;
  for (int64_t i = start; i < n; ++i) {
    if (std::find(breakers.begin(), breakers.end(), ctx[static_cast<size_t>(i)]) !=
        breakers.end()) {
      last_breaker = i;
    }
  }
  const int64_t suffix = n - 1 - last_breaker;
  std::map<int32_t, int32_t> best;
  for (int64_t j = start + 1; j < n; ++j) {
    int64_t k = 0;
    while (k < suffix && j - 1 - k >= start &&
           ctx[static_cast<size_t>(j - 1 - k)] == ctx[static_cast<size_t>(n - 1 - k)]) {
      ++k;
    }
    if (k >= allowed) {
      int32_t& b = best[ctx[static_cast<size_t>(j)]];
      b = std::max(b, static_cast<int32_t>(k));
    }
  }
  return best;
}

TEST(Dry, MatchesBruteForceOnRandomContexts) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const int32_t vocab = 2 + trial % 7;
    const int32_t last_n = trial % 3 == 0 ? -1 : 5 + trial % 40;
    const int32_t allowed = 1 + trial % 3;
    auto breakers = std::make_shared<std::vector<int32_t>>();
    if (trial % 2) breakers->push_back(vocab - 1);
    std::vector<int32_t> ctx(static_cast<size_t>(1 + trial % 80));
    for (auto& t : ctx) t = std::uniform_int_distribution<int32_t>(0, vocab - 1)(rng);
    DryStep step(1.0f, 2.0f, allowed, last_n, breakers);
    const size_t split = ctx.size() / 3;
    step.accept_prompt(std::span(ctx).first(split));
    for (size_t i = split; i < ctx.size(); ++i) step.accept(ctx[i]);
    Candidates c(vocab);
    std::vector<float> zeros(static_cast<size_t>(vocab), 0.0f);
    c.fill(zeros);
    step.apply(c);
    const auto want = brute_force(ctx, last_n, *breakers, allowed);
    std::map<int32_t, int32_t> got(step.last_matches().begin(), step.last_matches().end());
    ASSERT_EQ(got, want) << "trial " << trial;
    for (int32_t t = 0; t < vocab; ++t) {
      auto it = want.find(t);
      const float expect = it == want.end() ? 0.0f : -std::pow(2.0f, float(it->second - allowed));
      EXPECT_FLOAT_EQ(c[static_cast<size_t>(t)].logit, expect) << "trial " << trial;
    }
  }
}

TEST(Dry, PenaltyGrowsWithTheRepeatAndBreakersReset) {
  // "a b c d a b c" -> d would repeat 3 tokens: 0.8 * 1.75^(3-2).
  auto breakers = std::make_shared<std::vector<int32_t>>(std::vector<int32_t>{9});
  DryStep step(0.8f, 1.75f, 2, -1, breakers);
  step.accept_prompt(std::vector<int32_t>{1, 2, 3, 4, 1, 2, 3});
  Candidates c(10);
  std::vector<float> zeros(10, 0.0f);
  c.fill(zeros);
  step.apply(c);
  EXPECT_FLOAT_EQ(c[4].logit, -0.8f * 1.75f);
  EXPECT_FLOAT_EQ(c[1].logit, 0.0f);
  // After a breaker only what follows it can repeat: "9 1" has one token, below allowed.
  step.accept(9);
  step.accept(1);
  c.fill(zeros);
  step.apply(c);
  for (size_t t = 0; t < 10; ++t) EXPECT_EQ(c[t].logit, 0.0f) << t;
}

TEST(Dry, GreedyRunsItAndItBreaksALoop) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.dry_multiplier = 0.8f;
  Sampler sampler(p, 4);
  EXPECT_EQ(sampler.active_steps(), std::vector<StepKind>{StepKind::kDry});
  // Token 0 is always the model's favourite by 1.0; after "0 0 0" repeating it costs more.
  const std::vector<float> logits{1.0f, 0.0f, -1.0f, -2.0f};
  std::vector<int32_t> out;
  for (int i = 0; i < 6; ++i) {
    const int32_t t = sampler.sample(logits);
    sampler.accept(t);
    out.push_back(t);
  }
  EXPECT_NE(out, std::vector<int32_t>(6, 0));
  EXPECT_EQ(out[0], 0);
}

TEST(Dry, ParamsAreValidated) {
  SamplingParams p;
  p.dry_multiplier = -1.0f;
  EXPECT_ANY_THROW(Sampler(p, 10));
  p = {};
  p.dry_base = 0.5f;
  EXPECT_ANY_THROW(Sampler(p, 10));
  p = {};
  p.dry_allowed_length = 0;
  EXPECT_ANY_THROW(Sampler(p, 10));
  p = {};
  p.dry_breakers = std::make_shared<std::vector<int32_t>>(std::vector<int32_t>{10});
  EXPECT_ANY_THROW(Sampler(p, 10));
}

}  // namespace
}  // namespace loom::sample
