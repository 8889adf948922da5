// Each step of the chain alone, on small examples computed by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/error.h"
#include "sample/candidates.h"
#include "sample/penalties.h"
#include "sample/steps.h"

namespace loom::sample {
namespace {

Candidates filled(const std::vector<float>& logits) {
  Candidates c(static_cast<int32_t>(logits.size()));
  c.fill(logits);
  return c;
}

std::vector<int32_t> ids(const Candidates& c) {
  std::vector<int32_t> out;
  for (const Candidate& e : c.entries()) out.push_back(e.id);
  return out;
}

// Logits whose softmax is exactly `probs` (up to float rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

TEST(Candidates, FillIsIdOrderedAndRejectsWrongSizeAndNaN) {
  Candidates c(3);
  c.fill(std::vector<float>{1, 2, 3});
  EXPECT_TRUE(c.id_ordered());
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2}));
  try {
    c.fill(std::vector<float>{1, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("got 2 logits"), std::string::npos);
  }
  try {
    c.fill(std::vector<float>{1, NAN, 3});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("token 1"), std::string::npos);
  }
}

TEST(Candidates, SoftmaxMatchesHandComputation) {
  Candidates c = filled({0.0f, std::log(3.0f), -INFINITY});
  c.softmax();
  EXPECT_NEAR(c[0].prob, 0.25, 1e-6);
  EXPECT_NEAR(c[1].prob, 0.75, 1e-6);
  EXPECT_EQ(c[2].prob, 0.0f);
}

TEST(Candidates, SoftmaxOfAllMinusInfinityIsAnError) {
  Candidates c = filled({-INFINITY, -INFINITY});
  EXPECT_THROW(c.softmax(), Error);
}

TEST(Candidates, SoftmaxWithPlusInfinityGivesTheMassToInfiniteTokens) {
  Candidates c = filled({1.0f, INFINITY, INFINITY});
  c.softmax();
  EXPECT_EQ(c[0].prob, 0.0f);
  EXPECT_FLOAT_EQ(c[1].prob, 0.5f);
  EXPECT_FLOAT_EQ(c[2].prob, 0.5f);
}

TEST(Candidates, SortPrefixSortsOnlyWhatIsAsked) {
  Candidates c = filled({0.1f, 0.9f, 0.5f, 0.7f, 0.3f});
  c.sort_prefix(2);
  EXPECT_EQ(c.sorted_prefix(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 3);
  c.sort_prefix(4);  // extends the prefix
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 2, 4, 0}));
}

// --- top-k -----------------------------------------------------------------------------------

TEST(TopK, KeepsTheKHighestInOrder) {
  Candidates c = filled({1.0f, 5.0f, 3.0f, 4.0f, 2.0f});
  TopKStep(3).apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 2}));
}

TEST(TopK, KeepsExactlyKWithTiesBrokenByLowerId) {
  // Tokens 1, 2 and 4 tie for the 2nd place; k = 2 keeps the best and the lowest tied id.
  Candidates c = filled({0.0f, 2.0f, 2.0f, 3.0f, 2.0f});
  TopKStep(2).apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{3, 1}));
  Candidates d = filled({0.0f, 2.0f, 2.0f, 3.0f, 2.0f});
  TopKStep(3).apply(d);
  EXPECT_EQ(ids(d), (std::vector<int32_t>{3, 1, 2}));
}

TEST(TopK, KAtLeastTheSizeKeepsEverythingUntouched) {
  Candidates c = filled({1.0f, 3.0f, 2.0f});
  TopKStep(3).apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 2}));
  TopKStep(100).apply(c);
  EXPECT_EQ(c.size(), 3u);
}

TEST(TopK, LargeVocabularyKeepsTheRightSet) {
  std::vector<float> logits(50000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 7919) % 50000);
  Candidates c = filled(logits);
  TopKStep(5).apply(c);
  ASSERT_EQ(c.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(c[i].logit, 49999.0f - static_cast<float>(i));
}

// --- top-p -----------------------------------------------------------------------------------

TEST(TopP, KeepsTheSmallestPrefixReachingP) {
  // probs 0.5, 0.25, 0.15, 0.1 (ids 2, 0, 3, 1)
  const std::vector<float> logits = logits_of({0.25, 0.1, 0.5, 0.15});
  {
    Candidates c = filled(logits);
    TopPStep(0.7f).apply(c);  // 0.5 < 0.7 <= 0.75
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 0}));
  }
  {
    Candidates c = filled(logits);
    TopPStep(0.8f).apply(c);  // 0.75 < 0.8 <= 0.9
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 0, 3}));
  }
  {
    Candidates c = filled(logits);
    TopPStep(0.3f).apply(c);  // the first token alone reaches it
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2}));
  }
  {
    Candidates c = filled(logits);
    TopPStep(0.95f).apply(c);
    EXPECT_EQ(c.size(), 4u);
  }
}

