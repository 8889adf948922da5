// loom::tokenizer::Tokenizer — text <-> token ids, following the HF `tokenizers` pipeline:
//   added tokens (matched first) -> normalizer -> pre-tokenizer -> model -> post-processor,
//   and ids -> token strings -> decoder for the way back.
//
// A Tokenizer is built once from TokenizerParts by a loader: from_hf_json() reads a HF
// tokenizer.json; a GGUF loader fills the same parts from `tokenizer.ggml.*` metadata.
//
// Input text that is not valid UTF-8 is encoded as if each invalid sequence were U+FFFD
// (what Python's errors="replace" would have passed to HF). Malformed files give loom::Error.
//
// Ownership: owns every stage. Thread-safety: immutable after construction; encode(), decode()
// and the lookups may be called concurrently from any number of threads. An IncrementalDecoder
// is per-stream state (one per sequence, not shared) that refers to its Tokenizer, which must
// outlive it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/pipeline.h"

namespace loom::tokenizer {

struct SpecialTokenIds {
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::optional<int32_t> pad;
  std::optional<int32_t> unk;
};

// Everything a Tokenizer is made of; only `model` is required.
struct TokenizerParts {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Model> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  std::vector<AddedToken> added_tokens;
  SpecialTokenIds special;
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerParts parts);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Loads a HF tokenizer.json. When a tokenizer_config.json sits beside it, its bos/eos/pad/unk
  // token names fill special_ids(). Throws loom::Error naming the file and the JSON path of
  // the first problem (kNotFound, kIoError, kCorruption, kUnsupported).
  static Tokenizer from_hf_json(const std::filesystem::path& path);
  // The same from the text of a tokenizer.json already in memory; `source` names it in errors.
  // No tokenizer_config.json is consulted.
  static Tokenizer from_hf_json_text(std::string_view json, const std::string& source);

  // `add_special_tokens` runs the post-processor (e.g. prepends BOS). Added tokens in the text
  // (e.g. "<|im_end|>") are always recognised, as HF does.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // HF decode: unknown ids are skipped; special added tokens too when asked.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // The vocabulary string of `id` (e.g. "Ġworld", "▁Hello", "<0x0A>"), empty if unknown.
  std::string token_to_piece(int32_t id) const;
  // The bytes `id` adds to generated text in the middle of a stream (decode_chain_raw): a
  // partial UTF-8 character stays partial. nullopt for an unknown id.
  std::optional<std::string> token_bytes(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // One past the largest id (model vocab and added tokens): the embedding rows needed.
  size_t vocab_size() const;
  const SpecialTokenIds& special_ids() const { return special_; }
  bool is_special(int32_t id) const;
  const AddedVocabulary& added_vocabulary() const { return added_; }

 private:
  friend class IncrementalDecoder;
  const std::string* token_string(int32_t id) const;
  // A <0xXX> token that the decoder folds into a run of bytes with its neighbours.
  bool is_byte_run_token(int32_t id) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  SpecialTokenIds special_;
  bool byte_runs_ = false;  // decoder_->decodes_byte_runs()
};

// Streaming detokenizer. step() returns only text that is final: it never ends in the middle
// of a UTF-8 character (bytes are held back until the character is complete), text decoded
// from a run of <0xXX> byte tokens waits until the run ends (HF's ByteFallback turns a whole
// run into U+FFFDs when any byte of it is invalid, so a later byte can change earlier text),
// and it never changes later. After finish(), the concatenation of everything returned equals
// Tokenizer::decode(all ids, skip_special_tokens).
//
// It decodes a short window of recent ids and emits the difference between the window's text
// with and without the newest ids, so context-dependent decoders (a stripped leading space,
// byte-fallback runs) come out as in a full decode. Cost per step is O(window), not O(length).
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

  std::string step(int32_t id);
  // Flushes held-back text (an incomplete character at the very end becomes U+FFFD, as in
  // decode). The decoder can then be reused for a new stream after reset().
  std::string finish();
  void reset();
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // window start
  size_t read_offset_ = 0;    // ids before this are fully emitted
  std::string prefix_text_;   // decode(ids[prefix_offset_, read_offset_))
  std::string emitted_;       // everything returned so far
  // The last id that was not a skipped special token continued a byte-fallback run: a skipped
  // token adds nothing, so the run (and whether it is valid UTF-8) may go on past it.
  bool in_byte_run_ = false;
};

}  // namespace loom::tokenizer
