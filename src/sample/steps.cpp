#include "sample/steps.h"

#include <algorithm>
#include <array>
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
  if (k_ <= kHeapMaxK) heap_.reserve(k_);
}

void TopKStep::apply(Candidates& candidates) {
  if (k_ >= candidates.size()) return;
  if (candidates.sorted_prefix() >= k_ || k_ > kHeapMaxK) {
    candidates.sort_prefix(k_);
    candidates.truncate(k_);
    return;
  }
  // With ranks_before as the heap's "less", the front is the worst of the best k so far.
  heap_.clear();
  for (const Candidate& c : candidates.entries()) {
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), ranks_before);
    } else if (ranks_before(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), ranks_before);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), ranks_before);
    }
  }
  std::sort(heap_.begin(), heap_.end(), ranks_before);
  candidates.replace_with_sorted(heap_);
}

TopPStep::TopPStep(float p) : p_(p) {
  LOOM_ASSERT(p > 0.0f && p <= 1.0f);
}

void TopPStep::apply(Candidates& candidates) {
  if (p_ >= 1.0f || candidates.size() <= 1) return;
  candidates.softmax();
  const double target = p_;
  if (candidates.sorted_prefix() < candidates.size()) {
    // Histogram of mass by distance below the best logit, in 1/8-nat buckets (the last one
    // takes everything from 31.875 nats down, -inf included). The cut lies in the first bucket
    // where the running mass reaches p, so only tokens down to it need sorting.
    constexpr size_t kBuckets = 256;
    constexpr float kBucketsPerNat = 8.0f;
    constexpr float kSpan = static_cast<float>(kBuckets - 1) / kBucketsPerNat;
    std::array<double, kBuckets> mass{};
    float max_logit = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : candidates.entries()) max_logit = std::max(max_logit, c.logit);
    for (const Candidate& c : candidates.entries()) {
      const float distance = max_logit - c.logit;  // NaN only for +inf - +inf: last bucket
      const size_t bucket =
          distance < kSpan ? static_cast<size_t>(distance * kBucketsPerNat) : kBuckets - 1;
      mass[bucket] += c.prob;
    }
    double running = 0.0;
    size_t cut_bucket = kBuckets - 1;
    for (size_t b = 0; b < kBuckets; ++b) {
      running += mass[b];
      if (running >= target) {
        cut_bucket = b;
        break;
      }
    }
    if (cut_bucket + 2 < kBuckets) {
      // One bucket of slack absorbs rounding at bucket edges; the scan below is exact anyway.
      candidates.sort_prefix_above(max_logit - static_cast<float>(cut_bucket + 2) / kBucketsPerNat);
    } else {
      candidates.sort_all();
    }
  }
  double cumulative = 0.0;
  size_t i = 0;
  while (true) {
    const size_t sorted = candidates.sorted_prefix();
    for (; i < sorted; ++i) {
      cumulative += candidates[i].prob;
      if (cumulative >= target) {
        candidates.truncate(i + 1);
        return;
      }
    }
    // Summation-order rounding fell short at the histogram's edge, or p is within rounding of
    // 1: sort the rest and go on (keeping everything if even that does not reach p).
    if (sorted == candidates.size()) return;
    candidates.sort_all();
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
  // Score |-log p - H| per token, and a histogram of mass by score in 1/8-nat buckets (the last
  // takes everything from 31.875 up, p = 0 included) to find where the mass is reached without
  // sorting the whole set, as in TopPStep.
  constexpr size_t kBuckets = 256;
  constexpr float kBucketsPerNat = 8.0f;
  constexpr float kSpan = static_cast<float>(kBuckets - 1) / kBucketsPerNat;
  std::array<double, kBuckets> mass{};
  for (const Candidate& c : candidates.entries()) {
    // A zero-probability token has infinite surprisal: it ranks last.
    const float score =
        c.prob > 0.0f
            ? static_cast<float>(std::abs(-std::log(static_cast<double>(c.prob)) - entropy))
            : std::numeric_limits<float>::infinity();
    score_by_id_[static_cast<size_t>(c.id)] = score;
    mass[score < kSpan ? static_cast<size_t>(score * kBucketsPerNat) : kBuckets - 1] += c.prob;
  }
  double running = 0.0;
  size_t cut_bucket = kBuckets - 1;
  for (size_t b = 0; b < kBuckets; ++b) {
    running += mass[b];
    if (running >= mass_) {
      cut_bucket = b;
      break;
    }
  }
  const auto more_typical = [this](const Candidate& a, const Candidate& b) {
    const float sa = score_by_id_[static_cast<size_t>(a.id)];
    const float sb = score_by_id_[static_cast<size_t>(b.id)];
    return sa < sb || (sa == sb && ranks_before(a, b));
  };
  std::span<Candidate> entries = candidates.entries();
  auto sorted_end = entries.end();
  if (cut_bucket + 2 < kBuckets) {
    // One bucket of slack absorbs rounding at bucket edges; the scan below is exact anyway.
    const float threshold = static_cast<float>(cut_bucket + 2) / kBucketsPerNat;
    sorted_end = std::partition(entries.begin(), entries.end(), [&](const Candidate& c) {
      return score_by_id_[static_cast<size_t>(c.id)] < threshold;
    });
  }
  std::sort(entries.begin(), sorted_end, more_typical);
  candidates.order_changed();
  double cumulative = 0.0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries.begin() + static_cast<std::ptrdiff_t>(i) == sorted_end) {
      // Rounding fell short at the histogram's edge: everything left scores higher; sort it.
      std::sort(sorted_end, entries.end(), more_typical);
      sorted_end = entries.end();
    }
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