TEST(TopP, RenormalisesOverWhatEarlierStepsLeft) {
  // After top-k 2 the probs are 0.5/0.75 and 0.25/0.75: p = 0.6 keeps one token, p = 0.7 two.
  const std::vector<float> logits = logits_of({0.25, 0.1, 0.5, 0.15});
  Candidates c = filled(logits);
  TopKStep(2).apply(c);
  TopPStep(0.6f).apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{2}));
  Candidates d = filled(logits);
  TopKStep(2).apply(d);
  TopPStep(0.7f).apply(d);
  EXPECT_EQ(ids(d), (std::vector<int32_t>{2, 0}));
}

TEST(TopP, GrowsItsSortedChunkOverAFlatLargeVocabulary) {
  // 1000 equal tokens: p = 0.5 needs 500 of them, more than the first sorted chunk.
  Candidates c = filled(std::vector<float>(1000, 0.0f));
  TopPStep(0.5f).apply(c);
  EXPECT_GE(c.size(), 499u);
  EXPECT_LE(c.size(), 501u);
  for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i].id, static_cast<int32_t>(i));
}

// --- min-p -----------------------------------------------------------------------------------

TEST(MinP, KeepsTokensAtLeastMinPTimesTheBest) {
  // probs 0.5, 0.3, 0.15, 0.05; min_p 0.25 -> threshold 0.125 keeps 0.5, 0.3, 0.15.
  Candidates c = filled(logits_of({0.15, 0.5, 0.05, 0.3}));
  MinPStep(0.25f).apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1, 3}));  // order kept
  Candidates d = filled(logits_of({0.15, 0.5, 0.05, 0.3}));
  MinPStep(0.7f).apply(d);  // threshold 0.35
  EXPECT_EQ(ids(d), (std::vector<int32_t>{1}));
}

TEST(MinP, IsRelativeToTheMaxNotAbsolute) {
  // Flat distribution over 4: every p = 0.25 = p_max, so even min_p = 0.9 keeps all.
  Candidates c = filled({1.0f, 1.0f, 1.0f, 1.0f});
  MinPStep(0.9f).apply(c);
  EXPECT_EQ(c.size(), 4u);
}

// --- typical-p -------------------------------------------------------------------------------

TEST(TypicalP, KeepsTokensClosestToTheEntropy) {
  // probs 0.4, 0.3, 0.2, 0.1: H = 1.27985 nats. Surprisal minus H:
  //   0.4: |0.91629 - 1.27985| = 0.36356   0.3: |1.20397 - H| = 0.07588
  //   0.2: |1.60944 - H| = 0.32959         0.1: |2.30259 - H| = 1.02274
  // Ranking: 0.3, 0.2, 0.4, 0.1. Mass 0.45 -> {0.3, 0.2} (0.5); mass 0.6 -> adds 0.4 (0.9).
  const std::vector<float> logits = logits_of({0.1, 0.4, 0.3, 0.2});
  {
    Candidates c = filled(logits);
    TypicalPStep(0.45f, 4).apply(c);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 3}));
  }
  {
    Candidates c = filled(logits);
    TypicalPStep(0.6f, 4).apply(c);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2, 3, 1}));
  }
  {
    Candidates c = filled(logits);
    TypicalPStep(0.25f, 4).apply(c);  // the most typical token alone has 0.3 >= 0.25
    EXPECT_EQ(ids(c), (std::vector<int32_t>{2}));
  }
}

TEST(TypicalP, CanDropTheMostLikelyToken) {
  // probs 0.4, 0.2, 0.2, 0.2: H = 1.3322; the 0.2 tokens (surprisal 1.6094, off by 0.277) are
  // more typical than the 0.4 one (0.9163, off by 0.416), so mass 0.5 keeps the three 0.2s and
  // drops the most likely token: the method's point, and why greedy skips truncation.
  Candidates c = filled(logits_of({0.4, 0.2, 0.2, 0.2}));
  TypicalPStep(0.5f, 4).apply(c);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 2, 3}));
}

// --- large sets: the fast paths against a plain full sort ------------------------------------

// Logits with many exact ties (200 levels), spread like a model's: a few high, most low.
std::vector<float> tied_logits(size_t n, uint32_t salt) {
  std::vector<float> out(n);
  uint32_t x = 2463534242u ^ salt;
  for (float& l : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    const double u = static_cast<double>(x % 200) / 200.0;
    l = static_cast<float>(-4.0 + 14.0 * std::pow(u, 6.0));
  }
  return out;
}

