// loom::sample::DryStep — "don't repeat yourself" (the DRY sampler of KoboldCpp and
// llama.cpp): a penalty on the token that would extend a sequence already seen in the context.
//
// For each candidate token t, let len(t) be the longest suffix of the context that also occurs
// earlier followed by t (so choosing t would repeat len(t) + 1 tokens). When
// len(t) >= allowed_length:
//     logit(t) -= multiplier * base ^ (len(t) - allowed_length)
// so a repeat that keeps growing is penalised exponentially, while short common n-grams ("of
// the") are left alone. Sequence breakers (tokens whose text contains "\n", ":", "\"", "*" by
// default; SamplingParams::dry_breakers) end a match: the suffix considered starts after the
// last breaker in the context, so a list of items with the same prefix on each line is not
// penalised. The context is the prompt plus what was generated, limited to the last
// `penalty_last_n` tokens (-1: all of it).
//
// All the match lengths come from one Z-function over the reversed context window, O(window)
// per token.
//
// Thread-safety: none; one per Sampler.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "sample/steps.h"

namespace loom::sample {

class DryStep final : public SamplingStep {
 public:
  DryStep(float multiplier, float base, int32_t allowed_length, int32_t penalty_last_n,
          std::shared_ptr<const std::vector<int32_t>> breakers);
  StepKind kind() const override { return StepKind::kDry; }
  void apply(Candidates& candidates) override;
  void accept_prompt(std::span<const int32_t> tokens) override;
  void accept(int32_t token) override;
  void reset() override;

  // (token, longest repeat it would extend) for every token that would extend a repeat of at
  // least allowed_length, as the last apply() found them; sorted by token. For tests.
  const std::vector<std::pair<int32_t, int32_t>>& last_matches() const { return matches_; }

 private:
  bool is_breaker(int32_t token) const;
  void push(int32_t token);

  float multiplier_;
  float base_;
  int32_t allowed_;
  int32_t last_n_;
  std::shared_ptr<const std::vector<int32_t>> breakers_;  // sorted ids
  std::vector<int32_t> context_;
  int64_t last_breaker_ = -1;  // index in context_ of the last breaker, -1: none
  std::vector<int32_t> reversed_;
  std::vector<int32_t> z_;
  std::vector<std::pair<int32_t, int32_t>> matches_;
};

}  // namespace loom::sample
