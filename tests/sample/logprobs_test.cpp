// Logprobs against a direct log-softmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "sample/logprobs.h"
#include "sample/sampler.h"

namespace loom::sample {
namespace {

std::vector<double> direct_log_softmax(const std::vector<float>& logits) {
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  std::vector<double> out;
  for (float l : logits) out.push_back(l - std::log(sum));
  return out;
}

TEST(Logprobs, LogSumExpIsStableForLargeLogits) {
  const std::vector<float> logits = {1000.0f, 1000.0f};
  EXPECT_NEAR(log_sum_exp(logits), 1000.0 + std::log(2.0), 1e-9);
  const std::vector<float> all_masked = {-INFINITY, -INFINITY};
  EXPECT_EQ(log_sum_exp(all_masked), -INFINITY);
}

TEST(Logprobs, TopNMatchesAFullSortOfTheLogSoftmax) {
  std::vector<float> logits(2000);
  for (size_t i = 0; i < logits.size(); ++i) {
    logits[i] = static_cast<float>(std::sin(static_cast<double>(i) * 12.9898) * 6.0);
  }
  const std::vector<double> expected = direct_log_softmax(logits);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });

  std::vector<TokenLogprob> top;
  top_logprobs(logits, 20, log_sum_exp(logits), top);
  ASSERT_EQ(top.size(), 20u);
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].token, order[i]) << i;
    EXPECT_NEAR(top[i].logprob, expected[static_cast<size_t>(order[i])], 1e-5) << i;
  }
}

TEST(Logprobs, TiesListTheLowerIdFirstAndNIsClamped) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f};
  std::vector<TokenLogprob> top;
  top_logprobs(logits, 3, log_sum_exp(logits), top);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 1);
  EXPECT_EQ(top[1].token, 2);
  EXPECT_EQ(top[2].token, 3);
  top_logprobs(logits, 10, log_sum_exp(logits), top);
  EXPECT_EQ(top.size(), 4u);
  top_logprobs(logits, 0, log_sum_exp(logits), top);
  EXPECT_TRUE(top.empty());
}

TEST(Logprobs, SamplerReportsTheRawDistributionNotThePenalisedOne) {
  // Temperature, top_k and logit_bias change what is drawn, not the reported logprobs.
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.0f};
  SamplingParams params;
  params.seed = 4;
  params.temperature = 0.3f;
  params.top_k = 1;
  params.logit_bias = {{2, 50.0f}};
  Sampler sampler(params, 4);
  const int32_t token = sampler.sample(logits);
  EXPECT_EQ(token, 2);
  const std::vector<double> expected = direct_log_softmax(logits);
  const Logprobs lp = sampler.logprobs(logits, token, 2);
  EXPECT_NEAR(lp.logprob, expected[2], 1e-6);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].token, 1);
  EXPECT_NEAR(lp.top[0].logprob, expected[1], 1e-6);
  EXPECT_EQ(lp.top[1].token, 3);
  EXPECT_NEAR(lp.top[1].logprob, expected[3], 1e-6);
  EXPECT_THROW(sampler.logprobs(logits, 4, 1), Error);
}

}  // namespace
}  // namespace loom::sample