// The reference: every candidate, fully sorted by the chain's ranking, with probabilities.
Candidates fully_sorted(const std::vector<float>& logits) {
  Candidates c = filled(logits);
  c.softmax();
  c.sort_all();
  return c;
}

TEST(LargeSets, TopKHeapAndSelectPathsMatchAFullSort) {
  const std::vector<float> logits = tied_logits(50000, 1);
  const Candidates reference = fully_sorted(logits);
  for (int32_t k : {1, 7, 40, 1024, 1025, 5000}) {  // <= 1024: heap; above: nth_element
    Candidates c = filled(logits);
    TopKStep(k).apply(c);
    ASSERT_EQ(c.size(), static_cast<size_t>(k));
    EXPECT_EQ(c.sorted_prefix(), static_cast<size_t>(k));
    for (size_t i = 0; i < c.size(); ++i) {
      ASSERT_EQ(c[i].id, reference[i].id) << "k " << k << " rank " << i;
    }
  }
}

TEST(LargeSets, TopPHistogramMatchesAFullSort) {
  for (uint32_t salt : {1u, 2u, 3u}) {
    const std::vector<float> logits = tied_logits(50000, salt);
    const Candidates reference = fully_sorted(logits);
    for (float p : {0.05f, 0.3f, 0.9f, 0.99f, 0.9999f}) {
      size_t expected = 0;
      double cumulative = 0.0;
      while (expected < reference.size() && cumulative < p)
        cumulative += reference[expected++].prob;
      Candidates c = filled(logits);
      TopPStep(p).apply(c);
      ASSERT_EQ(c.size(), expected) << "p " << p << " salt " << salt;
      for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i].id, reference[i].id);
    }
  }
}

TEST(LargeSets, TypicalPHistogramMatchesAFullSort) {
  const std::vector<float> logits = tied_logits(20000, 4);
  for (float mass : {0.2f, 0.9f, 0.999f}) {
    // Reference: score every token and sort them all by (score, ranking).
    Candidates all = filled(logits);
    all.softmax();
    double entropy = 0.0;
    for (const Candidate& e : all.entries()) {
      if (e.prob > 0.0f) entropy -= static_cast<double>(e.prob) * std::log(e.prob);
    }
    std::vector<std::pair<float, Candidate>> scored;
    for (const Candidate& e : all.entries()) {
      scored.push_back(
          {static_cast<float>(std::abs(-std::log(static_cast<double>(e.prob)) - entropy)), e});
    }
    std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
      return a.first < b.first || (a.first == b.first && ranks_before(a.second, b.second));
    });
    size_t expected = 0;
    double cumulative = 0.0;
    while (expected < scored.size() && cumulative < mass) {
      cumulative += scored[expected++].second.prob;
    }
    Candidates c = filled(logits);
    TypicalPStep(mass, 20000).apply(c);
    ASSERT_EQ(c.size(), expected) << mass;
    for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i].id, scored[i].second.id) << i;
  }
}

// --- temperature -----------------------------------------------------------------------------

TEST(Temperature, DividesLogitsAndSharpensOrFlattens) {
  Candidates c = filled({2.0f, 1.0f, 0.0f});
  TemperatureStep(0.5f).apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 4.0f);
  EXPECT_FLOAT_EQ(c[1].logit, 2.0f);
  c.softmax();
  // softmax([4, 2, 0]) = e^4, e^2, 1 over their sum
  const double z = std::exp(4.0) + std::exp(2.0) + 1.0;
  EXPECT_NEAR(c[0].prob, std::exp(4.0) / z, 1e-6);
  EXPECT_NEAR(c[2].prob, 1.0 / z, 1e-6);

  Candidates d = filled({2.0f, 1.0f, 0.0f});
  TemperatureStep(2.0f).apply(d);
  d.softmax();
  const double z2 = std::exp(1.0) + std::exp(0.5) + 1.0;
  EXPECT_NEAR(d[0].prob, std::exp(1.0) / z2, 1e-6);
}

TEST(Temperature, KeepsTheSortedPrefix) {
  Candidates c = filled({1.0f, 3.0f, 2.0f});
  c.sort_all();
  TemperatureStep(0.7f).apply(c);
  EXPECT_EQ(c.sorted_prefix(), 3u);
}

// --- logit bias ------------------------------------------------------------------------------

TEST(LogitBias, AddsTheBiasToTheNamedTokens) {
  Candidates c = filled({1.0f, 2.0f, 3.0f});
  LogitBiasStep({{0, 5.0f}, {2, -100.0f}}).apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 6.0f);
  EXPECT_FLOAT_EQ(c[1].logit, 2.0f);
  EXPECT_FLOAT_EQ(c[2].logit, -97.0f);
}

