// loom::sample::Sampler — turns one position's logits into a token through the configured chain:
//
//   logits -> [penalties, dry, logit_bias, top_k, typical_p, top_p, min_p, temperature] -> draw
//
// (default order, see kDefaultStepOrder; SamplingParams::steps reorders or drops steps, and steps
// whose parameters are "off" are not built at all). The draw is:
// - temperature == 0: greedy. Only the penalties, dry and logit_bias steps run (in the configured
//   order), then the argmax; among equal logits the lowest id wins (torch.argmax's first max).
//   top_k, top_p and min_p always keep the argmax, so skipping them changes nothing; typical_p
//   may drop it, but greedy means the most likely token, as in HF (do_sample=False ignores
//   the logits warpers).
// - otherwise: softmax over the surviving candidates and an inverse-CDF draw with a uniform
//   double in [0, 1) made from the top 53 bits of a std::mt19937_64 (whose output sequence the
//   C++ standard fixes, unlike std::uniform_real_distribution's). So the same seed, the same
//   params and the same logits give the same tokens, run after run, in the same build.
//
// Use per sequence: accept_prompt(prompt) once, then for every position sample(logits) and
// accept(token) with the token actually appended (sample() does not accept by itself, so an
// engine that discards a token, e.g. a rejected speculative draft, is not penalised for it).
// For OpenAI `n` > 1 choices use one Sampler per choice with distinct seeds (e.g. seed + i):
// equal seeds would give equal choices.
//
// Hot path: no allocation per token. The candidate buffer is sized at construction; penalty
// state grows amortised with distinct tokens seen (see penalties.h).
//
// Ownership: owns its steps and buffers. Thread-safety: none; one Sampler per sequence, never
// shared between threads without external locking. Movable, not copyable.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "sample/candidates.h"
#include "sample/logprobs.h"
#include "sample/sampling_params.h"
#include "sample/steps.h"

namespace loom::sample {

struct Logprobs {
  float logprob = 0.0f;               // log-softmax of the raw logit of the chosen token
  std::span<const TokenLogprob> top;  // best first; valid until the next logprobs() call
};

class Sampler {
 public:
  // Validates params (validate_sampling_params) and builds the chain. Throws loom::Error
  // (kInvalidArgument) naming the bad field and its allowed range.
  Sampler(const SamplingParams& params, int32_t vocab_size);
  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;
  ~Sampler();

  // Picks a token. `logits` must hold vocab_size values (kInvalidArgument otherwise); a NaN logit,
  // or every token at -inf, is kInternal.
  int32_t sample(std::span<const float> logits);
  // The same over the tokens allowed by a constraint (a grammar's mask: bit id % 64 of word
  // id / 64; ids past the words are not allowed). The steps run on the allowed tokens only, so
  // top_k / top_p / min_p pick among what may come next. No allowed token is kInternal.
  int32_t sample(std::span<const float> logits, std::span<const uint64_t> allowed);
  // Speculative decoding: decides a token that a drafter proposed with certainty (prompt
  // lookup, or a draft model's argmax). Greedy: the token is sample(logits), and the draft is
  // accepted when they are equal. Otherwise (Leviathan et al. 2023, Chen et al. 2023, with the
  // draft distribution one-hot): the draft is accepted with probability p(draft) under the
  // chain's distribution; if not, the token is drawn from p with the draft left out. Either
  // way the token returned is distributed exactly as sample(logits)'s. Does not accept.
  struct Verdict {
    int32_t token;
    bool accepted;  // token == the draft, taken as drafted
  };
  Verdict verify(std::span<const float> logits, int32_t draft);
  // Records a generated token (penalties). Throws kInvalidArgument for an id out of range.
  void accept(int32_t token);
  // Records prompt tokens, oldest first: they count for the repetition penalty's window only.
  void accept_prompt(std::span<const int32_t> tokens);
  // Forgets every accepted token and re-seeds the generator with seed(), so a reset sampler
  // repeats its first run exactly.
  void reset();

  // OpenAI logprobs for `token` and the `top_n` best alternatives, from the raw `logits` (the same
  // span given to sample()). Uses an internal buffer: no allocation once top_n has been seen.
  Logprobs logprobs(std::span<const float> logits, int32_t token, size_t top_n);

  uint64_t seed() const { return seed_; }
  int32_t vocab_size() const { return vocab_size_; }
  const SamplingParams& params() const { return params_; }
  bool greedy() const { return params_.temperature == 0.0f; }
  // The steps that run, in order (active ones only; for greedy, only penalties and logit_bias).
  std::vector<StepKind> active_steps() const;
  // The candidate set the last sample() drew from (after every step; probs are set unless the
  // draw was greedy; a greedy sampler with no penalties or bias reads the logits directly and
  // leaves it untouched). For tests, debugging and "why this token" tools.
  const Candidates& candidates() const { return candidates_; }

 private:
  int32_t draw();
  int32_t argmax(std::span<const float> logits);

  SamplingParams params_;
  int32_t vocab_size_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<SamplingStep>> steps_;
  Candidates candidates_;
  std::vector<TokenLogprob> top_buffer_;
};

// A uniform double in [0, 1) from the top 53 bits of one 64-bit draw: exactly representable,
// and the same on every standard library.
inline double uniform_unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace loom::sample
