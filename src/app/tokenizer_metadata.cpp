// write_tokenizer_metadata: a model's vocabulary as the tokenizer.ggml.* keys llama.cpp reads.
//
// From a HF folder's tokenizer.json (BPE only):
//   - byte_fallback BPE with a Metaspace (or Prepend + Replace) front, i.e. SentencePiece models
//     such as llama2 and mistral, becomes tokenizer.ggml.model "llama". That format has no merge
//     list: a pair merges when the joined string is a token, highest score first. Each token's
//     score is minus the rank of the first merge that produces it, so merges happen in the order
//     of the HF merge list (HF's SentencePiece converter ranks all splits of one token together,
//     so the first one stands for them all).
//   - byte-level BPE becomes "gpt2" with the merge list, and tokenizer.ggml.pre names the
//     pre-tokenizer (llama.cpp's names: "qwen2" for qwen2/qwen3's regex, "llama-bpe" for
//     llama3's, "gpt-2" for GPT-2's built-in one).
// Token types follow llama.cpp's converter: <0xXX> pieces BYTE, special added tokens CONTROL
// (the unknown token UNKNOWN), other added tokens USER_DEFINED, ids missing below the config's
// vocab_size "[PADn]" UNUSED (the embedding has those rows). Special token ids come from
// tokenizer_config.json, then config.json; add_bos/add_eos from tokenizer_config.json, else
// from the tokenizer.json post-processor (what HF actually adds). The chat template comes from
// chat_template.jinja, else tokenizer_config.json.
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/loaded_model.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/json_util.h"
#include "tokenizer/gguf_vocab.h"

namespace loom::app {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tokenizer::GgufTokenType;

constexpr const char* kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

struct HfVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<bool> filled;
  std::unordered_map<std::string, int32_t> ids;  // first id of each string
};

std::string str_or(const json& j, const char* key, std::string fallback = {}) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

bool bool_or(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// A special token in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> token_content(const json& entry) {
  if (entry.is_string()) return entry.get<std::string>();
  if (entry.is_object() && entry.contains("content") && entry["content"].is_string())
    return entry["content"].get<std::string>();
  return std::nullopt;
}

// The merges of tokenizer.json: "left right" strings (old format) or [left, right] pairs.
std::vector<std::pair<std::string, std::string>> read_merges(const json& model,
                                                             const std::string& file) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = model.find("merges");
  if (it == model.end() || it->is_null()) return out;
  if (!it->is_array()) fail(ErrorCode::kCorruption, "{}: model.merges is not an array", file);
  out.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      size_t space = s.find(' ', 1);
      if (space == std::string::npos)
        fail(ErrorCode::kCorruption, "{}: model.merges[{}]: expected \"left right\"", file, i);
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail(ErrorCode::kCorruption, "{}: model.merges[{}]: expected a string or a pair", file, i);
    }
  }
  return out;
}

bool is_byte_piece(const std::string& t) {
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

// A space inside a merge part is written as U+0120, as gguf-py does for the pair format, so that
// "left right" stays splittable.
std::string merge_part(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ')
      out += "\xC4\xA0";
    else
      out += c;
  }
  return out;
}

// add_space_prefix for a SentencePiece-style tokenizer.json, or kUnsupported when its front is
// not one the "llama" GGUF tokenizer reproduces. `metaspace_scheme` is set for a Metaspace front.
bool spm_space_prefix(const json& tj, const std::string& file, std::string& metaspace_scheme) {
  const json pre = tj.value("pre_tokenizer", json());
  const json norm = tj.value("normalizer", json());
  if (pre.is_object() && str_or(pre, "type") == "Metaspace") {
    if (str_or(pre, "replacement", kSpaceMarker) != kSpaceMarker || bool_or(pre, "split", true)) {
      fail(ErrorCode::kUnsupported,
           "{}: a Metaspace pre-tokenizer that splits (or does not use U+2581) has no GGUF "
           "equivalent",
           file);
    }
    const std::string scheme = str_or(pre, "prepend_scheme", "always");
    metaspace_scheme = scheme;
    return scheme != "never" && bool_or(pre, "add_prefix_space", true);
  }
  if (pre.is_null() && norm.is_object() && str_or(norm, "type") == "Sequence") {
    // The legacy llama front: Prepend("▁") + Replace(" ", "▁").
    bool prepend = false, replace = false;
    for (const json& n : norm.value("normalizers", json::array())) {
      const std::string type = str_or(n, "type");
      if (type == "Prepend" && str_or(n, "prepend") == kSpaceMarker) {
        prepend = true;
      } else if (type == "Replace" && str_or(n, "content") == kSpaceMarker) {
        replace = true;
      } else {
        fail(ErrorCode::kUnsupported, "{}: normalizer {} has no GGUF equivalent", file, type);
      }
    }
    if (replace) return prepend;
  }
  fail(ErrorCode::kUnsupported,
       "{}: a byte_fallback BPE tokenizer without a Metaspace front has no GGUF equivalent", file);
}

