// GgufFile -> GgufVocab: the only part of the tokenizer layer that knows the io layer.
#include <cstdint>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"

namespace loom::tokenizer {

namespace {

template <typename Convert>
void read_array(const GgufFile& file, const char* key, Convert convert) {
  const GgufArray* a = file.get_array(key);  // kCorruption naming the key if not an array
  if (a == nullptr) return;
  for (size_t i = 0; i < a->items.size(); ++i) {
    if (!convert(a->items[i])) {
      fail(ErrorCode::kCorruption, "{}: {}[{}]: unexpected value type {}", file.path(), key, i,
           gguf_type_name(a->items[i].type()));
    }
  }
}

std::optional<int32_t> id_of(const GgufFile& file, const char* key) {
  auto value = file.get_int(key);
  if (!value) return std::nullopt;
  // Some converters write -1 (or u32 0xFFFFFFFF) for "none"; llama.cpp then has no such token.
  if (*value < 0 || *value > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(*value);
}

}  // namespace

GgufVocab vocab_from_gguf(const GgufFile& file) {
  GgufVocab v;
  v.model = file.get_string("tokenizer.ggml.model").value_or("");
  v.pre = file.get_string("tokenizer.ggml.pre").value_or("");
  read_array(file, "tokenizer.ggml.tokens", [&](const GgufValue& item) {
    const std::string* s = item.as_string();
    if (s == nullptr) return false;
    v.tokens.push_back(*s);
    return true;
  });
  read_array(file, "tokenizer.ggml.scores", [&](const GgufValue& item) {
    auto d = item.as_double();
    if (!d) return false;
    v.scores.push_back(static_cast<float>(*d));
    return true;
  });
  read_array(file, "tokenizer.ggml.token_type", [&](const GgufValue& item) {
    auto t = item.as_int();
    if (!t || *t < 0 || *t > static_cast<int64_t>(GgufTokenType::kByte)) return false;
    v.token_types.push_back(static_cast<int32_t>(*t));
    return true;
  });
  read_array(file, "tokenizer.ggml.merges", [&](const GgufValue& item) {
    const std::string* s = item.as_string();
    if (s == nullptr) return false;
    v.merges.push_back(*s);
    return true;
  });
  v.bos = id_of(file, "tokenizer.ggml.bos_token_id");
  v.eos = id_of(file, "tokenizer.ggml.eos_token_id");
  v.unk = id_of(file, "tokenizer.ggml.unknown_token_id");
  v.pad = id_of(file, "tokenizer.ggml.padding_token_id");
  v.sep = id_of(file, "tokenizer.ggml.seperator_token_id");  // sic: llama.cpp's spelling
  v.cls = id_of(file, "tokenizer.ggml.cls_token_id");
  v.mask = id_of(file, "tokenizer.ggml.mask_token_id");
  v.add_bos = file.get_bool("tokenizer.ggml.add_bos_token");
  v.add_eos = file.get_bool("tokenizer.ggml.add_eos_token");
  v.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix");
  v.metaspace_prepend_scheme =
      file.get_string("tokenizer.loom.metaspace_prepend_scheme").value_or("");
  return v;
}

Tokenizer tokenizer_from_gguf(const GgufFile& file) {
  if (file.find("tokenizer.ggml.model") == nullptr) {
    fail(ErrorCode::kNotFound, "{}: no tokenizer.ggml.model (the file has no vocabulary)",
         file.path());
  }
  try {
    return tokenizer_from_gguf(vocab_from_gguf(file));
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(file.path())) throw;
    fail(e.code(), "{}: {}", file.path(), e.what());
  }
}

}  // namespace loom::tokenizer
