// Tokenizer::from_hf_json and the model builders for HF tokenizer.json (BPE, WordPiece,
// Unigram). Every error names the file and the JSON path where it was found.
#include <fstream>
#include <sstream>

#include "tokenizer/bpe_model.h"
#include "tokenizer/hf_json_components.h"
#include "tokenizer/hf_json_tables.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unigram_model.h"
#include "tokenizer/wordpiece_model.h"

namespace loom::tokenizer {

namespace {

// Runs `build`, re-throwing any loom::Error raised without location as one at `json`.
template <typename Build>
auto located(const JsonCursor& json, Build build) {
  try {
    return build();
  } catch (const Error& e) {
    std::string what = e.what();
    if (what.rfind(json.file(), 0) == 0) throw;  // already located
    json.fail(e.code(), what);
  }
}

// `extra_ids`: how many ids the file's added_tokens assign beside this vocabulary. `tables`:
// what read_tokenizer_json took out of the document, when it did.
Vocab vocab_from_object(const JsonCursor& json, size_t extra_ids, ModelTables* tables) {
  if (!json.value().is_object()) json.fail(ErrorCode::kCorruption, "expected an object");
  std::vector<std::pair<std::string, int32_t>> entries;
  if (tables && tables->vocab) {
    entries = std::move(*tables->vocab);  // checked and ordered as below by the reader
    tables->vocab.reset();
  } else {
    entries.reserve(json.value().size());
    for (auto it = json.value().begin(); it != json.value().end(); ++it) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT32_MAX) {
        JsonCursor(*it, json.path() + "[\"" + it.key() + "\"]", json.file())
            .fail(ErrorCode::kCorruption, "expected a non-negative integer id");
      }
      entries.emplace_back(it.key(), static_cast<int32_t>(it->get<int64_t>()));
    }
  }
  const size_t limit = vocab_id_limit(entries.size(), extra_ids);
  return located(json, [&] { return Vocab(std::move(entries), limit); });
}

std::unique_ptr<Model> build_bpe(const JsonCursor& json, size_t extra_ids, ModelTables* tables) {
  Vocab vocab = vocab_from_object(json.at("vocab"), extra_ids, tables);
  std::vector<std::pair<std::string, std::string>> merges;
  if (tables && tables->merges) {
    merges = std::move(*tables->merges);
    tables->merges.reset();
  } else if (auto list = json.find("merges")) {
    merges.reserve(list->array_size());
    for (size_t i = 0; i < list->array_size(); ++i) {
      JsonCursor merge = (*list)[i];
      if (merge.value().is_string()) {
        // Legacy form "a b": tokens never contain a space in this form.
        std::string s = merge.string();
        size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          merge.fail(ErrorCode::kCorruption, "expected \"left right\"");
        merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else {
        if (merge.array_size() != 2) merge.fail(ErrorCode::kCorruption, "expected [left, right]");
        merges.emplace_back(merge[0].string(), merge[1].string());
      }
    }
  }
  BpeOptions options;
  if (auto unk = json.find("unk_token")) options.unk_token = unk->string();
  options.continuing_subword_prefix = json.string_or("continuing_subword_prefix", "");
  options.end_of_word_suffix = json.string_or("end_of_word_suffix", "");
  options.fuse_unk = json.bool_or("fuse_unk", false);
  options.byte_fallback = json.bool_or("byte_fallback", false);
  options.ignore_merges = json.bool_or("ignore_merges", false);
  // dropout only matters for training-time regularisation; inference never samples it.
  return located(json, [&]() -> std::unique_ptr<Model> {
    auto resolved = resolve_bpe_merges(vocab, merges, options.continuing_subword_prefix);
    return std::make_unique<BpeModel>(std::move(vocab), resolved, std::move(options));
  });
}

std::unique_ptr<Model> build_wordpiece(const JsonCursor& json, size_t extra_ids,
                                       ModelTables* tables) {
  Vocab vocab = vocab_from_object(json.at("vocab"), extra_ids, tables);
  std::string unk = json.string_or("unk_token", "[UNK]");
  std::string prefix = json.string_or("continuing_subword_prefix", "##");
  int64_t max_chars = json.int_or("max_input_chars_per_word", 100);
  return located(json, [&]() -> std::unique_ptr<Model> {
    return std::make_unique<WordPieceModel>(std::move(vocab), unk, prefix,
                                            static_cast<size_t>(std::max<int64_t>(max_chars, 0)));
  });
}

std::unique_ptr<Model> build_unigram(const JsonCursor& json) {
  JsonCursor list = json.at("vocab");
  std::vector<std::pair<std::string, double>> pieces;
  pieces.reserve(list.array_size());
  for (size_t i = 0; i < list.array_size(); ++i) {
    JsonCursor entry = list[i];
    if (entry.array_size() != 2) entry.fail(ErrorCode::kCorruption, "expected [piece, score]");
    pieces.emplace_back(entry[0].string(), entry[1].number());
  }
  std::optional<int32_t> unk_id;
  if (auto u = json.find("unk_id")) unk_id = u->id();
  bool byte_fallback = json.bool_or("byte_fallback", false);
  return located(json, [&]() -> std::unique_ptr<Model> {
    return std::make_unique<UnigramModel>(std::move(pieces), unk_id, byte_fallback);
  });
}

}  // namespace