TEST(LogitBias, WorksOnAReducedSet) {
  Candidates c = filled({1.0f, 2.0f, 3.0f, 0.0f});
  TopKStep(2).apply(c);  // ids 2, 1
  LogitBiasStep({{1, 10.0f}, {3, 10.0f}}).apply(c);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].id, 1);
  EXPECT_FLOAT_EQ(c[1].logit, 12.0f);
  EXPECT_FLOAT_EQ(c[0].logit, 3.0f);
}

// --- penalties -------------------------------------------------------------------------------

TEST(Penalties, RepetitionDividesPositiveAndMultipliesNegative) {
  PenaltiesStep step(2.0f, 64, 0.0f, 0.0f);
  step.accept(0);
  step.accept(1);
  Candidates c = filled({3.0f, -1.5f, 4.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 1.5f);
  EXPECT_FLOAT_EQ(c[1].logit, -3.0f);
  EXPECT_FLOAT_EQ(c[2].logit, 4.0f);  // not seen
}

TEST(Penalties, RepetitionCountsOncePerTokenAndOnlyInTheWindow) {
  PenaltiesStep step(2.0f, 2, 0.0f, 0.0f);
  step.accept(0);
  step.accept(0);  // a repeated token is penalised once, not twice
  Candidates c = filled({8.0f, 8.0f, 8.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 4.0f);
  step.accept(1);
  step.accept(2);  // window is now [1, 2]: token 0 fell out
  Candidates d = filled({8.0f, 8.0f, 8.0f});
  step.apply(d);
  EXPECT_FLOAT_EQ(d[0].logit, 8.0f);
  EXPECT_FLOAT_EQ(d[1].logit, 4.0f);
  EXPECT_FLOAT_EQ(d[2].logit, 4.0f);
}

TEST(Penalties, RepetitionSeesPromptTokensButFrequencyDoesNot) {
  PenaltiesStep step(2.0f, -1, 0.5f, 0.25f);
  const std::vector<int32_t> prompt = {0, 0, 1};
  step.accept_prompt(prompt);
  Candidates c = filled({4.0f, 4.0f, 4.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 2.0f);  // repetition only: prompt tokens are not "generated"
  EXPECT_FLOAT_EQ(c[1].logit, 2.0f);
  EXPECT_FLOAT_EQ(c[2].logit, 4.0f);
}

TEST(Penalties, FrequencyAndPresenceFollowOpenAI) {
  PenaltiesStep step(1.0f, 64, 0.5f, 0.25f);
  for (int32_t t : {1, 1, 1, 2}) step.accept(t);
  Candidates c = filled({1.0f, 1.0f, 1.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 1.0f);
  EXPECT_FLOAT_EQ(c[1].logit, 1.0f - 3 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(c[2].logit, 1.0f - 1 * 0.5f - 0.25f);
}

TEST(Penalties, NegativeFrequencyAndPresenceEncourageRepeats) {
  PenaltiesStep step(1.0f, 64, -1.0f, -0.5f);
  step.accept(0);
  step.accept(0);
  Candidates c = filled({0.0f, 0.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 2.5f);
}

TEST(Penalties, RepetitionThenFrequencyOnTheSameToken) {
  PenaltiesStep step(2.0f, 64, 1.0f, 0.5f);
  step.accept(0);
  Candidates c = filled({3.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 3.0f / 2.0f - 1.0f - 0.5f);
}

TEST(Penalties, SameResultOnAReorderedSet) {
  PenaltiesStep step(2.0f, 64, 1.0f, 0.0f);
  step.accept(2);
  Candidates c = filled({1.0f, 2.0f, 3.0f});
  TopKStep(2).apply(c);  // ids 2, 1: no longer id-ordered
  step.apply(c);
  EXPECT_EQ(c[0].id, 2);
  EXPECT_FLOAT_EQ(c[0].logit, 0.5f);
  EXPECT_FLOAT_EQ(c[1].logit, 2.0f);
}

TEST(Penalties, ResetForgetsEverything) {
  PenaltiesStep step(2.0f, 64, 1.0f, 1.0f);
  step.accept(0);
  step.reset();
  Candidates c = filled({2.0f});
  step.apply(c);
  EXPECT_FLOAT_EQ(c[0].logit, 2.0f);
}

TEST(TokenCounts, CountsAndRemoves) {
  TokenCounts counts;
  counts.add(5);
  counts.add(2);
  counts.add(5);
  EXPECT_EQ(counts.count(5), 2);
  EXPECT_EQ(counts.count(2), 1);
  EXPECT_EQ(counts.count(3), 0);
  counts.remove(2);
  EXPECT_EQ(counts.count(2), 0);
  ASSERT_EQ(counts.items().size(), 1u);
  EXPECT_EQ(counts.items()[0].first, 5);
}

}  // namespace
}  // namespace loom::sample
