// The stages of the tokenizer pipeline, as the HF `tokenizers` library defines them:
//   text -> Normalizer -> PreTokenizer (splits into pieces) -> Model (piece -> ids)
//        -> PostProcessor (special tokens);   ids -> tokens -> Decoder -> text.
// Each stage is an immutable object built once by a loader (tokenizer.json today, GGUF
// metadata later); the concrete kinds live in normalizers.h, pre_tokenizers.h, *_model.h,
// post_processors.h and decoders.h.
//
// Thread-safety: every stage is immutable after construction and its const methods may be
// called concurrently from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/function_ref.h"

namespace loom::tokenizer {

// How much a stage can grow text: every stage states a factor g >= 1 such that its output
// never exceeds g * max(n, 1) bytes for n bytes in (a pre-tokenizer: all its pieces together;
// a decoder: each token). A Sequence multiplies its children's factors. Loaders refuse a
// pipeline whose factor exceeds kMaxTextGrowth: chained expansions (a Sequence of ByteLevel
// stages, of Replace rules) otherwise grow text exponentially, so that one encode of a short
// prompt would take gigabytes and minutes.
inline constexpr double kMaxTextGrowth = 1024;

// One pre-token. `at_start` is true only for the piece that begins at offset 0 of the
// original input: HF's Metaspace(prepend_scheme=first) adds its prefix only there.
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
  virtual double max_growth() const = 0;
};

// Receives the pieces a pre-tokenizer produces, one at a time.
using PieceSink = FunctionRef<void(Piece&&)>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits one piece, handing each non-empty result to `sink` in order. Pre-tokenizers map
  // pieces independently, so a whole pipeline streams piece by piece and never holds the
  // full list for a long input.
  virtual void split(Piece&& piece, PieceSink sink) const = 0;
  virtual double max_growth() const = 0;
  // Convenience for tests and tools: replaces `pieces` by their finer split.
  void pre_tokenize(std::vector<Piece>& pieces) const;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-token.
  virtual void tokenize(std::string_view piece, std::vector<int32_t>& ids) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // nullptr when `id` is not in the model's vocabulary.
  virtual const std::string* id_to_token(int32_t id) const = 0;
  virtual size_t vocab_size() const = 0;
  // One past the largest id (ids may have holes).
  virtual size_t id_bound() const = 0;
  virtual std::optional<int32_t> unk_id() const { return std::nullopt; }
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds special tokens around a single sequence when `add_special_tokens` is true.
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
  // The ids placed before/after the sequence (used to report bos/eos ids).
  virtual std::vector<int32_t> prefix_ids() const { return {}; }
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF `decode_chain`: transforms the token strings; the caller concatenates the result.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  virtual double max_growth() const = 0;
  // Whether <0xXX> tokens are decoded as runs of bytes (ByteFallback somewhere in the chain).
  virtual bool decodes_byte_runs() const { return false; }
  // The same as decode_chain for tokens in the middle of a stream, keeping raw bytes: no
  // U+FFFD for a partial UTF-8 character, no stripping or dropping of what only the start of a
  // whole text loses. What a token adds to generated text, for the grammar engine.
  virtual void decode_chain_raw(std::vector<std::string>& tokens) const { decode_chain(tokens); }
};

}  // namespace loom::tokenizer
