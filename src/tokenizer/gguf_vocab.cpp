#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/wordpiece_model.h"

namespace loom::tokenizer {

namespace {

constexpr const char* kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Pre-tokenizer regexes of the HF tokenizer.json files that llama.cpp's tokenizer.ggml.pre
// names stand for (Split, Isolated, in this order, before the byte-level mapping).
const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt4oPattern =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'"
    "s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}"
    "\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kDeepseekV3Patterns[] = {
    "\\p{N}{1,3}",
    "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+",
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

std::unique_ptr<PreTokenizer> split(const char* pattern) {
  return std::make_unique<SplitPreTokenizer>(Regex(pattern), SplitBehavior::kIsolated, false);
}

std::unique_ptr<PreTokenizer> sequence(std::vector<std::unique_ptr<PreTokenizer>> children) {
  return std::make_unique<SequencePreTokenizer>(std::move(children));
}

// The byte-level pre-tokenizer for a tokenizer.ggml.pre name.
std::unique_ptr<PreTokenizer> byte_level_pre_tokenizer(const std::string& pre) {
  std::vector<std::unique_ptr<PreTokenizer>> stages;
  if (pre.empty() || pre == "default" || pre == "gpt-2" || pre == "gpt2" || pre == "mpt" ||
      pre == "gpt-neox" || pre == "olmo" || pre == "jais") {
    stages.push_back(std::make_unique<ByteLevelPreTokenizer>(false, /*use_regex=*/true));
    return sequence(std::move(stages));
  }
  if (pre == "starcoder" || pre == "refact") {
    stages.push_back(std::make_unique<DigitsPreTokenizer>(/*individual_digits=*/true));
    stages.push_back(std::make_unique<ByteLevelPreTokenizer>(false, true));
    return sequence(std::move(stages));
  }
  if (pre == "falcon") {
    stages.push_back(std::make_unique<PunctuationPreTokenizer>(SplitBehavior::kContiguous));
    stages.push_back(std::make_unique<ByteLevelPreTokenizer>(false, true));
    stages.push_back(std::make_unique<DigitsPreTokenizer>(false));
    stages.push_back(split("[0-9][0-9][0-9]"));
    return sequence(std::move(stages));
  }
  if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3" || pre == "smaug-bpe" ||
      pre == "dbrx") {
    stages.push_back(split(kLlama3Pattern));
  } else if (pre == "qwen2" || pre == "qwen35" || pre == "deepseek-r1-qwen") {
    stages.push_back(split(kQwen2Pattern));
  } else if (pre == "gpt-4o" || pre == "gpt-oss") {
    stages.push_back(split(kGpt4oPattern));
  } else if (pre == "deepseek-v3") {
    for (const char* p : kDeepseekV3Patterns) stages.push_back(split(p));
  } else {
    fail(ErrorCode::kUnsupported, "tokenizer.ggml.pre: pre-tokenizer '{}' is not supported", pre);
  }
  stages.push_back(std::make_unique<ByteLevelPreTokenizer>(false, /*use_regex=*/false));
  return sequence(std::move(stages));
}

GgufTokenType type_of(const GgufVocab& v, size_t id) {
  return id < v.token_types.size() ? static_cast<GgufTokenType>(v.token_types[id])
                                   : GgufTokenType::kNormal;
}

// Control and user-defined tokens are matched in the raw text like HF added tokens.
std::vector<AddedToken> added_tokens(const GgufVocab& v, const std::vector<std::string>& strings) {
  std::vector<AddedToken> out;
  for (size_t id = 0; id < strings.size(); ++id) {
    GgufTokenType t = type_of(v, id);
    if ((t != GgufTokenType::kControl && t != GgufTokenType::kUserDefined) || strings[id].empty())
      continue;
    AddedToken token;
    token.id = static_cast<int32_t>(id);
    token.content = strings[id];
    token.special = t == GgufTokenType::kControl;
    out.push_back(std::move(token));
  }
  return out;
}

Vocab vocab_of(const std::vector<std::string>& strings) {
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(strings.size());
  // The first id wins for a duplicated string, as in a tokenizer.json vocab object.
  StringMap<int32_t> seen;
  for (size_t id = 0; id < strings.size(); ++id) {
    if (!seen.emplace(strings[id], static_cast<int32_t>(id)).second) continue;
    entries.emplace_back(strings[id], static_cast<int32_t>(id));
  }
  return Vocab(std::move(entries));
}

std::unique_ptr<PostProcessor> bos_eos_processor(const GgufVocab& v, bool default_bos) {
  std::vector<TemplatePostProcessor::Item> items;
  if (v.add_bos.value_or(default_bos) && v.bos) items.push_back({false, {*v.bos}});
  items.push_back({true, {}});
  if (v.add_eos.value_or(false) && v.eos) items.push_back({false, {*v.eos}});
  return std::make_unique<TemplatePostProcessor>(std::move(items));
}

// SentencePiece BPE: every split of a normal token into two tokens is a merge, ranked by the
// token's score (higher first; equal scores share a rank so position breaks ties, as in
// SentencePiece's own merge loop).
std::vector<BpeMerge> spm_merges(const GgufVocab& v, const Vocab& vocab) {
  std::vector<float> distinct(v.scores.begin(), v.scores.end());
  std::sort(distinct.begin(), distinct.end(), std::greater<>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<BpeMerge> merges;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    GgufTokenType t = type_of(v, id);
    if (t != GgufTokenType::kNormal && t != GgufTokenType::kUserDefined) continue;
    const std::string& token = v.tokens[id];
    float score = id < v.scores.size() ? v.scores[id] : 0.0f;
    auto rank = static_cast<uint32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), score, std::greater<>()) -
        distinct.begin());
    for (size_t cut = 1; cut < token.size(); ++cut) {
      if ((static_cast<unsigned char>(token[cut]) & 0xC0) == 0x80) continue;  // mid-character
      auto left = vocab.find(std::string_view(token).substr(0, cut));
      auto right = vocab.find(std::string_view(token).substr(cut));
      if (!left || !right) continue;
      if (type_of(v, *left) == GgufTokenType::kByte || type_of(v, *right) == GgufTokenType::kByte)
        continue;
      merges.push_back({*left, *right, static_cast<int32_t>(id), rank});
    }
  }
  return merges;
}

