// The second tokenizer front-end: a GGUF vocabulary (the `tokenizer.ggml.*` metadata that
// llama.cpp writes) mapped onto the same pipeline stages as tokenizer.json.
//
//   tokenizer.ggml.model = "llama": SentencePiece BPE. There is no merge list; a pair may merge
//       when the joined string is a token, best score first (ties leftmost), unknown characters
//       fall back to <0xXX> byte tokens. Spaces become U+2581, with one prepended unless
//       add_space_prefix is false.
//   "gpt2": byte-level BPE with the merge list; the pre-tokenizer regex is chosen by
//       tokenizer.ggml.pre (the regexes of the HF tokenizer.json files those names stand for).
//   "bert": WordPiece. llama.cpp stores word-initial pieces as "\u2581word" and continuation
//       pieces bare; they are mapped back to "word" and "##piece".
//
// A parsed GgufFile (io/gguf.h) is read by vocab_from_gguf; the GgufVocab in between keeps the
// mapping testable (and fuzzable) without a file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace loom {
class GgufFile;
}

namespace loom::tokenizer {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum class GgufTokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct GgufVocab {
  std::string model;                 // tokenizer.ggml.model
  std::string pre;                   // tokenizer.ggml.pre ("" = default)
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens (id = index)
  std::vector<float> scores;         // tokenizer.ggml.scores (llama)
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type (GgufTokenType values)
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right" (gpt2)
  std::optional<int32_t> bos, eos, unk, pad, sep, cls, mask;  // tokenizer.ggml.*_token_id
  std::optional<bool> add_bos, add_eos, add_space_prefix;     // tokenizer.ggml.add_*
  // tokenizer.loom.metaspace_prepend_scheme ("always" | "first"), written by loom convert for a
  // tokenizer.json with a Metaspace front: HF then prepends U+2581 only to text that does not
  // already start with a space (SentencePiece and llama.cpp always prepend one).
  std::string metaspace_prepend_scheme;
};

// Throws loom::Error: kUnsupported for an unknown model or pre-tokenizer name, kCorruption
// when arrays disagree in length or ids are out of range. Messages name the metadata key.
Tokenizer tokenizer_from_gguf(const GgufVocab& vocab);

// For writers: the tokenizer.ggml.pre name (as llama.cpp's converter writes it) whose
// pre-tokenizer is exactly these Split regexes (Isolated, in order) followed by a ByteLevel
// mapping without regex, e.g. qwen3's one regex -> "qwen2", llama3's -> "llama-bpe". nullopt
// when no name stands for them.
std::optional<std::string> gguf_pre_for_split_patterns(const std::vector<std::string>& patterns);

// Copies the tokenizer.ggml.* metadata of `file` into a GgufVocab. A value of the wrong type
// (e.g. a number among the tokens) is kCorruption naming the key and index.
GgufVocab vocab_from_gguf(const GgufFile& file);
// tokenizer_from_gguf(vocab_from_gguf(file)); kNotFound when the file has no
// tokenizer.ggml.model. Errors are prefixed with the file's path.
Tokenizer tokenizer_from_gguf(const GgufFile& file);

}  // namespace loom::tokenizer
