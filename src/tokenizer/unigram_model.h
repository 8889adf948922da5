// Unigram language-model tokenizer (SentencePiece "unigram", HF Unigram): the segmentation
// with the highest total log-probability (Viterbi). Characters no piece covers become unk
// (consecutive ones fused), or <0xXX> byte tokens with byte_fallback.
//
// Ownership: owns its pieces. Thread-safety: immutable; tokenize() may run concurrently.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/pipeline.h"
#include "tokenizer/vocab.h"

namespace loom::tokenizer {

class UnigramModel final : public Model {
 public:
  // `pieces[i]` = (token, log-probability) of id i. Throws loom::Error when unk_id is out of
  // range.
  UnigramModel(std::vector<std::pair<std::string, double>> pieces, std::optional<int32_t> unk_id,
               bool byte_fallback);

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
  std::vector<double> scores_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_;
  size_t max_piece_bytes_ = 0;
  double unk_score_ = 0;
};

}  // namespace loom::tokenizer
