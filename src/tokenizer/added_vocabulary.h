// Added tokens (HF AddedVocabulary): strings such as "<|im_end|>" that are matched in the raw
// input before normalization and pre-tokenization, leftmost-longest, and map straight to an
// id. Tokens marked `normalized` are matched in the normalized text instead.
//
// Ownership: owns its tokens and match tries. Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/pipeline.h"
#include "tokenizer/vocab.h"

namespace loom::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;      // skipped by decode(skip_special_tokens=true)
  bool lstrip = false;       // absorbs whitespace on its left
  bool rstrip = false;       // absorbs whitespace on its right
  bool normalized = false;   // matched after normalization
  bool single_word = false;  // only matched when not inside a word
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` (may be null) is applied to the content of `normalized` tokens.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // A run of text: an added token (id >= 0) or plain text (id == -1).
  struct Segment {
    size_t begin;
    size_t end;
    int32_t id;
  };
  // Splits `text` with the raw (normalized=false) or the normalized token set.
  void split(std::string_view text, bool normalized_set, std::vector<Segment>& out) const;

  const AddedToken* find_by_id(int32_t id) const;
  std::optional<int32_t> find(std::string_view content) const;
  bool is_special_content(std::string_view content) const {
    return special_contents_.contains(std::string(content));
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool empty() const { return tokens_.empty(); }

 private:
  // A byte trie: transitions keyed by (node << 8 | byte); `terminal[node]` is the index of the
  // token ending there, or -1.
  struct Trie {
    std::unordered_map<uint64_t, int32_t> next;
    std::vector<int32_t> terminal{-1};
    bool first_byte[256] = {};
    void insert(std::string_view key, int32_t token_index);
    // Longest key starting at `pos`: returns its length and token index, or 0.
    size_t longest_at(std::string_view text, size_t pos, int32_t& token_index) const;
  };

  std::vector<AddedToken> tokens_;
  Trie raw_;
  Trie normalized_;
  std::unordered_map<int32_t, size_t> by_id_;
  StringMap<int32_t> by_content_;
  std::unordered_set<std::string> special_contents_;
};

}  // namespace loom::tokenizer
