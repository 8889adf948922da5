// The degeneration guard as entry points configure it (loom run --guard, the server's
// `degeneration` request field): the action, and for "penalize" the DRY penalty's settings,
// with sequence breakers given as strings and turned into token ids here, where the tokenizer
// is.
//
// Thread-safety: DryBreakerCache may be called concurrently.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/degeneration.h"
#include "sample/sampling_params.h"

namespace loom::tokenizer {
class Tokenizer;
}

namespace loom::app {

// KoboldCpp's and llama.cpp's default DRY sequence breakers.
const std::vector<std::string>& default_dry_breakers();

struct GuardChoice {
  GuardAction action = GuardAction::kStop;
  // DRY settings for "penalize" (KoboldCpp's recommended multiplier, llama.cpp's defaults for
  // the rest).
  float dry_multiplier = 0.8f;
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;
  std::vector<std::string> dry_breakers = default_dry_breakers();
};

// Sorted ids of the tokens whose text contains one of the breaker strings; the last few
// breaker sets asked for are kept (computing one reads the whole vocabulary).
class DryBreakerCache {
 public:
  explicit DryBreakerCache(const tokenizer::Tokenizer* tokenizer) : tokenizer_(tokenizer) {}
  std::shared_ptr<const std::vector<int32_t>> ids(const std::vector<std::string>& breakers);

 private:
  static constexpr size_t kEntries = 8;
  const tokenizer::Tokenizer* tokenizer_;
  std::mutex mu_;
  std::vector<std::pair<std::vector<std::string>, std::shared_ptr<const std::vector<int32_t>>>>
      entries_;  // newest last
};

// The guard for a generation, and for "penalize" the DRY step in its sampling parameters
// (unless the request already set dry_multiplier itself, which then wins). DRY asked for
// directly (dry_multiplier > 0, any action) gets the choice's breakers too.
void apply_guard(const GuardChoice& choice, DryBreakerCache& breakers, GuardOptions& guard,
                 sample::SamplingParams& sampling);

}  // namespace loom::app