// tokenizer.ggml.pre for a byte-level tokenizer.json, or kUnsupported.
std::string gpt2_pre_name(const json& tj, const std::string& file) {
  const json pre = tj.value("pre_tokenizer", json());
  const std::string type = pre.is_object() ? str_or(pre, "type") : "";
  if (type == "ByteLevel" && bool_or(pre, "use_regex", true)) return "gpt-2";
  std::vector<std::string> patterns;
  bool byte_level_last = false;
  if (type == "Sequence") {
    const json& list = pre.value("pretokenizers", json::array());
    for (size_t i = 0; i < list.size(); ++i) {
      const json& p = list[i];
      const std::string t = str_or(p, "type");
      if (t == "ByteLevel" && i + 1 == list.size() && !bool_or(p, "use_regex", true)) {
        byte_level_last = true;
      } else if (t == "Split" && p.contains("pattern") && p["pattern"].contains("Regex") &&
                 str_or(p, "behavior") == "Isolated" && !bool_or(p, "invert", false)) {
        patterns.push_back(p["pattern"]["Regex"].get<std::string>());
      } else if (t == "Digits") {
        // Digits is the Split of one digit (or of a run of digits).
        patterns.push_back(bool_or(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+");
      } else {
        patterns.clear();
        break;
      }
    }
  }
  if (byte_level_last) {
    if (auto name = tokenizer::gguf_pre_for_split_patterns(patterns)) return *name;
  }
  fail(ErrorCode::kUnsupported,
       "{}: the pre-tokenizer {} matches none that tokenizer.ggml.pre can name (supported: "
       "GPT-2, llama3, qwen2/qwen3, gpt-4o, deepseek)",
       file, pre.dump().substr(0, 200));
}

// add_bos / add_eos as the tokenizer.json post-processor applies them (TemplateProcessing's
// single sequence; a Sequence of processors is searched for one).
void post_processor_specials(const json& pp, const HfVocab& v, std::optional<int32_t>& bos,
                             std::optional<int32_t>& eos) {
  if (!pp.is_object()) return;
  if (str_or(pp, "type") == "Sequence") {
    for (const json& p : pp.value("processors", json::array()))
      post_processor_specials(p, v, bos, eos);
    return;
  }
  if (str_or(pp, "type") != "TemplateProcessing") return;
  bool seen_sequence = false;
  for (const json& item : pp.value("single", json::array())) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const std::string token = str_or(item["SpecialToken"], "id");
      std::optional<int32_t> id;
      const json& specials = pp.value("special_tokens", json::object());
      if (specials.contains(token) && specials[token].contains("ids") &&
          specials[token]["ids"].is_array() && !specials[token]["ids"].empty()) {
        id = specials[token]["ids"][0].get<int32_t>();
      } else if (auto it = v.ids.find(token); it != v.ids.end()) {
        id = it->second;
      }
      (seen_sequence ? eos : bos) = id;
    }
  }
}

