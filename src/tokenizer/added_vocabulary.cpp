#include "tokenizer/added_vocabulary.h"

#include "tokenizer/unicode.h"

namespace loom::tokenizer {

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token_index) {
  if (key.empty()) return;
  first_byte[static_cast<unsigned char>(key[0])] = true;
  int32_t node = 0;
  for (char ch : key) {
    uint64_t k = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(ch);
    auto it = next.find(k);
    if (it == next.end()) {
      int32_t created = static_cast<int32_t>(terminal.size());
      terminal.push_back(-1);
      it = next.emplace(k, created).first;
    }
    node = it->second;
  }
  // The first token registered for a string wins, as HF keeps the first mapping.
  if (terminal[node] < 0) terminal[node] = token_index;
}

size_t AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos,
                                         int32_t& token_index) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = next.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
    if (it == next.end()) break;
    node = it->second;
    if (terminal[node] >= 0) {
      best = i + 1 - pos;
      token_index = terminal[node];
    }
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_.emplace(t.id, i);
    by_content_.emplace(t.content, t.id);
    if (t.special) special_contents_.insert(t.content);
    if (t.normalized) {
      std::string key = t.content;
      if (normalizer) normalizer->normalize(key);
      normalized_.insert(key, static_cast<int32_t>(i));
    } else {
      raw_.insert(t.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::find(std::string_view content) const {
  auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

namespace {

// Last code point that ends at `end` (text must be valid UTF-8).
char32_t code_point_before(std::string_view text, size_t end, size_t* start = nullptr) {
  size_t pos = end;
  do {
    --pos;
  } while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80);
  if (start) *start = pos;
  size_t p = pos;
  return next_code_point(text, p);
}

}  // namespace

void AddedVocabulary::split(std::string_view text, bool normalized_set,
                            std::vector<Segment>& out) const {
  const Trie& trie = normalized_set ? normalized_ : raw_;
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t index = -1;
    size_t len = trie.longest_at(text, pos, index);
    if (len == 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t start = pos, stop = pos + len;
    pos = stop;  // matches never overlap, even when this one is rejected below
    if (token.single_word) {
      bool word_before = start > 0 && is_word_char(code_point_before(text, start));
      size_t after = stop;
      bool word_after = stop < text.size() && is_word_char(next_code_point(text, after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t prev = 0;
        if (!is_whitespace(code_point_before(text, s, &prev))) break;
        s = prev;
      }
      start = s;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!is_whitespace(next_code_point(text, next))) break;
        stop = next;
      }
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, token.id});
    start_offset = stop;
    if (pos < stop) pos = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace loom::tokenizer
