// HF tokenizer.json component builders: normalizers, pre-tokenizers, post-processors,
// decoders. Field names and defaults follow the serde definitions of HF `tokenizers`.
#include "tokenizer/hf_json_components.h"

#include <cctype>

#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {

std::string type_of(const JsonCursor& json) {
  return json.at("type").string();
}

// Compiles a regex, turning a compile failure into an error at this JSON path.
Regex compile(const JsonCursor& json, const std::string& pattern, bool literal) {
  try {
    return literal ? Regex::literal(pattern) : Regex(pattern);
  } catch (const Error& e) {
    json.fail(ErrorCode::kUnsupported, e.what());
  }
}

// A `pattern` field: {"String": "..."} or {"Regex": "..."}.
Regex pattern_of(const JsonCursor& json) {
  JsonCursor pattern = json.at("pattern");
  if (auto s = pattern.find("String")) return compile(*s, s->string(), true);
  if (auto r = pattern.find("Regex")) return compile(*r, r->string(), false);
  pattern.fail(ErrorCode::kCorruption, "expected {\"String\": ...} or {\"Regex\": ...}");
}

SplitBehavior behavior_of(const JsonCursor& json, const std::string& key, SplitBehavior fallback) {
  auto b = json.find(key);
  if (!b) return fallback;
  std::string name = b->string();
  // HF serialises these in PascalCase; accept lowercase spellings too.
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "removed") return SplitBehavior::kRemoved;
  if (name == "isolated") return SplitBehavior::kIsolated;
  if (name == "merged_with_previous" || name == "mergedwithprevious")
    return SplitBehavior::kMergedWithPrevious;
  if (name == "merged_with_next" || name == "mergedwithnext") return SplitBehavior::kMergedWithNext;
  if (name == "contiguous") return SplitBehavior::kContiguous;
  b->fail(ErrorCode::kCorruption, "unknown split behavior '" + b->string() + "'");
}

// Metaspace's prepend scheme; older files only have add_prefix_space.
PrependScheme prepend_scheme_of(const JsonCursor& json) {
  if (auto s = json.find("prepend_scheme")) {
    std::string v = s->string();
    if (v == "always") return PrependScheme::kAlways;
    if (v == "first") return PrependScheme::kFirst;
    if (v == "never") return PrependScheme::kNever;
    s->fail(ErrorCode::kCorruption, "unknown prepend_scheme '" + v + "'");
  }
  return json.bool_or("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

std::string single_char(const JsonCursor& json) {
  std::string s = json.string();
  size_t pos = 0;
  if (s.empty() || (next_code_point(s, pos), pos != s.size()))
    json.fail(ErrorCode::kCorruption, "expected a single character");
  return s;
}

template <typename T, typename Build>
std::vector<std::unique_ptr<T>> build_list(const JsonCursor& list, Build build) {
  std::vector<std::unique_ptr<T>> out;
  for (size_t i = 0; i < list.array_size(); ++i) {
    if (auto child = build(list[i])) out.push_back(std::move(child));
  }
  return out;
}

}  // namespace

std::unique_ptr<Normalizer> build_normalizer(const JsonCursor& json) {
  if (json.is_null()) return nullptr;
  std::string type = type_of(json);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(pattern_of(json), json.at("content").string());
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(json.at("prepend").string());
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(json.bool_or("strip_left", true),
                                             json.bool_or("strip_right", true));
  }
  if (type == "BertNormalizer") {
    bool lowercase = json.bool_or("lowercase", true);
    return std::make_unique<BertNormalizer>(json.bool_or("clean_text", true),
                                            json.bool_or("handle_chinese_chars", true),
                                            json.bool_or("strip_accents", lowercase), lowercase);
  }
  if (type == "Sequence") {
    return std::make_unique<SequenceNormalizer>(
        build_list<Normalizer>(json.at("normalizers"), build_normalizer));
  }
  json.at("type").fail(ErrorCode::kUnsupported, "normalizer type '" + type + "' is not supported");
}

