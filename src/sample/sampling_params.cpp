#include "sample/sampling_params.h"

#include <cmath>

#include "core/error.h"

namespace loom::sample {
namespace {

constexpr std::string_view kStepNames[] = {
    "penalties", "logit_bias", "top_k", "typical_p", "top_p", "min_p", "temperature", "dry",
};

std::string all_step_names() {
  std::string names;
  for (std::string_view name : kStepNames) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

// `lo_open` / `hi_open` say whether the bound itself is excluded; the message spells the range
// with the same brackets. NaN fails every comparison, so it is rejected too.
void check_range(std::string_view field, float value, float lo, float hi, bool lo_open,
                 bool hi_open) {
  const bool above_lo = lo_open ? value > lo : value >= lo;
  const bool below_hi = hi_open ? value < hi : value <= hi;
  if (!(above_lo && below_hi) || !std::isfinite(value)) {
    fail(ErrorCode::kInvalidArgument, "{} = {} is out of range: must be in {}{}, {}{}", field,
         value, lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  }
}

}  // namespace

std::string_view step_name(StepKind kind) {
  return kStepNames[static_cast<int>(kind)];
}

StepKind parse_step_name(std::string_view name) {
  for (size_t i = 0; i < std::size(kStepNames); ++i) {
    if (kStepNames[i] == name) return static_cast<StepKind>(i);
  }
  fail(ErrorCode::kInvalidArgument, "steps: unknown step \"{}\" (valid steps: {})", name,
       all_step_names());
}

bool step_is_active(StepKind kind, const SamplingParams& p) {
  switch (kind) {
    case StepKind::kPenalties:
      return (p.repetition_penalty != 1.0f && p.penalty_last_n != 0) ||
             p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
    case StepKind::kLogitBias:
      return !p.logit_bias.empty();
    case StepKind::kTopK:
      return p.top_k > 0;
    case StepKind::kTypicalP:
      return p.typical_p < 1.0f;
    case StepKind::kTopP:
      return p.top_p < 1.0f;
    case StepKind::kMinP:
      return p.min_p > 0.0f;
    case StepKind::kTemperature:
      return p.temperature != 1.0f;
    case StepKind::kDry:
      return p.dry_multiplier > 0.0f && p.dry_penalty_last_n != 0;
  }
  return false;
}

std::vector<StepKind> resolve_step_order(const SamplingParams& params) {
  if (params.steps.empty()) {
    return {std::begin(kDefaultStepOrder), std::end(kDefaultStepOrder)};
  }
  std::vector<StepKind> order;
  order.reserve(params.steps.size());
  for (const std::string& name : params.steps) {
    const StepKind kind = parse_step_name(name);
    for (StepKind seen : order) {
      if (seen == kind) fail(ErrorCode::kInvalidArgument, "steps: \"{}\" is named twice", name);
    }
    order.push_back(kind);
  }
  return order;
}

void validate_sampling_params(const SamplingParams& p, int32_t vocab_size) {
  if (vocab_size <= 0) {
    fail(ErrorCode::kInvalidArgument, "vocab_size = {} must be > 0", vocab_size);
  }
  check_range("temperature", p.temperature, 0.0f, 2.0f, false, false);
  if (p.top_k < 0) {
    fail(ErrorCode::kInvalidArgument, "top_k = {} is out of range: must be >= 0 (0 = off)",
         p.top_k);
  }
  check_range("top_p", p.top_p, 0.0f, 1.0f, true, false);
  check_range("min_p", p.min_p, 0.0f, 1.0f, false, false);
  check_range("typical_p", p.typical_p, 0.0f, 1.0f, true, false);
  check_range("repetition_penalty", p.repetition_penalty, 0.0f, 10.0f, true, false);
  if (p.penalty_last_n < -1) {
    fail(ErrorCode::kInvalidArgument,
         "penalty_last_n = {} is out of range: must be >= -1 (-1 = whole context, 0 = off)",
         p.penalty_last_n);
  }
  check_range("frequency_penalty", p.frequency_penalty, -2.0f, 2.0f, false, false);
  check_range("presence_penalty", p.presence_penalty, -2.0f, 2.0f, false, false);
  check_range("dry_multiplier", p.dry_multiplier, 0.0f, 100.0f, false, false);
  check_range("dry_base", p.dry_base, 1.0f, 10.0f, false, false);
  if (p.dry_allowed_length < 1) {
    fail(ErrorCode::kInvalidArgument, "dry_allowed_length = {} is out of range: must be >= 1",
         p.dry_allowed_length);
  }
  if (p.dry_penalty_last_n < -1) {
    fail(ErrorCode::kInvalidArgument,
         "dry_penalty_last_n = {} is out of range: must be >= -1 (-1 = whole context, 0 = off)",
         p.dry_penalty_last_n);
  }
  if (p.dry_breakers) {
    for (const int32_t id : *p.dry_breakers) {
      if (id < 0 || id >= vocab_size) {
        fail(ErrorCode::kInvalidArgument, "dry sequence breakers: token {} is out of range", id);
      }
    }
  }
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0 || token >= vocab_size) {
      fail(ErrorCode::kInvalidArgument,
           "logit_bias: token {} is out of range: must be in [0, {}) (the vocabulary size)", token,
           vocab_size);
    }
    if (!(bias >= -100.0f && bias <= 100.0f)) {
      fail(ErrorCode::kInvalidArgument,
           "logit_bias: bias {} for token {} is out of range: must be in [-100, 100]", bias, token);
    }
  }

  const std::vector<StepKind> order = resolve_step_order(p);
  if (!p.steps.empty()) {
    // An explicit order that leaves out a configured step would silently drop a request field.
    for (StepKind kind : kDefaultStepOrder) {
      if (kind == StepKind::kTemperature && p.temperature == 0.0f) continue;  // greedy
      if (!step_is_active(kind, p)) continue;
      bool named = false;
      for (StepKind k : order) named = named || k == kind;
      if (!named) {
        fail(ErrorCode::kInvalidArgument,
             "steps: \"{}\" is configured but not in steps (add it, or set it to its off value)",
             step_name(kind));
      }
    }
  }
}

}  // namespace loom::sample
