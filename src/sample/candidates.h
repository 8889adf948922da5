// loom::sample::Candidates — the working set of the sampling chain: (token id, logit, prob)
// for every token still in the running.
//
// The buffer is sized once (vocab size) and reused for every token, so the hot path never
// allocates. fill() loads the raw logits in id order; steps then change logits, drop entries or
// reorder them. The buffer tracks two facts so steps do only the work they need:
// - sorted_prefix(): entries [0, n) are in descending (logit, then ascending id) order and none
//   of the later entries beats them. Top-k makes this prefix as long as k with nth_element + a
//   sort of k entries; top-p grows it in chunks until the mass is reached, so neither sorts the
//   whole vocabulary.
// - id_ordered(): entry i is token i (nothing dropped or moved yet), so a step that touches a
//   few known tokens (penalties, logit_bias) can index directly instead of scanning.
// Probabilities are computed on demand (softmax()) and go stale when logits or the set change.
//
// Ordering is a strict total order (ids are unique), so every sort gives one arrangement and
// the chain is deterministic.
//
// Thread-safety: none; one per Sampler.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace loom::sample {

struct Candidate {
  int32_t id;
  float logit;
  float prob;  // valid only while Candidates::probs_valid()
};

// The chain's ranking: higher logit first, lower id first among equal logits (the first max,
// as torch.argmax on CPU).
inline bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

class Candidates {
 public:
  explicit Candidates(int32_t vocab_size);

  // Loads logits in id order. Throws loom::Error: kInvalidArgument if the size is not the
  // vocab size, kInternal for a NaN logit (the model's output is broken; a NaN would also break
  // every comparison below).
  void fill(std::span<const float> logits);
  // Loads only the ids whose bit is set in `allowed` (bit id % 64 of word id / 64; ids past the
  // words are not allowed), in id order: constrained decoding's mask.
  void fill_allowed(std::span<const float> logits, std::span<const uint64_t> allowed);
  // Loads an explicit (id, logit) set; for tests and for callers that pre-filter.
  void assign(std::span<const Candidate> entries);

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  int32_t vocab_size() const { return vocab_size_; }
  Candidate& operator[](size_t i) { return entries_[i]; }
  const Candidate& operator[](size_t i) const { return entries_[i]; }
  std::span<Candidate> entries() { return entries_; }
  std::span<const Candidate> entries() const { return entries_; }

  bool id_ordered() const { return id_ordered_; }
  size_t sorted_prefix() const { return sorted_prefix_; }
  bool probs_valid() const { return probs_valid_; }

  // Call after changing logits in place. A change that keeps the ranking (dividing by a positive
  // temperature) keeps the sorted prefix; any other loses it.
  void logits_changed(bool ranking_kept);
  // Call after reordering entries() by another criterion (the ranking is no longer known).
  void order_changed() {
    sorted_prefix_ = 0;
    id_ordered_ = false;
  }

  // Makes the first min(n, size) entries sorted and ranked above the rest.
  void sort_prefix(size_t n);
  void sort_all() { sort_prefix(entries_.size()); }
  // Moves the entries with logit >= threshold to the front and sorts them (one O(size) partition
  // plus a sort of what passed), extending the sorted prefix to cover them. For steps that can
  // bound the kept set by a logit before sorting (top-p's histogram).
  void sort_prefix_above(float threshold);
  // Replaces the set by `best`, which must be sorted by ranks_before (top-k's heap selection).
  void replace_with_sorted(std::span<const Candidate> best);
  // Keeps the first n entries (n <= size).
  void truncate(size_t n);
  // Keeps the entries for which keep(candidate) is true, in their current order.
  template <typename Pred>
  void retain_if(Pred keep);

  // Index of the best-ranked entry (see ranks_before). Requires !empty().
  size_t best_index() const;
  // Sets prob = softmax(logit) over the current entries. +inf logits share all the mass; an
  // all -inf set throws loom::Error(kInternal) since no token can be drawn.
  void softmax();

 private:
  int32_t vocab_size_;
  std::vector<Candidate> entries_;
  size_t sorted_prefix_ = 0;
  bool id_ordered_ = false;
  bool probs_valid_ = false;
};

template <typename Pred>
void Candidates::retain_if(Pred keep) {
  // Removal keeps relative order, so kept members of the sorted prefix stay a sorted prefix.
  size_t out = 0;
  size_t new_prefix = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (!keep(entries_[i])) continue;
    if (i < sorted_prefix_) ++new_prefix;
    entries_[out++] = entries_[i];
  }
  if (out != entries_.size()) {
    id_ordered_ = false;
    probs_valid_ = false;
  }
  entries_.resize(out);
  sorted_prefix_ = new_prefix;
}

}  // namespace loom::sample
