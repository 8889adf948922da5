#include "tokenizer/vocab.h"

#include "core/error.h"

namespace loom::tokenizer {

Vocab::Vocab(std::vector<std::pair<std::string, int32_t>> entries, size_t id_limit) {
  int32_t max_id = -1;
  for (const auto& [token, id] : entries) {
    if (id < 0) fail(ErrorCode::kCorruption, "vocab entry '{}' has negative id {}", token, id);
    if (static_cast<size_t>(id) >= id_limit) {
      fail(ErrorCode::kCorruption,
           "vocab entry '{}' has id {}, beyond what a vocabulary of {} entries can hold (ids "
           "must be below {})",
           token, id, entries.size(), id_limit);
    }
    max_id = std::max(max_id, id);
  }
  to_token_.resize(static_cast<size_t>(max_id + 1));
  present_.resize(static_cast<size_t>(max_id + 1), false);
  to_id_.reserve(entries.size());
  for (auto& [token, id] : entries) {
    to_token_[id] = token;
    present_[id] = true;
    to_id_.emplace(std::move(token), id);
  }
}

}  // namespace loom::tokenizer
