#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>

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
// DeepSeek LLM and DeepSeek Coder (v1): their tokenizer.json is a Sequence of Split (Isolated)
// pre-tokenizers: newlines, letter runs (an explicit Latin/Greek/Cyrillic/... class for LLM),
// punctuation, trailing spaces, CJK runs, then digits (runs for LLM, single digits for Coder).
const char* const kDeepseekLlmPatterns[] = {
    "[\r\n]",
    "\\s?[A-Za-z\xC2\xB5\xC3\x80-\xC3\x96\xC3\x98-\xC3\xB6\xC3\xB8-\xC6\xBA\xC6\xBC-"
    "\xC6\xBF\xC7\x84-\xCA\x93\xCA\x95-\xCA\xAF\xCD\xB0-\xCD\xB3\xCD\xB6\xCD\xB7\xCD\xBB-"
    "\xCD\xBD\xCD\xBF\xCE\x86\xCE\x88-\xCE\x8A\xCE\x8C\xCE\x8E-\xCE\xA1\xCE\xA3-\xCF\xB5\xCF\xB7-"
    "\xD2\x81\xD2\x8A-\xD4\xAF\xD4\xB1-\xD5\x96\xE1\x82\xA0-\xE1\x83\x85\xE1\x8E\xA0-"
    "\xE1\x8F\xB5\xE1\x8F\xB8-\xE1\x8F\xBD\xE1\xB2\x90-\xE1\xB2\xBA\xE1\xB2\xBD-"
    "\xE1\xB2\xBF\xE1\xB4\x80-\xE1\xB4\xAB\xE1\xB5\xAB-\xE1\xB5\xB7\xE1\xB5\xB9-"
    "\xE1\xB6\x9A\xE1\xB8\x80-\xE1\xBC\x95\xE1\xBC\x98-\xE1\xBC\x9D\xE1\xBC\xA0-"
    "\xE1\xBD\x85\xE1\xBD\x88-\xE1\xBD\x8D\xE1\xBD\x90-"
    "\xE1\xBD\x97\xE1\xBD\x99\xE1\xBD\x9B\xE1\xBD\x9D\xE1\xBD\x9F-\xE1\xBD\xBD\xE1\xBE\x80-"
    "\xE1\xBE\xB4\xE1\xBE\xB6-\xE1\xBE\xBC\xE1\xBE\xBE\xE1\xBF\x82-\xE1\xBF\x84\xE1\xBF\x86-"
    "\xE1\xBF\x8C\xE1\xBF\x90-\xE1\xBF\x93\xE1\xBF\x96-\xE1\xBF\x9B\xE1\xBF\xA0-"
    "\xE1\xBF\xAC\xE1\xBF\xB2-\xE1\xBF\xB4\xE1\xBF\xB6-"
    "\xE1\xBF\xBC\xE2\x84\x82\xE2\x84\x87\xE2\x84\x8A-\xE2\x84\x93\xE2\x84\x95\xE2\x84\x99-"
    "\xE2\x84\x9D\xE2\x84\xA4\xE2\x84\xA6\xE2\x84\xA8\xE2\x84\xAA-\xE2\x84\xAD\xE2\x84\xAF-"
    "\xE2\x84\xB4\xE2\x84\xB9\xE2\x84\xBC-\xE2\x84\xBF\xE2\x85\x85-"
    "\xE2\x85\x89\xE2\x85\x8E\xE2\x86\x83\xE2\x86\x84\xE2\xB0\x80-\xE2\xB1\xBB\xE2\xB1\xBE-"
    "\xE2\xB3\xA4\xE2\xB3\xAB-\xE2\xB3\xAE\xE2\xB3\xB2\xE2\xB3\xB3\xEA\x99\x80-"
    "\xEA\x99\xAD\xEA\x9A\x80-\xEA\x9A\x9B\xEA\x9C\xA2-\xEA\x9D\xAF\xEA\x9D\xB1-"
    "\xEA\x9E\x87\xEA\x9E\x8B-\xEA\x9E\x8E\xEA\xAD\xB0-\xEA\xAE\xBF\xEF\xAC\x80-"
    "\xEF\xAC\x86\xEF\xAC\x93-\xEF\xAC\x97\xEF\xBC\xA1-\xEF\xBC\xBA\xEF\xBD\x81-"
    "\xEF\xBD\x9A\xF0\x90\x90\x80-\xF0\x90\x91\x8F\xF0\x90\x92\xB0-"
    "\xF0\x90\x93\x93\xF0\x90\x93\x98-\xF0\x90\x93\xBB\xF0\x90\xB2\x80-"
    "\xF0\x90\xB2\xB2\xF0\x90\xB3\x80-\xF0\x90\xB3\xB2\xF0\x91\xA2\xA0-"
    "\xF0\x91\xA3\x9F\xF0\x9E\xA4\x80-\xF0\x9E\xA5\x83]+",
    "\\s?[!-/"
    ":-~\xEF\xBC\x81-\xEF\xBC\x8F\xEF\xBC\x9A-\xEF\xBD\x9E\xE2\x80\x98-\xE2\x80\x9F\xE3\x80\x80-"
    "\xE3\x80\x82]+",
    "\\s+$",
    "[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+",
    "\\p{N}+",
};
const char* const kDeepseekCoderPatterns[] = {
    "[\r\n]",      "\\s?\\p{L}+",
    "\\s?\\p{P}+", "[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+",
    "\\p{N}",
};

