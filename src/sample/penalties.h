// loom::sample::PenaltiesStep — repetition, frequency and presence penalties, which need memory
// of the tokens seen so far.
//
// For a token t (applied in this order):
//   repetition (llama.cpp / HF CTRL, Keskar et al. 2019): if t occurs in the last
//     penalty_last_n tokens of the context (prompt + generated; -1 = all of it):
//       logit > 0 ? logit / repetition_penalty : logit * repetition_penalty
//   frequency and presence (OpenAI): with c = how often t was generated so far,
//       logit -= c * frequency_penalty + (c > 0 ? presence_penalty : 0)
//     Prompt tokens do not count here, as in OpenAI's API.
//
// Memory is proportional to the distinct tokens seen, not the vocabulary, so a server with many
// sequences does not pay vocab-sized arrays per sequence. Counts live in id-sorted flat vectors
// (binary search; inserts move at most the distinct tokens); capacity grows amortised and is kept
// across reset(), so steady-state decoding does not allocate.
//
// Thread-safety: none; one per Sampler.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "sample/steps.h"

namespace loom::sample {

// A multiset of token ids: id -> count for the ids with count > 0, sorted by id.
class TokenCounts {
 public:
  void add(int32_t token);
  // Requires count(token) > 0.
  void remove(int32_t token);
  int32_t count(int32_t token) const;
  void clear() { counts_.clear(); }
  void reserve(size_t n) { counts_.reserve(n); }
  std::span<const std::pair<int32_t, int32_t>> items() const { return counts_; }

 private:
  std::vector<std::pair<int32_t, int32_t>> counts_;
};

class PenaltiesStep final : public SamplingStep {
 public:
  PenaltiesStep(float repetition_penalty, int32_t penalty_last_n, float frequency_penalty,
                float presence_penalty);
  StepKind kind() const override { return StepKind::kPenalties; }
  void apply(Candidates& candidates) override;
  void accept_prompt(std::span<const int32_t> tokens) override;
  void accept(int32_t token) override;
  void reset() override;

  const TokenCounts& window_counts() const { return window_; }
  const TokenCounts& generated_counts() const { return generated_; }

 private:
  void push_context(int32_t token);
  float penalised(float logit, int32_t window_count, int32_t generated_count) const;

  float repetition_;
  int32_t last_n_;  // -1: whole context, 0: no repetition penalty
  float frequency_;
  float presence_;
  std::vector<int32_t> ring_;  // last last_n_ context tokens (last_n_ > 0 only)
  size_t ring_head_ = 0;       // next slot to write
  size_t ring_fill_ = 0;
  TokenCounts window_;     // tokens in the repetition window
  TokenCounts generated_;  // generated tokens (frequency / presence)
};

}  // namespace loom::sample
