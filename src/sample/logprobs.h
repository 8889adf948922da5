// loom::sample logprobs — log-probabilities for the OpenAI `logprobs` / `top_logprobs` fields.
//
// They describe the model's own distribution: log-softmax of the *raw* logits, before penalties,
// logit_bias, truncation or temperature (what OpenAI reports). Nothing is sorted: one pass finds
// the log-sum-exp, one pass keeps the n best in a small insertion-sorted array (n <= ~20 in
// practice), so the cost is O(vocab) per token.
//
// Thread-safety: free functions are pure; TokenLogprobs output buffers are the caller's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace loom::sample {

struct TokenLogprob {
  int32_t token;
  float logprob;
};

// log(sum(exp(logits))), computed stably (max subtracted, summed in double). -inf if every logit
// is -inf.
double log_sum_exp(std::span<const float> logits);

// log-softmax of logits[token]. Throws loom::Error(kInvalidArgument) for a token out of range.
float token_logprob(std::span<const float> logits, int32_t token, double log_sum_exp_value);

// The min(n, logits.size()) tokens with the highest logits, best first; among equal logits the
// lower id first (the order greedy would choose). `out` is cleared and refilled; once its
// capacity is n it never allocates again.
void top_logprobs(std::span<const float> logits, size_t n, double log_sum_exp_value,
                  std::vector<TokenLogprob>& out);

}  // namespace loom::sample