Tokenizer llama_tokenizer(const GgufVocab& v) {
  TokenizerParts parts;
  parts.special = {v.bos, v.eos, v.pad, v.unk};
  bool space_prefix = v.add_space_prefix.value_or(true);
  std::vector<std::unique_ptr<Normalizer>> norm;
  if (space_prefix) norm.push_back(std::make_unique<PrependNormalizer>(kSpaceMarker));
  norm.push_back(std::make_unique<ReplaceNormalizer>(Regex::literal(" "), kSpaceMarker));
  parts.normalizer = std::make_unique<SequenceNormalizer>(std::move(norm));

  Vocab vocab = vocab_of(v.tokens);
  auto merges = spm_merges(v, vocab);
  BpeOptions options;
  options.byte_fallback = true;
  options.fuse_unk = true;
  if (v.unk) options.unk_token = v.tokens[*v.unk];
  parts.model = std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options));
  parts.post_processor = bos_eos_processor(v, /*default_bos=*/true);

  std::vector<std::unique_ptr<Decoder>> dec;
  dec.push_back(std::make_unique<ReplaceDecoder>(Regex::literal(kSpaceMarker), " "));
  dec.push_back(std::make_unique<ByteFallbackDecoder>());
  dec.push_back(std::make_unique<FuseDecoder>());
  if (space_prefix) dec.push_back(std::make_unique<StripDecoder>(' ', 1, 0));
  parts.decoder = std::make_unique<SequenceDecoder>(std::move(dec));
  parts.added_tokens = added_tokens(v, v.tokens);
  return Tokenizer(std::move(parts));
}

