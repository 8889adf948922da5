#include "sample/sampler.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "sample/dry.h"
#include "sample/penalties.h"

namespace loom::sample {
namespace {

std::unique_ptr<SamplingStep> make_step(StepKind kind, const SamplingParams& p,
                                        int32_t vocab_size) {
  switch (kind) {
    case StepKind::kPenalties:
      return std::make_unique<PenaltiesStep>(p.repetition_penalty, p.penalty_last_n,
                                             p.frequency_penalty, p.presence_penalty);
    case StepKind::kLogitBias:
      return std::make_unique<LogitBiasStep>(p.logit_bias);
    case StepKind::kTopK:
      return std::make_unique<TopKStep>(p.top_k);
    case StepKind::kTypicalP:
      return std::make_unique<TypicalPStep>(p.typical_p, vocab_size);
    case StepKind::kTopP:
      return std::make_unique<TopPStep>(p.top_p);
    case StepKind::kMinP:
      return std::make_unique<MinPStep>(p.min_p);
    case StepKind::kTemperature:
      return std::make_unique<TemperatureStep>(p.temperature);
    case StepKind::kDry:
      return std::make_unique<DryStep>(p.dry_multiplier, p.dry_base, p.dry_allowed_length,
                                       p.dry_penalty_last_n, p.dry_breakers);
  }
  LOOM_ASSERT(false);
  return nullptr;
}

uint64_t pick_seed(const std::optional<uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

int32_t Sampler::argmax(std::span<const float> logits) {
  // Straight over the logits: no copy into the candidate buffer when nothing changes them.
  if (logits.size() != static_cast<size_t>(vocab_size_)) {
    fail(ErrorCode::kInvalidArgument, "sampler: got {} logits, but the vocabulary size is {}",
         logits.size(), vocab_size_);
  }
  size_t best = 0;
  bool nan = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    nan = nan || std::isnan(logits[i]);
    if (logits[i] > logits[best]) best = i;  // strict: the first max wins
  }
  if (nan) {
    candidates_.fill(logits);  // names the token
  }
  if (logits[best] == -std::numeric_limits<float>::infinity()) {
    fail(ErrorCode::kInternal, "sampler: every candidate token has a logit of -inf");
  }
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingParams& params, int32_t vocab_size)
    : params_(params),
      vocab_size_(vocab_size),
      seed_(0),
      candidates_((validate_sampling_params(params, vocab_size), vocab_size)) {
  seed_ = pick_seed(params_.seed);
  rng_.seed(seed_);
  for (StepKind kind : resolve_step_order(params_)) {
    if (!step_is_active(kind, params_)) continue;
    // Greedy is the argmax of the penalised, biased logits: truncation steps do not run.
    if (greedy() && kind != StepKind::kPenalties && kind != StepKind::kDry &&
        kind != StepKind::kLogitBias) {
      continue;
    }
    steps_.push_back(make_step(kind, params_, vocab_size_));
  }
}

Sampler::Sampler(Sampler&&) noexcept = default;
Sampler& Sampler::operator=(Sampler&&) noexcept = default;
Sampler::~Sampler() = default;

std::vector<StepKind> Sampler::active_steps() const {
  std::vector<StepKind> kinds;
  for (const auto& step : steps_) kinds.push_back(step->kind());
  return kinds;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (greedy() && steps_.empty()) return argmax(logits);
  candidates_.fill(logits);
  for (const auto& step : steps_) step->apply(candidates_);
  if (!greedy()) return draw();
  const Candidate& best = candidates_[candidates_.best_index()];
  if (best.logit == -std::numeric_limits<float>::infinity()) {
    fail(ErrorCode::kInternal, "sampler: every candidate token has a logit of -inf");
  }
  return best.id;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const uint64_t> allowed) {
  candidates_.fill_allowed(logits, allowed);
  if (candidates_.size() == 0) {
    fail(ErrorCode::kInternal, "sampler: the constraint allows no token of the vocabulary here");
  }
  for (const auto& step : steps_) step->apply(candidates_);
  if (!greedy()) return draw();
  const Candidate& best = candidates_[candidates_.best_index()];
  if (best.logit == -std::numeric_limits<float>::infinity()) {
    // Every allowed token is at -inf (e.g. banned by logit_bias): still one the grammar takes.
    return candidates_[0].id;
  }
  return best.id;
}

int32_t Sampler::draw() {
  candidates_.softmax();
  // Inverse CDF: the first candidate whose running sum passes u. A token with prob 0 never
  // moves the sum, so it is never drawn. The order of the set is deterministic (see
  // candidates.h), so the same u picks the same token.
  const double u = uniform_unit(rng_);
  double cumulative = 0.0;
  size_t last_nonzero = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    const float p = candidates_[i].prob;
    if (p <= 0.0f) continue;
    cumulative += p;
    last_nonzero = i;
    if (u < cumulative) return candidates_[i].id;
  }
  // The probabilities sum to 1 only up to rounding; u just below 1 can land past the end.
  return candidates_[last_nonzero].id;
}

Sampler::Verdict Sampler::verify(std::span<const float> logits, int32_t draft) {
  if (greedy()) {
    const int32_t token = sample(logits);
    return {token, token == draft};
  }
  candidates_.fill(logits);
  for (const auto& step : steps_) step->apply(candidates_);
  candidates_.softmax();
  double p_draft = 0.0, p_rest = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    (candidates_[i].id == draft ? p_draft : p_rest) += candidates_[i].prob;
  }
  if (uniform_unit(rng_) < p_draft || p_rest <= 0.0) return {draft, true};
  // Rejected: draw from the rest (inverse CDF over the candidates other than the draft).
  const double u = uniform_unit(rng_) * p_rest;
  double cumulative = 0.0;
  int32_t last = -1;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    const Candidate& c = candidates_[i];
    if (c.id == draft || c.prob <= 0.0f) continue;
    cumulative += c.prob;
    last = c.id;
    if (u < cumulative) return {c.id, false};
  }
  return {last, false};
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= vocab_size_) {
    fail(ErrorCode::kInvalidArgument, "sampler: accepted token {} is out of range [0, {})", token,
         vocab_size_);
  }
  for (const auto& step : steps_) step->accept(token);
}

void Sampler::accept_prompt(std::span<const int32_t> tokens) {
  for (int32_t token : tokens) {
    if (token < 0 || token >= vocab_size_) {
      fail(ErrorCode::kInvalidArgument, "sampler: prompt token {} is out of range [0, {})", token,
           vocab_size_);
    }
  }
  for (const auto& step : steps_) step->accept_prompt(tokens);
}

void Sampler::reset() {
  for (const auto& step : steps_) step->reset();
  rng_.seed(seed_);
}

Logprobs Sampler::logprobs(std::span<const float> logits, int32_t token, size_t top_n) {
  const double lse = log_sum_exp(logits);
  Logprobs result;
  result.logprob = token_logprob(logits, token, lse);
  top_logprobs(logits, top_n, lse, top_buffer_);
  result.top = top_buffer_;
  return result;
}

}  // namespace loom::sample
