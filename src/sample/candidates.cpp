#include "sample/candidates.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace loom::sample {

Candidates::Candidates(int32_t vocab_size) : vocab_size_(vocab_size) {
  if (vocab_size <= 0) {
    fail(ErrorCode::kInvalidArgument, "vocab_size = {} must be > 0", vocab_size);
  }
  entries_.reserve(static_cast<size_t>(vocab_size));
}

void Candidates::fill(std::span<const float> logits) {
  if (logits.size() != static_cast<size_t>(vocab_size_)) {
    fail(ErrorCode::kInvalidArgument, "sampler: got {} logits, but the vocabulary size is {}",
         logits.size(), vocab_size_);
  }
  // Capacity was reserved at construction: resize never reallocates here.
  entries_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    const float logit = logits[i];
    if (std::isnan(logit)) {
      fail(ErrorCode::kInternal, "sampler: the logit of token {} is NaN", i);
    }
    entries_[i] = Candidate{static_cast<int32_t>(i), logit, 0.0f};
  }
  sorted_prefix_ = 0;
  id_ordered_ = true;
  probs_valid_ = false;
}

void Candidates::fill_allowed(std::span<const float> logits, std::span<const uint64_t> allowed) {
  if (logits.size() != static_cast<size_t>(vocab_size_)) {
    fail(ErrorCode::kInvalidArgument, "sampler: got {} logits, but the vocabulary size is {}",
         logits.size(), vocab_size_);
  }
  entries_.clear();
  const size_t words = std::min(allowed.size(), (logits.size() + 63) / 64);
  for (size_t w = 0; w < words; ++w) {
    for (uint64_t bits = allowed[w]; bits;) {
      const size_t i = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      if (i >= logits.size()) break;
      if (std::isnan(logits[i])) {
        fail(ErrorCode::kInternal, "sampler: the logit of token {} is NaN", i);
      }
      entries_.push_back(Candidate{static_cast<int32_t>(i), logits[i], 0.0f});
    }
  }
  sorted_prefix_ = 0;
  id_ordered_ = entries_.size() == logits.size();
  probs_valid_ = false;
}

void Candidates::assign(std::span<const Candidate> entries) {
  entries_.clear();
  for (const Candidate& c : entries) {
    if (c.id < 0 || c.id >= vocab_size_ || std::isnan(c.logit)) {
      fail(ErrorCode::kInvalidArgument, "candidates: bad entry (id {}, logit {})", c.id, c.logit);
    }
    entries_.push_back(c);
  }
  sorted_prefix_ = 0;
  id_ordered_ = entries_.size() == static_cast<size_t>(vocab_size_);
  for (size_t i = 0; id_ordered_ && i < entries_.size(); ++i) {
    id_ordered_ = entries_[i].id == static_cast<int32_t>(i);
  }
  probs_valid_ = false;
}

void Candidates::logits_changed(bool ranking_kept) {
  probs_valid_ = false;
  if (!ranking_kept) sorted_prefix_ = 0;
}

void Candidates::sort_prefix(size_t n) {
  n = std::min(n, entries_.size());
  if (n <= sorted_prefix_) return;
  const auto begin = entries_.begin() + static_cast<std::ptrdiff_t>(sorted_prefix_);
  const auto mid = entries_.begin() + static_cast<std::ptrdiff_t>(n);
  // Everything after the current prefix ranks below it, so selecting and sorting only the next
  // n - prefix entries extends the prefix: O(size) + O(k log k) rather than a full sort.
  if (mid != entries_.end()) std::nth_element(begin, mid, entries_.end(), ranks_before);
  std::sort(begin, mid, ranks_before);
  sorted_prefix_ = n;
  // Conservative: the fast by-id path of penalties/logit_bias is only an optimisation.
  id_ordered_ = false;
}

void Candidates::sort_prefix_above(float threshold) {
  const auto begin = entries_.begin() + static_cast<std::ptrdiff_t>(sorted_prefix_);
  // Every entry of the current prefix ranks above the rest, so partitioning only the rest keeps
  // the prefix valid.
  const auto mid = std::partition(begin, entries_.end(),
                                  [threshold](const Candidate& c) { return c.logit >= threshold; });
  std::sort(begin, mid, ranks_before);
  sorted_prefix_ = static_cast<size_t>(mid - entries_.begin());
  id_ordered_ = false;
}

void Candidates::replace_with_sorted(std::span<const Candidate> best) {
  LOOM_ASSERT(best.size() <= entries_.capacity());
  entries_.assign(best.begin(), best.end());  // within the reserved capacity: no allocation
  sorted_prefix_ = entries_.size();
  id_ordered_ = false;
  probs_valid_ = false;
}

void Candidates::truncate(size_t n) {
  if (n >= entries_.size()) return;
  entries_.resize(n);
  sorted_prefix_ = std::min(sorted_prefix_, n);
  id_ordered_ = false;
  probs_valid_ = false;
}

size_t Candidates::best_index() const {
  LOOM_ASSERT(!entries_.empty());
  if (sorted_prefix_ > 0) return 0;
  size_t best = 0;
  for (size_t i = 1; i < entries_.size(); ++i) {
    if (ranks_before(entries_[i], entries_[best])) best = i;
  }
  return best;
}

void Candidates::softmax() {
  if (probs_valid_) return;
  LOOM_ASSERT(!entries_.empty());
  float max_logit = -std::numeric_limits<float>::infinity();
  for (const Candidate& c : entries_) max_logit = std::max(max_logit, c.logit);
  if (max_logit == -std::numeric_limits<float>::infinity()) {
    fail(ErrorCode::kInternal, "sampler: every candidate token has a logit of -inf");
  }
  // exp(l - max) keeps every term in (0, 1]; the sum is accumulated in double so a 150k-term
  // vocabulary loses no mass to rounding. With a +inf max only the +inf tokens get mass
  // (inf - inf would be NaN).
  const bool inf_max = std::isinf(max_logit);
  double sum = 0.0;
  for (Candidate& c : entries_) {
    c.prob = inf_max ? (c.logit == max_logit ? 1.0f : 0.0f) : std::exp(c.logit - max_logit);
    sum += c.prob;
  }
  const double inv = 1.0 / sum;
  for (Candidate& c : entries_) c.prob = static_cast<float>(c.prob * inv);
  probs_valid_ = true;
}

}  // namespace loom::sample