void write_hf_tokenizer(const ModelSpec& spec, GgufWriter& w) {
  const fs::path dir(spec.path);
  const std::string file = (dir / "tokenizer.json").string();
  const json tj = read_json_file(file);
  const json model = tj.value("model", json());
  if (!model.is_object() || str_or(model, "type", "BPE") != "BPE") {
    fail(ErrorCode::kUnsupported,
         "{}: loom convert writes BPE vocabularies to GGUF; this one is {} (convert without a "
         "tokenizer is not offered, as llama.cpp could not use the file)",
         file, model.is_object() ? str_or(model, "type", "?") : "missing");
  }
  const bool spm = bool_or(model, "byte_fallback", false);
  json tc = json::object();
  if (fs::exists(dir / "tokenizer_config.json"))
    tc = read_json_file((dir / "tokenizer_config.json").string());

  // Vocabulary and added tokens, by id.
  const json& vocab = model.value("vocab", json::object());
  if (!vocab.is_object()) fail(ErrorCode::kCorruption, "{}: model.vocab is not an object", file);
  int64_t n = spec.hparams.vocab_size;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      fail(ErrorCode::kCorruption, "{}: model.vocab['{}'] is not a token id", file, token);
    n = std::max<int64_t>(n, id.get<int64_t>() + 1);
  }
  const json added = tj.value("added_tokens", json::array());
  for (const json& a : added) {
    if (a.contains("id") && a["id"].is_number_integer())
      n = std::max<int64_t>(n, a["id"].get<int64_t>() + 1);
  }
  if (n > std::numeric_limits<int32_t>::max())
    fail(ErrorCode::kCorruption, "{}: token ids exceed 32 bits", file);
  HfVocab v;
  v.tokens.resize(n);
  v.types.assign(n, static_cast<int32_t>(GgufTokenType::kUnused));
  v.filled.assign(n, false);
  auto put = [&](int64_t id, const std::string& text, GgufTokenType type) {
    v.tokens[id] = text;
    v.types[id] = static_cast<int32_t>(type);
    v.filled[id] = true;
    v.ids.emplace(text, static_cast<int32_t>(id));
  };
  for (const auto& [token, id] : vocab.items()) {
    put(id.get<int64_t>(), token,
        spm && is_byte_piece(token) ? GgufTokenType::kByte : GgufTokenType::kNormal);
  }
  std::string unk_text = str_or(model, "unk_token");
  if (unk_text.empty() && tc.is_object() && tc.contains("unk_token")) {
    unk_text = token_content(tc["unk_token"]).value_or("");
  }
  for (const json& a : added) {
    if (!a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string()) {
      fail(ErrorCode::kCorruption, "{}: added_tokens: an entry without id or content", file);
    }
    const std::string content = a["content"].get<std::string>();
    GgufTokenType type = GgufTokenType::kUserDefined;
    if (bool_or(a, "special", false))
      type = content == unk_text ? GgufTokenType::kUnknown : GgufTokenType::kControl;
    put(a["id"].get<int64_t>(), content, type);
  }
  for (int64_t id = 0; id < n; ++id) {
    if (!v.filled[id]) v.tokens[id] = "[PAD" + std::to_string(id) + "]";
  }

  const auto merges = read_merges(model, file);
  if (spm) {
    // Score = -(rank of the first merge producing the token). Tokens no merge produces keep 0
    // when they are one character (never the join of two tokens), else they rank below every
    // merge: HF never forms them, llama.cpp would only as a last resort.
    std::vector<float> scores(n, 0.0f);
    std::vector<bool> scored(n, false);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      auto it = v.ids.find(merges[rank].first + merges[rank].second);
      if (it == v.ids.end() || scored[it->second]) continue;
      scores[it->second] = -static_cast<float>(rank);
      scored[it->second] = true;
    }
    for (int64_t id = 0; id < n; ++id) {
      if (scored[id] || v.types[id] != static_cast<int32_t>(GgufTokenType::kNormal)) continue;
      const std::string& t = v.tokens[id];
      size_t chars = 0;
      for (unsigned char c : t) chars += (c & 0xC0) != 0x80;
      if (chars > 1) scores[id] = -static_cast<float>(merges.size()) - 1.0f;
    }
    w.set("tokenizer.ggml.model", GgufValue(std::string("llama")));
    std::string scheme;
    const bool prefix = spm_space_prefix(tj, file, scheme);
    w.set("tokenizer.ggml.add_space_prefix", GgufValue(prefix));
    // HF's Metaspace adds no second space to text that starts with one; llama.cpp (like
    // SentencePiece) always adds one. loom's GGUF reader follows this key; llama.cpp ignores it.
    if (prefix && !scheme.empty())
      w.set("tokenizer.loom.metaspace_prepend_scheme", GgufValue(scheme));
    std::vector<GgufValue> score_values;
    score_values.reserve(n);
    for (float s : scores) score_values.emplace_back(s);
    w.set("tokenizer.ggml.tokens", GgufValue::string_array(v.tokens));
    w.set("tokenizer.ggml.scores", GgufValue::array(GgufType::kF32, std::move(score_values)));
  } else {
    w.set("tokenizer.ggml.model", GgufValue(std::string("gpt2")));
    w.set("tokenizer.ggml.pre", GgufValue(gpt2_pre_name(tj, file)));
    w.set("tokenizer.ggml.tokens", GgufValue::string_array(v.tokens));
  }
  std::vector<GgufValue> type_values;
  type_values.reserve(n);
  for (int32_t t : v.types) type_values.emplace_back(t);
  w.set("tokenizer.ggml.token_type", GgufValue::array(GgufType::kI32, std::move(type_values)));
  if (!spm) {
    std::vector<std::string> lines;
    lines.reserve(merges.size());
    for (const auto& [l, r] : merges) lines.push_back(merge_part(l) + " " + merge_part(r));
    w.set("tokenizer.ggml.merges", GgufValue::string_array(lines));
  }

  // Special token ids: tokenizer_config.json names them, config.json fills the rest.
  json config = json::object();
  if (fs::exists(dir / "config.json")) config = read_json_file((dir / "config.json").string());
  const std::pair<const char*, const char*> kSpecials[] = {
      {"bos", "bos_token_id"},       {"eos", "eos_token_id"}, {"unk", "unknown_token_id"},
      {"sep", "seperator_token_id"},  // sic: llama.cpp's key
      {"pad", "padding_token_id"},   {"cls", "cls_token_id"}, {"mask", "mask_token_id"}};
  std::map<std::string, int32_t> special_ids;
  for (const auto& [typ, key] : kSpecials) {
    std::optional<int32_t> id;
    if (tc.is_object() && tc.contains(std::string(typ) + "_token")) {
      if (auto text = token_content(tc[std::string(typ) + "_token"])) {
        for (const json& a : added) {
          if (str_or(a, "content") == *text) {
            id = a["id"].get<int32_t>();
            break;
          }
        }
      }
    }
    const std::string config_key = std::string(typ) + "_token_id";
    if (!id && config.is_object() && config.contains(config_key) &&
        config[config_key].is_number_integer() && config[config_key].get<int64_t>() >= 0 &&
        config[config_key].get<int64_t>() < n) {
      id = config[config_key].get<int32_t>();
    }
    if (!id && std::string(typ) == "unk" && !unk_text.empty()) {
      if (auto it = v.ids.find(unk_text); it != v.ids.end()) id = it->second;
    }
    if (id) {
      w.set(std::string("tokenizer.ggml.") + key, GgufValue(static_cast<uint32_t>(*id)));
      special_ids[typ] = *id;
    }
  }

  // What the HF tokenizer adds around a sequence.
  std::optional<int32_t> pp_bos, pp_eos;
  post_processor_specials(tj.value("post_processor", json()), v, pp_bos, pp_eos);
  const bool add_bos =
      tc.is_object() && tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()
          ? tc["add_bos_token"].get<bool>()
          : pp_bos.has_value();
  const bool add_eos =
      tc.is_object() && tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()
          ? tc["add_eos_token"].get<bool>()
          : pp_eos.has_value();
  // The GGUF has one bos id: the post-processor's token must be it, or llama.cpp adds another.
  if (add_bos && pp_bos && special_ids.count("bos") && special_ids["bos"] != *pp_bos) {
    fail(ErrorCode::kUnsupported,
         "{}: the post-processor adds token {} but the BOS token is {}; GGUF cannot express it",
         file, *pp_bos, special_ids["bos"]);
  }
  if (add_bos && pp_bos && !special_ids.count("bos"))
    w.set("tokenizer.ggml.bos_token_id", GgufValue(static_cast<uint32_t>(*pp_bos)));
  if (add_eos && pp_eos && !special_ids.count("eos"))
    w.set("tokenizer.ggml.eos_token_id", GgufValue(static_cast<uint32_t>(*pp_eos)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue(add_bos));
  w.set("tokenizer.ggml.add_eos_token", GgufValue(add_eos));

  // Chat template(s): chat_template.jinja wins, as in transformers.
  if (fs::exists(dir / "chat_template.jinja")) {
    w.set("tokenizer.chat_template",
          GgufValue(read_text_file((dir / "chat_template.jinja").string())));
  } else if (tc.is_object() && tc.contains("chat_template")) {
    const json& ct = tc["chat_template"];
    if (ct.is_string()) {
      w.set("tokenizer.chat_template", GgufValue(ct.get<std::string>()));
    } else if (ct.is_array()) {
      // Named templates: "default" is tokenizer.chat_template, others tokenizer.chat_template.NAME
      // (llama.cpp's convention).
      for (const json& t : ct) {
        const std::string name = str_or(t, "name"), text = str_or(t, "template");
        if (name.empty() || text.empty()) continue;
        w.set(name == "default" ? "tokenizer.chat_template" : "tokenizer.chat_template." + name,
              GgufValue(text));
      }
    }
  }
}

}  // namespace

void write_tokenizer_metadata(const ModelSpec& spec, GgufWriter& w) {
  if (const GgufFile* g = spec.gguf()) {
    // GGUF to GGUF: carry the vocabulary over as it is.
    for (const auto& [key, value] : g->metadata()) {
      if (key.starts_with("tokenizer.")) w.set(key, value);
    }
    return;
  }
  if (fs::exists(fs::path(spec.path) / "tokenizer.json")) write_hf_tokenizer(spec, w);
}

}  // namespace loom::app
