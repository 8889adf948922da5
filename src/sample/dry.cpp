#include "sample/dry.h"

#include <algorithm>
#include <cmath>

namespace loom::sample {

namespace {
// base ^ (len - allowed) past this exponent is a ban in effect; capping it keeps the float
// finite (an infinite penalty would make the token's logit -inf and could empty the set).
constexpr int32_t kMaxExponent = 40;
}  // namespace

DryStep::DryStep(float multiplier, float base, int32_t allowed_length, int32_t penalty_last_n,
                 std::shared_ptr<const std::vector<int32_t>> breakers)
    : multiplier_(multiplier),
      base_(base),
      allowed_(std::max(allowed_length, 1)),
      last_n_(penalty_last_n),
      breakers_(std::move(breakers)) {}

bool DryStep::is_breaker(int32_t token) const {
  return breakers_ && std::binary_search(breakers_->begin(), breakers_->end(), token);
}

void DryStep::push(int32_t token) {
  if (is_breaker(token)) last_breaker_ = static_cast<int64_t>(context_.size());
  context_.push_back(token);
}

void DryStep::accept_prompt(std::span<const int32_t> tokens) {
  for (const int32_t t : tokens) push(t);
}

void DryStep::accept(int32_t token) {
  push(token);
}

void DryStep::reset() {
  context_.clear();
  last_breaker_ = -1;
  matches_.clear();
}

void DryStep::apply(Candidates& candidates) {
  matches_.clear();
  const int64_t n = static_cast<int64_t>(context_.size());
  const int64_t start = last_n_ > 0 ? std::max<int64_t>(0, n - last_n_) : 0;
  // The suffix that may repeat: the tokens after the last breaker.
  const int64_t suffix = n - 1 - std::max(last_breaker_, start - 1);
  if (suffix < allowed_ || n - start < 2) return;
  // reversed_[i] = context[n - 1 - i]; z_[k] = length of the common prefix of reversed_ and
  // reversed_[k..], i.e. how many tokens before position n - k equal the context's last ones.
  const int64_t r = n - start;
  reversed_.resize(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i)
    reversed_[static_cast<size_t>(i)] = context_[static_cast<size_t>(n - 1 - i)];
  z_.assign(static_cast<size_t>(r), 0);
  int64_t left = 0, right = 0;  // [left, right): the rightmost match window found so far
  for (int64_t k = 1; k < r; ++k) {
    int64_t len = 0;
    if (k < right)
      len = std::min(right - k, static_cast<int64_t>(z_[static_cast<size_t>(k - left)]));
    while (k + len < r &&
           reversed_[static_cast<size_t>(len)] == reversed_[static_cast<size_t>(k + len)])
      ++len;
    z_[static_cast<size_t>(k)] = static_cast<int32_t>(len);
    if (k + len > right) {
      left = k;
      right = k + len;
    }
    // The token at n - k followed a copy of the last `len` tokens.
    const int64_t match = std::min(len, suffix);
    if (match >= allowed_) {
      matches_.emplace_back(reversed_[static_cast<size_t>(k - 1)], static_cast<int32_t>(match));
    }
  }
  if (matches_.empty()) return;
  // Keep the longest match per token.
  std::sort(matches_.begin(), matches_.end(), [](const auto& a, const auto& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  });
  matches_.erase(std::unique(matches_.begin(), matches_.end(),
                             [](const auto& a, const auto& b) { return a.first == b.first; }),
                 matches_.end());
  auto penalty = [&](int32_t len) {
    const int32_t e = std::min(len - allowed_, kMaxExponent);
    return multiplier_ * std::pow(base_, static_cast<float>(e));
  };
  if (candidates.id_ordered()) {
    for (const auto& [token, len] : matches_) {
      candidates[static_cast<size_t>(token)].logit -= penalty(len);
    }
  } else {
    for (Candidate& c : candidates.entries()) {
      auto it = std::lower_bound(matches_.begin(), matches_.end(), c.id,
                                 [](const auto& m, int32_t id) { return m.first < id; });
      if (it != matches_.end() && it->first == c.id) c.logit -= penalty(it->second);
    }
  }
  candidates.logits_changed(false);
}

}  // namespace loom::sample