std::unique_ptr<Model> build_model(const JsonCursor& json, size_t extra_ids, ModelTables* tables) {
  std::string type;
  if (auto t = json.find("type")) {
    type = t->string();
  } else if (json.find("merges")) {
    type = "BPE";  // old files omit the tag; infer from the fields present
  } else if (json.find("max_input_chars_per_word")) {
    type = "WordPiece";
  } else if (auto v = json.find("vocab"); v && v->value().is_array()) {
    type = "Unigram";
  } else {
    type = "BPE";
  }
  if (type == "BPE") return build_bpe(json, extra_ids, tables);
  if (type == "WordPiece") return build_wordpiece(json, extra_ids, tables);
  if (type == "Unigram") return build_unigram(json);
  json.at("type").fail(ErrorCode::kUnsupported, "model type '" + type + "' is not supported");
}

namespace {

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(ErrorCode::kCorruption, "{}: invalid JSON at byte {}: {}", source, e.byte, e.what());
  } catch (const nlohmann::json::exception& e) {
    // e.g. out_of_range 406: a number literal too large for a double (found by fuzzing).
    fail(ErrorCode::kCorruption, "{}: invalid JSON: {}", source, e.what());
  }
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    bool exists = std::filesystem::exists(path, ec);
    fail(exists ? ErrorCode::kIoError : ErrorCode::kNotFound, "{}: cannot open ({})", path.string(),
         exists ? "permission or I/O error" : "no such file");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return std::move(buffer).str();
}

nlohmann::json read_json(const std::filesystem::path& path) {
  return parse_json(read_text(path), path.string());
}

// tokenizer_config.json names special tokens either as a string or as {"content": ...}.
std::optional<std::string> config_token(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return std::nullopt;
}

// Refuses stages that could grow text without bound (see kMaxTextGrowth in pipeline.h).
template <typename Component>
void check_growth(const TokenizerParts& parts, Component&& component) {
  auto refuse = [](const JsonCursor& where, const std::string& what, double growth) {
    where.fail(ErrorCode::kUnsupported,
               fmt::format("{} can expand text up to {:.4g} times; loom refuses more than {} "
                           "(chained expanding stages, such as repeated ByteLevel or Replace "
                           "steps, grow text exponentially)",
                           what, growth, kMaxTextGrowth));
  };
  const double normalize = parts.normalizer ? parts.normalizer->max_growth() : 1.0;
  const double pre_tokenize = parts.pre_tokenizer ? parts.pre_tokenizer->max_growth() : 1.0;
  if (normalize > kMaxTextGrowth) refuse(component("normalizer"), "the normalizer", normalize);
  if (pre_tokenize > kMaxTextGrowth) {
    refuse(component("pre_tokenizer"), "the pre_tokenizer", pre_tokenize);
  }
  if (normalize * pre_tokenize > kMaxTextGrowth) {
    refuse(component("pre_tokenizer"),
           fmt::format("the normalizer (x{:.4g}) followed by the pre_tokenizer (x{:.4g})",
                       normalize, pre_tokenize),
           normalize * pre_tokenize);
  }
  const double decode = parts.decoder ? parts.decoder->max_growth() : 1.0;
  if (decode > kMaxTextGrowth) refuse(component("decoder"), "the decoder", decode);
}