std::unique_ptr<PreTokenizer> split(const char* pattern) {
  return std::make_unique<SplitPreTokenizer>(Regex(pattern), SplitBehavior::kIsolated, false);
}

std::unique_ptr<PreTokenizer> sequence(std::vector<std::unique_ptr<PreTokenizer>> children) {
  return std::make_unique<SequencePreTokenizer>(std::move(children));
}

struct SplitPreEntry {
  std::vector<const char*> names;  // the first is what llama.cpp's converter writes
  std::vector<const char*> patterns;
};

// tokenizer.ggml.pre names whose pre-tokenizer is Split regexes (Isolated, in order) followed by
// the byte-level mapping without its own regex.
const std::vector<SplitPreEntry>& split_pre_tokenizers() {
  static const std::vector<SplitPreEntry> table = {
      {{"llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx"}, {kLlama3Pattern}},
      {{"qwen2", "qwen35", "deepseek-r1-qwen"}, {kQwen2Pattern}},
      {{"gpt-4o", "gpt-oss"}, {kGpt4oPattern}},
      {{"deepseek-v3"}, {std::begin(kDeepseekV3Patterns), std::end(kDeepseekV3Patterns)}},
      {{"deepseek-llm"}, {std::begin(kDeepseekLlmPatterns), std::end(kDeepseekLlmPatterns)}},
      {{"deepseek-coder"}, {std::begin(kDeepseekCoderPatterns), std::end(kDeepseekCoderPatterns)}},
  };
  return table;
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
  for (const SplitPreEntry& entry : split_pre_tokenizers()) {
    if (std::find(entry.names.begin(), entry.names.end(), pre) == entry.names.end()) continue;
    for (const char* p : entry.patterns) stages.push_back(split(p));
    stages.push_back(std::make_unique<ByteLevelPreTokenizer>(false, /*use_regex=*/false));
    return sequence(std::move(stages));
  }
  fail(ErrorCode::kUnsupported, "tokenizer.ggml.pre: pre-tokenizer '{}' is not supported", pre);
}

// A regex as tokenizer.json may spell it: "\\r" or a raw CR mean the same to the regex engine.
std::string canonical_pattern(std::string_view p) {
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size() && (p[i + 1] == 'r' || p[i + 1] == 'n')) {
      out += p[i + 1] == 'r' ? '\r' : '\n';
      ++i;
    } else if (p[i] == '\\' && i + 1 < p.size()) {
      out.append(p, i, 2);  // any other escape stays, e.g. an escaped backslash before an r
      ++i;
    } else {
      out += p[i];
    }
  }
  return out;
}

GgufTokenType type_of(const GgufVocab& v, size_t id) {
  return id < v.token_types.size() ? static_cast<GgufTokenType>(v.token_types[id])
                                   : GgufTokenType::kNormal;
}

// Control, unknown and user-defined tokens are matched in the raw text like HF added tokens (HF
// lists <unk> among its special added tokens; llama.cpp splits the text on all three types).
std::vector<AddedToken> added_tokens(const GgufVocab& v, const std::vector<std::string>& strings) {
  std::vector<AddedToken> out;
  for (size_t id = 0; id < strings.size(); ++id) {
    GgufTokenType t = type_of(v, id);
    if ((t != GgufTokenType::kControl && t != GgufTokenType::kUserDefined &&
         t != GgufTokenType::kUnknown) ||
        strings[id].empty())
      continue;
    AddedToken token;
    token.id = static_cast<int32_t>(id);
    token.content = strings[id];
    token.special = t != GgufTokenType::kUserDefined;
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
  return Vocab(std::move(entries), strings.size());  // ids are positions: dense
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
  if (!v.metaspace_prepend_scheme.empty() && space_prefix) {
    PrependScheme scheme = PrependScheme::kAlways;
    if (v.metaspace_prepend_scheme == "first") {
      scheme = PrependScheme::kFirst;
    } else if (v.metaspace_prepend_scheme != "always") {
      fail(ErrorCode::kUnsupported,
           "tokenizer.loom.metaspace_prepend_scheme: '{}' is not supported",
           v.metaspace_prepend_scheme);
    }
    parts.pre_tokenizer = std::make_unique<MetaspacePreTokenizer>(kSpaceMarker, scheme, false);
  } else {
    std::vector<std::unique_ptr<Normalizer>> norm;
    if (space_prefix) norm.push_back(std::make_unique<PrependNormalizer>(kSpaceMarker));
    norm.push_back(std::make_unique<ReplaceNormalizer>(Regex::literal(" "), kSpaceMarker));
    parts.normalizer = std::make_unique<SequenceNormalizer>(std::move(norm));
  }

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

std::optional<std::string> gguf_pre_for_split_patterns(const std::vector<std::string>& patterns) {
  for (const SplitPreEntry& entry : split_pre_tokenizers()) {
    if (entry.patterns.size() != patterns.size()) continue;
    bool same = true;
    for (size_t i = 0; i < patterns.size() && same; ++i) {
      same = canonical_pattern(entry.patterns[i]) == canonical_pattern(patterns[i]);
    }
    if (same) return entry.names.front();
  }
  return std::nullopt;
}

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
