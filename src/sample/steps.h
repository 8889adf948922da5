// loom::sample steps — the links of the sampling chain. Each is small, independent and tested
// alone: apply() transforms the candidate set of one position, accept() sees the token that was
// actually chosen, reset() forgets everything seen (a new sequence).
//
// Truncation steps never empty the set: each keeps at least the best candidate.
//
// Ownership: a step owns its parameters and state. Thread-safety: none; steps belong to one
// Sampler, which belongs to one sequence.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "sample/candidates.h"
#include "sample/sampling_params.h"

namespace loom::sample {

class SamplingStep {
 public:
  virtual ~SamplingStep() = default;
  virtual StepKind kind() const = 0;
  virtual void apply(Candidates& candidates) = 0;
  // Prompt tokens, given once before generation (only penalties look at them).
  virtual void accept_prompt(std::span<const int32_t> /*tokens*/) {}
  // A generated token, after it was chosen.
  virtual void accept(int32_t /*token*/) {}
  virtual void reset() {}
};

// logit += bias[token]. Additive, exactly as OpenAI's logit_bias (so -100 is a ban only in
// practice, as there).
class LogitBiasStep final : public SamplingStep {
 public:
  explicit LogitBiasStep(const std::map<int32_t, float>& bias);
  StepKind kind() const override { return StepKind::kLogitBias; }
  void apply(Candidates& candidates) override;

 private:
  std::vector<std::pair<int32_t, float>> bias_;  // sorted by id
};

// Keeps exactly min(k, size) candidates: the k best by (logit, then lower id). A tie at the k-th
// place is broken by token id, so the result is deterministic; HF's TopKLogitsWarper would keep
// every tied token instead, llama.cpp keeps k. Leaves them sorted.
//
// For k up to kHeapMaxK one pass keeps a k-entry heap of the best so far: almost every token is
// rejected by one comparison with the heap's worst, O(size + k log k). Larger k use nth_element
// (O(size) with a larger constant) and a sort of k.
class TopKStep final : public SamplingStep {
 public:
  static constexpr size_t kHeapMaxK = 1024;
  explicit TopKStep(int32_t k);
  StepKind kind() const override { return StepKind::kTopK; }
  void apply(Candidates& candidates) override;

 private:
  size_t k_;
  std::vector<Candidate> heap_;  // capacity k (small k only)
};

// Keeps the smallest prefix of the candidates, best first, whose probabilities (softmax over the
// current set) sum to >= p. At least one token is kept.
//
// Without sorting the set: a histogram of probability mass by distance from the best logit
// (1/8-nat buckets) finds the bucket where the mass reaches p; only the tokens up to that bucket
// are partitioned out and sorted. So the cost is O(size) plus a sort of roughly the kept tokens.
class TopPStep final : public SamplingStep {
 public:
  explicit TopPStep(float p);
  StepKind kind() const override { return StepKind::kTopP; }
  void apply(Candidates& candidates) override;

 private:
  float p_;
};

// Keeps tokens with prob >= min_p * max prob, tested on logits as
// logit >= max_logit + log(min_p), so no softmax is needed. Keeps the current order.
class MinPStep final : public SamplingStep {
 public:
  explicit MinPStep(float min_p);
  StepKind kind() const override { return StepKind::kMinP; }
  void apply(Candidates& candidates) override;

 private:
  float min_p_;
};

// Locally typical sampling (Meister et al. 2022, "Locally Typical Sampling"), as HF's
// TypicalLogitsWarper: with p = softmax over the current set and H = -sum p log p, rank tokens by
// |-log p - H| (ascending; ties: better logit, then lower id) and keep the smallest prefix of
// that ranking whose mass is >= typical_p. Unlike HF, tokens tied with the last kept score are
// not added (with real logits such ties do not happen). Leaves the set in that ranking's order.
class TypicalPStep final : public SamplingStep {
 public:
  TypicalPStep(float typical_p, int32_t vocab_size);
  StepKind kind() const override { return StepKind::kTypicalP; }
  void apply(Candidates& candidates) override;

 private:
  float mass_;
  std::vector<float> score_by_id_;  // |surprisal - entropy|, indexed by token id; reused
};

// logit /= temperature (> 0). A positive scale keeps the ranking, so the sorted prefix survives.
class TemperatureStep final : public SamplingStep {
 public:
  explicit TemperatureStep(float temperature);
  StepKind kind() const override { return StepKind::kTemperature; }
  void apply(Candidates& candidates) override;

 private:
  float temperature_;
};

}  // namespace loom::sample
