#include "tokenizer/wordpiece_model.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

WordPieceModel::WordPieceModel(Vocab vocab, std::string unk_token,
                               std::string continuing_subword_prefix,
                               size_t max_input_chars_per_word)
    : vocab_(std::move(vocab)),
      prefix_(std::move(continuing_subword_prefix)),
      max_chars_(max_input_chars_per_word) {
  auto unk = vocab_.find(unk_token);
  if (!unk) fail(ErrorCode::kCorruption, "unk_token '{}' is not in the vocab", unk_token);
  unk_id_ = *unk;
}

void WordPieceModel::tokenize(std::string_view piece, std::vector<int32_t>& ids) const {
  // Character boundaries, so candidate ends shrink one character at a time.
  std::vector<size_t> bounds;
  bounds.reserve(piece.size() + 1);
  for (size_t pos = 0; pos < piece.size();) {
    bounds.push_back(pos);
    pos += utf8_length(static_cast<unsigned char>(piece[pos]));
  }
  if (bounds.size() > max_chars_) {
    ids.push_back(unk_id_);
    return;
  }
  bounds.push_back(piece.size());
  size_t first_out = ids.size();
  std::string candidate;
  size_t start = 0;  // index into bounds
  while (start + 1 < bounds.size()) {
    bool found = false;
    for (size_t end = bounds.size() - 1; end > start; --end) {
      std::string_view sub = piece.substr(bounds[start], bounds[end] - bounds[start]);
      std::optional<int32_t> id;
      if (start > 0) {
        candidate.assign(prefix_);
        candidate += sub;
        id = vocab_.find(candidate);
      } else {
        id = vocab_.find(sub);
      }
      if (id) {
        ids.push_back(*id);
        start = end;
        found = true;
        break;
      }
    }
    if (!found) {
      ids.resize(first_out);
      ids.push_back(unk_id_);
      return;
    }
  }
}

}  // namespace loom::tokenizer
