// Vocabulary: token string <-> id, shared by the models. Lookup by string_view without
// allocating (heterogeneous hash lookup).
//
// Ownership: owns its strings. Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace loom::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// The bound on ids for a vocabulary of `entries` strings beside `extra_ids` ids that other
// tables of the same file assign (HF added_tokens): every id a file can describe is below the
// total count, plus a small allowance for vocabularies that skip a few ids.
inline size_t vocab_id_limit(size_t entries, size_t extra_ids) {
  constexpr size_t kAllowedHoles = 1024;
  return entries + extra_ids + kAllowedHoles;
}

class Vocab {
 public:
  Vocab() = default;
  // Throws loom::Error when an id is negative or not below `id_limit`. A later entry for an id
  // already seen replaces its string; each string keeps its first id. The table is sized by the
  // largest id, so callers bound ids by what their file can describe (vocab_id_limit) rather
  // than letting one id of 888888880 size a 28 GB table (fuzz_tokenizer_json found it).
  Vocab(std::vector<std::pair<std::string, int32_t>> entries, size_t id_limit);

  std::optional<int32_t> find(std::string_view token) const {
    auto it = to_id_.find(token);
    if (it == to_id_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= to_token_.size() || !present_[id]) return nullptr;
    return &to_token_[id];
  }
  size_t size() const { return to_id_.size(); }
  // One past the largest id.
  size_t id_bound() const { return to_token_.size(); }

 private:
  StringMap<int32_t> to_id_;
  std::vector<std::string> to_token_;
  std::vector<bool> present_;
};

}  // namespace loom::tokenizer
