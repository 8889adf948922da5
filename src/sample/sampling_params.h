// loom::sample::SamplingParams — what a request asks of the sampler, and the names of the steps
// of the sampling chain.
//
// Every field has an "off" value, so a default-constructed SamplingParams samples from the
// model's distribution unchanged (temperature 1, no truncation, no penalties).
//
// Ranges follow the OpenAI API where it defines one (temperature, top_p, frequency_penalty,
// presence_penalty, logit_bias), so the server can hand request fields through and turn the
// loom::Error (kInvalidArgument) that validate_sampling_params() throws into an HTTP 400.
//
// Thread-safety: a plain value; copy freely.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom::sample {

// One step of the chain. The final choice (random draw or greedy argmax) is not a step: it always
// comes last.
enum class StepKind {
  kPenalties,    // repetition, then frequency and presence penalties
  kLogitBias,    // additive per-token bias
  kTopK,         // keep the k highest logits
  kTypicalP,     // locally typical sampling (Meister et al. 2022)
  kTopP,         // nucleus sampling (Holtzman et al. 2019)
  kMinP,         // keep tokens with p >= min_p * p_max
  kTemperature,  // divide logits by the temperature
  kDry,          // "don't repeat yourself": penalise extending a repeated sequence (dry.h)
};

// Default order, as llama.cpp's (penalties -> top_k -> typical -> top_p -> min_p -> temperature
// -> dist), with logit_bias right after the penalties. Why this order:
// - Penalties and logit_bias change logits, so they come before anything that decides which
//   tokens survive: a token banned by a -100 bias must not take one of top_k's k places. The bias
//   comes after the penalties because it is the user's explicit last word on a token (a +100
//   bias that forces a token is not then divided by the repetition penalty).
// - Truncation (top_k, typical_p, top_p, min_p) runs on the model's own (penalised) distribution
//   and temperature only reshapes what survives. Temperature last means a high temperature
//   cannot pull the incoherent tail back in, which is the point of min_p (Nguyen et al. 2024).
//   Note that HF transformers and vLLM apply temperature first; users who want that give
//   `steps` explicitly.
// - top_k first among the truncations because it is cheap (nth_element) and makes the sorts of
//   the later steps small.
inline constexpr StepKind kDefaultStepOrder[] = {
    StepKind::kPenalties, StepKind::kDry,  StepKind::kLogitBias, StepKind::kTopK,
    StepKind::kTypicalP,  StepKind::kTopP, StepKind::kMinP,      StepKind::kTemperature,
};

// "penalties", "logit_bias", "top_k", "typical_p", "top_p", "min_p", "temperature", "dry".
std::string_view step_name(StepKind kind);
// Throws loom::Error(kInvalidArgument) naming the valid names for an unknown one.
StepKind parse_step_name(std::string_view name);

struct SamplingParams {
  // Logits are divided by it. 0 means greedy: only the penalties and logit_bias steps run, then
  // the argmax (lowest id on ties), whatever else is configured. Range [0, 2] (OpenAI).
  float temperature = 1.0f;
  // Keep exactly the k highest logits (ties at the k-th place broken by lower token id).
  // 0 = off. Range >= 0; k >= vocab size keeps everything.
  int32_t top_k = 0;
  // Keep the smallest set of most likely tokens whose probabilities sum to >= top_p.
  // 1 = off. Range (0, 1].
  float top_p = 1.0f;
  // Keep the tokens whose probability is >= min_p times the most likely one's. 0 = off.
  // Range [0, 1].
  float min_p = 0.0f;
  // Locally typical sampling: keep the tokens whose surprisal is closest to the entropy until
  // their probabilities sum to >= typical_p (as HF TypicalLogitsWarper). 1 = off. Range (0, 1].
  float typical_p = 1.0f;

  // llama.cpp / HF CTRL semantics: a token seen in the last `penalty_last_n` tokens of the
  // context (prompt tokens given to Sampler::accept_prompt, then generated tokens) has a positive
  // logit divided by it and a negative one multiplied by it. 1 = off. Range (0, 10].
  float repetition_penalty = 1.0f;
  // Window of the repetition penalty: -1 = the whole context, 0 = off. Range >= -1.
  int32_t penalty_last_n = 64;
  // OpenAI semantics: logit -= count * frequency_penalty + (count > 0) * presence_penalty,
  // where count is how often the token was *generated* so far (Sampler::accept). As in OpenAI,
  // prompt tokens do not count (llama.cpp counts them; we follow the API we serve).
  // 0 = off. Range [-2, 2] each.
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;

  // DRY (sample/dry.h; KoboldCpp's and llama.cpp's names and defaults): a token that would
  // extend a repeat of len >= dry_allowed_length tokens loses
  // dry_multiplier * dry_base ^ (len - dry_allowed_length) from its logit. 0 = off.
  // Ranges: multiplier [0, 100], base [1, 10], allowed_length >= 1, penalty_last_n >= -1
  // (-1 = whole context, 0 = off).
  float dry_multiplier = 0.0f;
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;
  // Sorted ids of the tokens that end a repeated sequence (their text contains a sequence
  // breaker such as "\n"); made from strings by the caller, who has the tokenizer. Null: none.
  std::shared_ptr<const std::vector<int32_t>> dry_breakers;

  // token id -> value added to its logit (OpenAI: -100 is in effect a ban, +100 forces the
  // token). Range [-100, 100]; ids must be in [0, vocab size).
  std::map<int32_t, float> logit_bias;

  // Seed of the std::mt19937_64 that draws tokens. Unset: drawn from std::random_device (the
  // seed actually used is Sampler::seed(), so a run can be replayed).
  std::optional<uint64_t> seed;

  // Explicit order of the steps, by name (see step_name); steps not named do not run, and naming
  // a step twice is an error. Empty: kDefaultStepOrder. A parameter that is set (not at its
  // "off" value) whose step is not named is an error, so a request never silently loses one.
  std::vector<std::string> steps;
};

// Checks every range above; vocab_size bounds the logit_bias ids. Throws loom::Error
// (kInvalidArgument) whose message names the field, the value and the allowed range.
void validate_sampling_params(const SamplingParams& params, int32_t vocab_size);

// The order the chain will run: params.steps parsed, or kDefaultStepOrder. Steps whose
// parameters are "off" are still listed (Sampler drops them). Throws like parse_step_name, and
// for a duplicate name.
std::vector<StepKind> resolve_step_order(const SamplingParams& params);

// True when the step's parameters would change anything (e.g. top_k > 0, temperature != 1).
bool step_is_active(StepKind kind, const SamplingParams& params);

}  // namespace loom::sample
