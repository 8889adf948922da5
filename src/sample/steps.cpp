#include "sample/steps.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace loom::sample {

LogitBiasStep::LogitBiasStep(const std::map<int32_t, float>& bias)
    : bias_(bias.begin(), bias.end()) {}  // std::map iterates in id order: bias_ is sorted

void LogitBiasStep::apply(Candidates& candidates) {
  if (bias_.empty()) return;
  if (candidates.id_ordered()) {
    for (const auto& [token, bias] : bias_) candidates[static_cast<size_t>(token)].logit += bias;
  } else {
    for (Candidate& c : candidates.entries()) {
      auto it = std::lower_bound(
          bias_.begin(), bias_.end(), c.id,
          [](const std::pair<int32_t, float>& e, int32_t id) { return e.first < id; });
      if (it != bias_.end() && it->first == c.id) c.logit += it->second;
    }
  }
  candidates.logits_changed(false);
}

TopKStep::TopKStep(int32_t k) : k_(static_cast<size_t>(k)) {
  LOOM_ASSERT(k > 0);
}

void TopKStep::apply(Candidates& candidates) {
  if (k_ >= candidates.size()) return;
  candidates.sort_prefix(k_);
  candidates.truncate(k_);
}

TopPStep::TopPStep(float p) : p_(p) {
  LOOM_ASSERT(p > 0.0f && p <= 1.0f);
}

void TopPStep::apply(Candidates& candidates) {
  if (p_ >= 1.0f || candidates.size() <= 1) return;
  candidates.softmax();
  // Sort only as far as the mass needs: a chunk of the best candidates at a time, doubling, so a
  // peaked distribution costs one nth_element over the set and a small sort.
  const double target = p_;
  double cumulative = 0.0;
  size_t i = 0;
  size_t chunk = 64;
  while (true) {
    candidates.sort_prefix(std::max(candidates.sorted_prefix(), i) + chunk);
    const size_t sorted = candidates.sorted_prefix();
    for (; i < sorted; ++i) {
      cumulative += candidates[i].prob;
      if (cumulative >= target) {
        candidates.truncate(i + 1);
        return;
      }
    }
    if (sorted == candidates.size()) return;  // rounding left the sum just under p: keep all
    chunk *= 2;
  }
}

MinPStep::MinPStep(float min_p) : min_p_(min_p) {
  LOOM_ASSERT(min_p >= 0.0f && min_p <= 1.0f);
}

void MinPStep::apply(Candidates& candidates) {
  if (min_p_ <= 0.0f || candidates.size() <= 1) return;
  // p_i >= min_p * p_max  <=>  exp(l_i - l_max) >= min_p  <=>  l_i >= l_max + log(min_p).
  const float max_logit = candidates[candidates.best_index()].logit;
  const float threshold = max_logit + std::log(min_p_);
  candidates.retain_if([threshold](const Candidate& c) { return c.logit >= threshold; });
}

TypicalPStep::TypicalPStep(float typical_p, int32_t vocab_size)
    : mass_(typical_p), score_by_id_(static_cast<size_t>(vocab_size)) {
  LOOM_ASSERT(typical_p > 0.0f && typical_p <= 1.0f);
}

void TypicalPStep::apply(Candidates& candidates) {
  if (mass_ >= 1.0f || candidates.size() <= 1) return;
  candidates.softmax();
  double entropy = 0.0;  // H = -sum p log p, over tokens with p > 0 (0 log 0 = 0)
  for (const Candidate& c : candidates.entries()) {
    if (c.prob > 0.0f) entropy -= static_cast<double>(c.prob) * std::log(c.prob);
  }
  for (const Candidate& c : candidates.entries()) {
    // A zero-probability token has infinite surprisal: it ranks last.
    score_by_id_[static_cast<size_t>(c.id)] =
        c.prob > 0.0f
            ? static_cast<float>(std::abs(-std::log(static_cast<double>(c.prob)) - entropy))
            : std::numeric_limits<float>::infinity();
  }
  std::span<Candidate> entries = candidates.entries();
  std::sort(entries.begin(), entries.end(), [this](const Candidate& a, const Candidate& b) {
    const float sa = score_by_id_[static_cast<size_t>(a.id)];
    const float sb = score_by_id_[static_cast<size_t>(b.id)];
    return sa < sb || (sa == sb && ranks_before(a, b));
  });
  candidates.order_changed();
  double cumulative = 0.0;
  for (size_t i = 0; i < entries.size(); ++i) {
    cumulative += entries[i].prob;
    if (cumulative >= mass_) {
      candidates.truncate(i + 1);
      return;
    }
  }
}

TemperatureStep::TemperatureStep(float temperature) : temperature_(temperature) {
  LOOM_ASSERT(temperature > 0.0f);
}

void TemperatureStep::apply(Candidates& candidates) {
  for (Candidate& c : candidates.entries()) c.logit /= temperature_;
  candidates.logits_changed(true);
}

}  // namespace loom::sample
