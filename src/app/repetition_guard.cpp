#include "app/repetition_guard.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace loom::app {

const std::vector<std::string>& default_dry_breakers() {
  static const std::vector<std::string> breakers{"\n", ":", "\"", "*"};
  return breakers;
}

std::shared_ptr<const std::vector<int32_t>> DryBreakerCache::ids(
    const std::vector<std::string>& breakers) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, value] : entries_) {
      if (key == breakers) return value;
    }
  }
  auto found = std::make_shared<std::vector<int32_t>>();
  if (tokenizer_ != nullptr) {
    const auto vocab = static_cast<int32_t>(tokenizer_->vocab_size());
    for (int32_t id = 0; id < vocab; ++id) {
      const std::optional<std::string> bytes = tokenizer_->token_bytes(id);
      if (!bytes) continue;
      for (const std::string& b : breakers) {
        if (!b.empty() && bytes->find(b) != std::string::npos) {
          found->push_back(id);
          break;
        }
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.size() >= kEntries) entries_.erase(entries_.begin());
  entries_.emplace_back(breakers, found);
  return found;
}

void apply_guard(const GuardChoice& choice, DryBreakerCache& breakers, GuardOptions& guard,
                 sample::SamplingParams& sampling) {
  guard.action = choice.action;
  if (choice.action == GuardAction::kPenalize && sampling.dry_multiplier == 0.0f) {
    sampling.dry_multiplier = choice.dry_multiplier;
    sampling.dry_base = choice.dry_base;
    sampling.dry_allowed_length = choice.dry_allowed_length;
    sampling.dry_penalty_last_n = choice.dry_penalty_last_n;
  }
  if (sampling.dry_multiplier > 0.0f && !sampling.dry_breakers) {
    sampling.dry_breakers = breakers.ids(choice.dry_breakers);
  }
}

}  // namespace loom::app