std::unique_ptr<PreTokenizer> build_pre_tokenizer(const JsonCursor& json) {
  if (json.is_null()) return nullptr;
  std::string type = type_of(json);
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(
        pattern_of(json), behavior_of(json, "behavior", SplitBehavior::kIsolated),
        json.bool_or("invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(json.bool_or("add_prefix_space", true),
                                                   json.bool_or("use_regex", true));
  }
  if (type == "Metaspace") {
    std::string replacement = "\xE2\x96\x81";  // U+2581, SentencePiece's space marker
    if (auto r = json.find("replacement")) replacement = single_char(*r);
    return std::make_unique<MetaspacePreTokenizer>(replacement, prepend_scheme_of(json),
                                                   json.bool_or("split", true));
  }
  if (type == "Digits") {
    return std::make_unique<DigitsPreTokenizer>(json.bool_or("individual_digits", false));
  }
  if (type == "Punctuation") {
    return std::make_unique<PunctuationPreTokenizer>(
        behavior_of(json, "behavior", SplitBehavior::kIsolated));
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPreTokenizer>();
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "Sequence") {
    return std::make_unique<SequencePreTokenizer>(
        build_list<PreTokenizer>(json.at("pretokenizers"), build_pre_tokenizer));
  }
  json.at("type").fail(ErrorCode::kUnsupported,
                       "pre_tokenizer type '" + type + "' is not supported");
}

namespace {
// BertProcessing/RobertaProcessing store special tokens as ["[CLS]", 101].
int32_t token_pair_id(const JsonCursor& json) {
  if (json.array_size() != 2) json.fail(ErrorCode::kCorruption, "expected [token, id]");
  return json[1].id();
}
}  // namespace

std::unique_ptr<PostProcessor> build_post_processor(const JsonCursor& json) {
  if (json.is_null()) return nullptr;
  std::string type = type_of(json);
  if (type == "ByteLevel") return std::make_unique<IdentityPostProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    return std::make_unique<WrapPostProcessor>(token_pair_id(json.at("cls")),
                                               token_pair_id(json.at("sep")));
  }
  if (type == "TemplateProcessing") {
    JsonCursor single = json.at("single");
    JsonCursor specials = json.at("special_tokens");
    std::vector<TemplatePostProcessor::Item> items;
    for (size_t i = 0; i < single.array_size(); ++i) {
      JsonCursor piece = single[i];
      if (piece.find("Sequence")) {
        items.push_back({true, {}});
        continue;
      }
      auto special = piece.find("SpecialToken");
      if (!special) piece.fail(ErrorCode::kCorruption, "expected Sequence or SpecialToken");
      std::string name = special->at("id").string();
      JsonCursor entry = specials.at(name);
      JsonCursor ids = entry.at("ids");
      TemplatePostProcessor::Item item;
      for (size_t k = 0; k < ids.array_size(); ++k) item.ids.push_back(ids[k].id());
      items.push_back(std::move(item));
    }
    return std::make_unique<TemplatePostProcessor>(std::move(items));
  }
  if (type == "Sequence") {
    return std::make_unique<SequencePostProcessor>(
        build_list<PostProcessor>(json.at("processors"), build_post_processor));
  }
  json.at("type").fail(ErrorCode::kUnsupported,
                       "post_processor type '" + type + "' is not supported");
}

std::unique_ptr<Decoder> build_decoder(const JsonCursor& json) {
  if (json.is_null()) return nullptr;
  std::string type = type_of(json);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    std::string replacement = "\xE2\x96\x81";
    if (auto r = json.find("replacement")) replacement = single_char(*r);
    return std::make_unique<MetaspaceDecoder>(replacement, prepend_scheme_of(json));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    JsonCursor content = json.at("content");
    std::string c = single_char(content);
    size_t pos = 0;
    char32_t cp = next_code_point(c, pos);
    auto count = [&](const char* key) {
      int64_t v = json.at(key).integer();
      if (v < 0) json.at(key).fail(ErrorCode::kCorruption, "expected a count >= 0");
      return static_cast<size_t>(v);
    };
    return std::make_unique<StripDecoder>(cp, count("start"), count("stop"));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(pattern_of(json), json.at("content").string());
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(json.string_or("prefix", "##"),
                                              json.bool_or("cleanup", true));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(json.string_or("suffix", "</w>"));
  if (type == "Sequence") {
    return std::make_unique<SequenceDecoder>(
        build_list<Decoder>(json.at("decoders"), build_decoder));
  }
  json.at("type").fail(ErrorCode::kUnsupported, "decoder type '" + type + "' is not supported");
}

}  // namespace loom::tokenizer
