// libFuzzer target: arbitrary bytes (often invalid UTF-8) encoded by a byte-level BPE and a
// SentencePiece-style tokenizer with added tokens. Encode never throws on text; decode always
// returns valid UTF-8; streaming decode equals decode.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

using loom::tokenizer::Tokenizer;

const char* kByteLevel = R"({
  "added_tokens": [{"id": 9, "content": "<|x|>", "special": true}],
  "normalizer": {"type": "NFKC"},
  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3, "\u0120a": 4, "\u00c3": 5, "\u00a9": 6, "\u00c3\u00a9": 7, "c": 8},
            "merges": ["a b", "\u0120 a", "\u00c3 \u00a9"]}})";

const char* kSentencePiece = R"({
  "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true, "lstrip": true, "rstrip": true}],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
            "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3, "\u2581a": 4, "<0xE4>": 5, "<0xB8>": 6, "<0xAD>": 7, "<0x0A>": 8},
            "merges": [["\u2581", "a"]]}})";

void check(const Tokenizer& tok, std::string_view text) {
  auto ids = tok.encode(text, true);
  for (bool skip : {false, true}) {
    std::string full = tok.decode(ids, skip);
    if (!loom::tokenizer::is_valid_utf8(full)) __builtin_trap();
    loom::tokenizer::IncrementalDecoder stream(tok, skip);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.step(id);
    streamed += stream.finish();
    if (streamed != full) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer byte_level = Tokenizer::from_hf_json_text(kByteLevel, "byte_level");
  static const Tokenizer sentence_piece = Tokenizer::from_hf_json_text(kSentencePiece, "spm");
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check(byte_level, text);
  check(sentence_piece, text);
  return 0;
}
