#include "sample/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace loom::sample {

double log_sum_exp(std::span<const float> logits) {
  float max_logit = -std::numeric_limits<float>::infinity();
  for (float l : logits) max_logit = std::max(max_logit, l);
  if (std::isinf(max_logit)) return max_logit;  // all -inf, or a +inf that owns all the mass
  double sum = 0.0;
  // Each term in float (every term is in (0, 1], so float exp loses nothing that matters),
  // summed in double: half the cost of a double exp over a 150k vocabulary.
  for (float l : logits) sum += std::exp(l - max_logit);
  return max_logit + std::log(sum);
}

float token_logprob(std::span<const float> logits, int32_t token, double log_sum_exp_value) {
  if (token < 0 || static_cast<size_t>(token) >= logits.size()) {
    fail(ErrorCode::kInvalidArgument, "logprobs: token {} is out of range [0, {})", token,
         logits.size());
  }
  return static_cast<float>(logits[static_cast<size_t>(token)] - log_sum_exp_value);
}

void top_logprobs(std::span<const float> logits, size_t n, double log_sum_exp_value,
                  std::vector<TokenLogprob>& out) {
  out.clear();
  n = std::min(n, logits.size());
  if (n == 0) return;
  // Keep `out` sorted best first, holding raw logits until the end. Ids arrive in ascending
  // order, so a later token only displaces on a strictly greater logit: ties keep the lower id.
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (out.size() == n) {
      if (!(l > out.back().logprob)) continue;
      out.pop_back();
    }
    auto pos = std::upper_bound(out.begin(), out.end(), l, [](float value, const TokenLogprob& e) {
      return value > e.logprob;
    });
    out.insert(pos, TokenLogprob{static_cast<int32_t>(i), l});
  }
  for (TokenLogprob& e : out) e.logprob = static_cast<float>(e.logprob - log_sum_exp_value);
}

}  // namespace loom::sample