TokenizerParts parts_from_json(const nlohmann::json& doc, const std::string& file,
                               ModelTables* tables) {
  JsonCursor root(doc, "", file);
  if (!doc.is_object()) root.fail(ErrorCode::kCorruption, "expected a JSON object");

  TokenizerParts parts;
  static const nlohmann::json null_value;
  auto optional_component = [&](const char* key) {
    auto c = root.find(key);
    return c ? *c : JsonCursor(null_value, key, file);
  };
  parts.normalizer = build_normalizer(optional_component("normalizer"));
  parts.pre_tokenizer = build_pre_tokenizer(optional_component("pre_tokenizer"));
  const auto added = root.find("added_tokens");
  const size_t added_count = added ? added->array_size() : 0;
  parts.model = build_model(root.at("model"), added_count, tables);
  parts.post_processor = build_post_processor(optional_component("post_processor"));
  parts.decoder = build_decoder(optional_component("decoder"));
  check_growth(parts, optional_component);

  if (added) {
    // Added tokens and the model's vocabulary share one id space: together they describe at
    // most vocab_size() + added_count ids, and no id of either may lie beyond that.
    const size_t id_limit = vocab_id_limit(parts.model->vocab_size(), added_count);
    for (size_t i = 0; i < added_count; ++i) {
      JsonCursor t = (*added)[i];
      AddedToken token;
      token.id = t.at("id").id();
      token.content = t.at("content").string();
      if (static_cast<size_t>(token.id) >= id_limit) {
        t.at("id").fail(
            ErrorCode::kCorruption,
            fmt::format("added token '{}' has id {}, beyond what {} vocabulary "
                        "entries and {} added tokens can hold (ids must be below {})",
                        token.content, token.id, parts.model->vocab_size(), added_count, id_limit));
      }
      if (token.content.empty()) t.at("content").fail(ErrorCode::kCorruption, "empty token");
      token.special = t.bool_or("special", false);
      token.lstrip = t.bool_or("lstrip", false);
      token.rstrip = t.bool_or("rstrip", false);
      token.normalized = t.bool_or("normalized", !token.special);
      token.single_word = t.bool_or("single_word", false);
      parts.added_tokens.push_back(std::move(token));
    }
  }

  return parts;
}

// tokenizer.json's text: the reader that keeps the vocabulary and merges out of the document
// first; the plain parse, whose errors name the place, when the file is irregular.
TokenizerParts parts_from_text(std::string_view text, const std::string& source) {
  if (auto read = read_tokenizer_json(text)) {
    return parts_from_json(read->doc, source, &read->tables);
  }
  return parts_from_json(parse_json(text, source), source, nullptr);
}

// bos from the post-processor when nothing else named it (e.g. Llama's template "<s> $A").
void default_bos(TokenizerParts& parts) {
  if (!parts.special.bos && parts.post_processor) {
    auto prefix = parts.post_processor->prefix_ids();
    if (prefix.size() == 1) parts.special.bos = prefix[0];
  }
}

}  // namespace

Tokenizer Tokenizer::from_hf_json_text(std::string_view json, const std::string& source) {
  TokenizerParts parts = parts_from_text(json, source);
  default_bos(parts);
  return Tokenizer(std::move(parts));
}

Tokenizer Tokenizer::from_hf_json(const std::filesystem::path& path) {
  const std::string file = path.string();
  TokenizerParts parts = parts_from_text(read_text(path), file);
  // Special token ids: tokenizer_config.json when present, else what the pipeline implies.
  auto id_of = [&](const std::string& content) -> std::optional<int32_t> {
    for (const AddedToken& t : parts.added_tokens) {
      if (t.content == content) return t.id;
    }
    return parts.model->token_to_id(content);
  };
  std::filesystem::path config_path = path.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    nlohmann::json config = read_json(config_path);
    if (config.is_object()) {
      if (auto s = config_token(config, "bos_token")) parts.special.bos = id_of(*s);
      if (auto s = config_token(config, "eos_token")) parts.special.eos = id_of(*s);
      if (auto s = config_token(config, "pad_token")) parts.special.pad = id_of(*s);
      if (auto s = config_token(config, "unk_token")) parts.special.unk = id_of(*s);
    }
  }
  default_bos(parts);
  return Tokenizer(std::move(parts));
}

}  // namespace loom::tokenizer
