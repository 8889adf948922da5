// Byte-pair-encoding model (HF `tokenizers` BPE): covers byte-level BPE (GPT-2, Llama 3,
// Qwen) and SentencePiece-style BPE (Llama 2, Gemma) with byte_fallback and fused unknowns.
//
// Merging uses a rank hash map keyed by the id pair and a priority queue over a linked list of
// symbols, so a word of n symbols costs O(n log n). Results for short words are kept in a
// bounded per-thread cache.
//
// Ownership: owns vocab and merges. Thread-safety: immutable after construction; tokenize() may
// run concurrently (its cache is thread-local, see bpe_model.cpp).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/merge_boundaries.h"
#include "tokenizer/pair_map.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/vocab.h"

namespace loom::tokenizer {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;  // unknown chars become <0xXX> byte tokens
  bool ignore_merges = false;  // a piece that is itself in the vocab is taken whole
  // Cut words longer than 256 bytes where no merge can cross (same ids, much faster; see
  // merge_boundaries.h). Off only to check that claim.
  bool chunk_long_words = true;
};

// One merge rule by id: left + right -> result, applied in increasing `rank` (equal ranks:
// leftmost first). SentencePiece vocabularies without a merge list (GGUF "llama") rank
// merges by the score of the result, so ties are real there.
struct BpeMerge {
  int32_t left;
  int32_t right;
  int32_t result;
  uint32_t rank;
};

// Resolves merges given as token strings, in priority order (rank = index). With a
// continuing-subword prefix the right part loses it in the merged token. Throws loom::Error
// naming the merge index when a token is missing from the vocab.
std::vector<BpeMerge> resolve_bpe_merges(
    const Vocab& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    const std::string& continuing_subword_prefix);

class BpeModel final : public Model {
 public:
  // Merges given by id with explicit ranks; the first rule for a pair wins.
  BpeModel(Vocab vocab, const std::vector<BpeMerge>& merges, BpeOptions options);

  void tokenize(std::string_view piece, std::vector<int32_t>& ids) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  size_t id_bound() const override { return vocab_.id_bound(); }
  std::optional<int32_t> unk_id() const override { return unk_id_; }

 private:
  static constexpr size_t kLongWordBytes = 256;  // longer words are cut into chunks
  static constexpr size_t kChunkBytes = 16;      // a chunk ends at the first safe cut after this
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;
  // Cached merge of one word (or one independent chunk of a long word).
  void tokenize_word(std::string_view word, std::vector<int32_t>& ids) const;
  // Merges a long word chunk by chunk, cutting only where no merge can cross.
  void tokenize_long_word(std::string_view word, std::vector<int32_t>& ids) const;

  Vocab vocab_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  PairMap merges_;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>", -1 when absent
  uint64_t serial_;                      // identifies this model in the per-thread word caches
  // Built on the first long word (most inputs never need it).
  mutable std::once_flag boundaries_once_;
  mutable std::unique_ptr<MergeBoundaryFilter> boundaries_;
};

}  // namespace loom::tokenizer
