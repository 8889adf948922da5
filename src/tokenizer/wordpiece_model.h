// WordPiece model (BERT): greedy longest-match-first over each pre-token, continuation pieces
// carry a prefix ("##"); a word with any unmatched remainder becomes the single unk token.
//
// Ownership: owns its vocab. Thread-safety: immutable; tokenize() may run concurrently.
#pragma once

#include <string>

#include "tokenizer/pipeline.h"
#include "tokenizer/vocab.h"

namespace loom::tokenizer {

class WordPieceModel final : public Model {
 public:
  // Throws loom::Error when `unk_token` is not in the vocab.
  WordPieceModel(Vocab vocab, std::string unk_token, std::string continuing_subword_prefix,
                 size_t max_input_chars_per_word);

  void tokenize(std::string_view piece, std::vector<int32_t>& ids) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  size_t id_bound() const override { return vocab_.id_bound(); }
  std::optional<int32_t> unk_id() const override { return unk_id_; }

 private:
  Vocab vocab_;
  int32_t unk_id_;
  std::string prefix_;
  size_t max_chars_;
};

}  // namespace loom::tokenizer