Tokenizer gpt2_tokenizer(const GgufVocab& v) {
  TokenizerParts parts;
  parts.special = {v.bos, v.eos, v.pad, v.unk};
  parts.pre_tokenizer = byte_level_pre_tokenizer(v.pre);
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const std::string& m = v.merges[i];
    size_t space = m.find(' ', 1);  // a merge's left part may itself start with a space
    if (space == std::string::npos) {
      fail(ErrorCode::kCorruption, "tokenizer.ggml.merges[{}]: expected \"left right\", got '{}'",
           i, m);
    }
    merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }
  Vocab vocab = vocab_of(v.tokens);
  std::vector<BpeMerge> resolved;
  try {
    resolved = resolve_bpe_merges(vocab, merges, "");
  } catch (const Error& e) {
    fail(e.code(), "tokenizer.ggml.{}", e.what());
  }
  BpeOptions options;
  options.ignore_merges = v.pre == "llama3" || v.pre == "llama-bpe" || v.pre == "gpt-4o";
  parts.model = std::make_unique<BpeModel>(std::move(vocab), resolved, std::move(options));
  parts.post_processor = bos_eos_processor(v, /*default_bos=*/false);
  parts.decoder = std::make_unique<ByteLevelDecoder>();
  parts.added_tokens = added_tokens(v, v.tokens);
  return Tokenizer(std::move(parts));
}

Tokenizer bert_tokenizer(const GgufVocab& v) {
  // Undo llama.cpp's conversion: "\u2581word" was "word", a bare piece was "##piece".
  std::vector<std::string> strings;
  strings.reserve(v.tokens.size());
  const std::string marker = kSpaceMarker;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const std::string& t = v.tokens[id];
    GgufTokenType type = type_of(v, id);
    if (type == GgufTokenType::kControl || type == GgufTokenType::kUnknown ||
        (t.size() > 1 && t.front() == '[' && t.back() == ']')) {
      strings.push_back(t);
    } else if (t.compare(0, marker.size(), marker) == 0) {
      strings.push_back(t.substr(marker.size()));
    } else {
      strings.push_back("##" + t);
    }
  }
  if (!v.unk) fail(ErrorCode::kCorruption, "tokenizer.ggml.unknown_token_id: missing for bert");
  TokenizerParts parts;
  parts.special = {v.cls, v.sep, v.pad, v.unk};
  parts.normalizer = std::make_unique<BertNormalizer>(true, true, true, true);
  parts.pre_tokenizer = std::make_unique<BertPreTokenizer>();
  std::string unk = strings[*v.unk];
  parts.model = std::make_unique<WordPieceModel>(vocab_of(strings), unk, "##", 100);
  if (v.cls && v.sep) parts.post_processor = std::make_unique<WrapPostProcessor>(*v.cls, *v.sep);
  parts.decoder = std::make_unique<WordPieceDecoder>("##", true);
  parts.added_tokens = added_tokens(v, strings);
  return Tokenizer(std::move(parts));
}

void check_id(const GgufVocab& v, const std::optional<int32_t>& id, const char* key) {
  if (id && (*id < 0 || static_cast<size_t>(*id) >= v.tokens.size())) {
    fail(ErrorCode::kCorruption, "tokenizer.ggml.{}: id {} is outside the vocab of {} tokens", key,
         *id, v.tokens.size());
  }
}

}  // namespace

Tokenizer tokenizer_from_gguf(const GgufVocab& v) {
  if (v.tokens.empty()) fail(ErrorCode::kCorruption, "tokenizer.ggml.tokens: missing or empty");
  if (!v.scores.empty() && v.scores.size() != v.tokens.size()) {
    fail(ErrorCode::kCorruption, "tokenizer.ggml.scores: {} entries for {} tokens", v.scores.size(),
         v.tokens.size());
  }
  if (!v.token_types.empty() && v.token_types.size() != v.tokens.size()) {
    fail(ErrorCode::kCorruption, "tokenizer.ggml.token_type: {} entries for {} tokens",
         v.token_types.size(), v.tokens.size());
  }
  check_id(v, v.bos, "bos_token_id");
  check_id(v, v.eos, "eos_token_id");
  check_id(v, v.unk, "unknown_token_id");
  check_id(v, v.pad, "padding_token_id");
  check_id(v, v.sep, "seperator_token_id");
  check_id(v, v.cls, "cls_token_id");
  check_id(v, v.mask, "mask_token_id");

  auto build = [&]() -> Tokenizer {
    if (v.model == "llama") return llama_tokenizer(v);
    if (v.model == "gpt2") return gpt2_tokenizer(v);
    if (v.model == "bert") return bert_tokenizer(v);
    fail(ErrorCode::kUnsupported, "tokenizer.ggml.model: '{}' is not supported", v.model);
  };
  return build();
}

}  // namespace loom::tokenizer
