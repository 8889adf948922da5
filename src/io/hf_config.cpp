#include "io/hf_config.h"

#include <fmt/format.h>

#include <initializer_list>

#include "core/error.h"
#include "io/json_util.h"

namespace loom {

namespace {

using nlohmann::json;

class ConfigReader {
 public:
  // `file` is copied: readers are built from string literals (a temporary std::string), and a
  // reference to it dangled by the time an error message read it (fuzz_hf_config found it).
  ConfigReader(const json& j, std::string file) : j_(j), file_(std::move(file)) {}

  // The first present, non-null key among `keys`.
  const json* find(std::initializer_list<std::string_view> keys) const {
    for (std::string_view k : keys) {
      auto it = j_.find(std::string(k));
      if (it != j_.end() && !it->is_null()) return &*it;
    }
    return nullptr;
  }

  int64_t count(std::initializer_list<std::string_view> keys, int64_t fallback = 0) const {
    const json* v = find(keys);
    if (v == nullptr) return fallback;
    if (!v->is_number_integer() || v->get<int64_t>() < 0 ||
        v->get<int64_t>() > (int64_t{1} << 40)) {
      bad(*keys.begin(), "a non-negative integer", *v);
    }
    return v->get<int64_t>();
  }

  double number(std::initializer_list<std::string_view> keys, double fallback = 0.0) const {
    const json* v = find(keys);
    if (v == nullptr) return fallback;
    if (!v->is_number()) bad(*keys.begin(), "a number", *v);
    return v->get<double>();
  }

  bool boolean(std::initializer_list<std::string_view> keys, bool fallback = false) const {
    const json* v = find(keys);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) bad(*keys.begin(), "true or false", *v);
    return v->get<bool>();
  }

  std::string string(std::initializer_list<std::string_view> keys) const {
    const json* v = find(keys);
    if (v == nullptr) return {};
    if (!v->is_string()) bad(*keys.begin(), "a string", *v);
    return v->get<std::string>();
  }

  // A token id or a list of them.
  std::vector<int64_t> ids(std::string_view key) const {
    const json* v = find({key});
    if (v == nullptr) return {};
    std::vector<int64_t> out;
    auto one = [&](const json& x) {
      if (!x.is_number_integer()) bad(key, "a token id or a list of token ids", *v);
      out.push_back(x.get<int64_t>());
    };
    if (v->is_array()) {
      for (const json& x : *v) one(x);
    } else {
      one(*v);
    }
    return out;
  }

  const json& root() const { return j_; }

  [[noreturn]] void bad(std::string_view key, std::string_view expected, const json& got) const {
    std::string shown = got.dump();
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    fail(ErrorCode::kCorruption, "{}: '{}' must be {}, got {}", file_, key, expected, shown);
  }

 private:
  const json& j_;
  std::string file_;
};

void read_rope(const ConfigReader& c, HyperParams& hp) {
  // transformers >= 5 writes rope_parameters (per layer type for gemma3); older configs use
  // rope_theta + rope_scaling.
  const json* params = c.find({"rope_parameters"});
  const json* scaling = c.find({"rope_scaling"});
  hp.rope_theta = c.number({"rope_theta"}, 0.0);
  if (params != nullptr && params->is_object()) {
    if (params->contains("full_attention") || params->contains("sliding_attention")) {
      if (auto it = params->find("full_attention"); it != params->end() && it->is_object()) {
        hp.rope_theta = ConfigReader(*it, "config.json rope_parameters.full_attention")
                            .number({"rope_theta"}, hp.rope_theta);
        scaling = &*it;
      }
      if (auto it = params->find("sliding_attention"); it != params->end() && it->is_object()) {
        hp.rope_local_theta = ConfigReader(*it, "config.json rope_parameters.sliding_attention")
                                  .number({"rope_theta"}, 0.0);
      }
    } else {
      hp.rope_theta = ConfigReader(*params, "config.json rope_parameters")
                          .number({"rope_theta"}, hp.rope_theta);
      scaling = params;
      double partial = ConfigReader(*params, "config.json rope_parameters")
                           .number({"partial_rotary_factor"}, 1.0);
      if (partial != 1.0 && hp.head_dim > 0) {
        hp.rope_dims = static_cast<int64_t>(static_cast<double>(hp.head_dim) * partial);
      }
    }
  }
  if (hp.rope_local_theta == 0.0) hp.rope_local_theta = c.number({"rope_local_base_freq"}, 0.0);
  // Older phi3-family configs (phi-4-mini) give the partial rotary factor at the top level.
  if (const double partial = c.number({"partial_rotary_factor"}, 1.0);
      hp.rope_dims == 0 && partial != 1.0 && hp.head_dim > 0) {
    hp.rope_dims = static_cast<int64_t>(static_cast<double>(hp.head_dim) * partial);
  }
  if (scaling != nullptr && scaling->is_object()) {
    ConfigReader s(*scaling, "config.json rope scaling");
    std::string type = s.string({"rope_type", "type"});
    if (!type.empty() && type != "default") {
      hp.rope_scaling.type = type;
      hp.rope_scaling.factor = s.number({"factor"}, 1.0);
      hp.rope_scaling.low_freq_factor = s.number({"low_freq_factor"}, 0.0);
      hp.rope_scaling.high_freq_factor = s.number({"high_freq_factor"}, 0.0);
      hp.rope_scaling.original_context = s.count({"original_max_position_embeddings"}, 0);
    }
  }
}

}  // namespace

std::optional<std::string> architecture_from_hf_model_type(std::string_view model_type) {
  // llama.cpp runs Mistral and Mixtral as "llama" (experts are a hyper-parameter there).
  static const std::pair<std::string_view, std::string_view> kMap[] = {
      {"llama", "llama"},
      {"mistral", "llama"},
      {"mixtral", "llama"},
      {"qwen2", "qwen2"},
      {"qwen3", "qwen3"},
      {"qwen3_moe", "qwen3moe"},
      {"gemma2", "gemma2"},
      {"gemma3", "gemma3"},
      {"gemma3_text", "gemma3"},
      {"phi3", "phi3"},
      {"gpt2", "gpt2"},
      {"bert", "bert"},
      {"clip_vision_model", "clip"},
      {"siglip_vision_model", "siglip"},
  };
  for (auto [hf, loom] : kMap) {
    if (hf == model_type) return std::string(loom);
  }
  return std::nullopt;
}

HfConfig parse_hf_config(std::string_view text, const std::string& file) {
  json j = parse_json_or_fail(text, file, 0);
  if (!j.is_object()) fail(ErrorCode::kCorruption, "{}: not a JSON object", file);
  ConfigReader c(j, file);
  HfConfig out;
  out.model_type = c.string({"model_type"});
  if (out.model_type.empty()) {
    fail(ErrorCode::kCorruption, "{}: 'model_type' is missing: cannot tell the architecture", file);
  }
  auto arch = architecture_from_hf_model_type(out.model_type);
  out.architecture_known = arch.has_value();
  out.architecture = arch.value_or(out.model_type);

  HyperParams& hp = out.hparams;
  hp.vocab_size = c.count({"vocab_size"});
  hp.hidden_size = c.count({"hidden_size", "n_embd", "d_model"});
  hp.n_layers = c.count({"num_hidden_layers", "n_layer"});
  hp.n_heads = c.count({"num_attention_heads", "n_head"});
  hp.n_kv_heads = c.count({"num_key_value_heads"}, hp.n_heads);
  hp.head_dim = c.count({"head_dim"}, hp.n_heads > 0 ? hp.hidden_size / hp.n_heads : 0);
  hp.ffn_size = c.count({"intermediate_size", "n_inner"}, 0);
  if (hp.ffn_size == 0 && out.model_type == "gpt2") hp.ffn_size = 4 * hp.hidden_size;
  hp.context_length = c.count({"max_position_embeddings", "n_positions", "n_ctx"});
  hp.norm_eps = c.number({"rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"});
  hp.activation = c.string({"hidden_activation", "hidden_act", "activation_function"});
  hp.tie_embeddings = c.boolean({"tie_word_embeddings"}, false);
  hp.attention_bias = c.boolean({"attention_bias"}, out.model_type == "qwen2");
  read_rope(c, hp);
  static const std::string_view kRopeArchs[] = {"llama",  "qwen2",  "qwen3", "qwen3moe",
                                                "gemma2", "gemma3", "phi3"};
  for (std::string_view a : kRopeArchs) {
    if (out.architecture == a && hp.rope_theta == 0.0) hp.rope_theta = 10000.0;  // HF default
  }

  hp.n_experts = c.count({"num_local_experts", "num_experts", "n_routed_experts"});
  hp.n_experts_used = c.count({"num_experts_per_tok"});
  hp.expert_ffn_size = c.count({"moe_intermediate_size"});
  hp.expert_norm_topk = c.boolean({"norm_topk_prob"}, out.model_type == "mixtral");

  hp.sliding_window = c.count({"sliding_window"});
  hp.sliding_window_pattern = c.count({"sliding_window_pattern", "_sliding_window_pattern"});
  if (const json* lt = c.find({"layer_types"})) {
    if (!lt->is_array()) c.bad("layer_types", "a list of strings", *lt);
    for (const json& t : *lt) {
      if (!t.is_string()) c.bad("layer_types", "a list of strings", *lt);
      hp.layer_types.push_back(t.get<std::string>());
    }
  }
  hp.attn_logit_softcap = c.number({"attn_logit_softcapping"});
  hp.final_logit_softcap = c.number({"final_logit_softcapping"});
  hp.query_pre_attn_scalar = c.number({"query_pre_attn_scalar"});

  hp.type_vocab_size = c.count({"type_vocab_size"});
  hp.image_size = c.count({"image_size"});
  hp.patch_size = c.count({"patch_size"});
  hp.n_channels = c.count({"num_channels"});

  hp.bos_token_ids = c.ids("bos_token_id");
  hp.eos_token_ids = c.ids("eos_token_id");
  if (const json* pad = c.find({"pad_token_id"})) {
    if (!pad->is_number_integer()) c.bad("pad_token_id", "a token id", *pad);
    hp.pad_token_id = pad->get<int64_t>();
  }
  if (hp.n_heads > 0 && hp.n_kv_heads > 0 && hp.n_heads % hp.n_kv_heads != 0) {
    fail(ErrorCode::kCorruption,
         "{}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})", file,
         hp.n_heads, hp.n_kv_heads);
  }
  return out;
}

void apply_generation_config(std::string_view text, const std::string& file, HyperParams& hparams) {
  json j = parse_json_or_fail(text, file, 0);
  if (!j.is_object()) fail(ErrorCode::kCorruption, "{}: not a JSON object", file);
  ConfigReader c(j, file);
  if (auto bos = c.ids("bos_token_id"); !bos.empty()) hparams.bos_token_ids = bos;
  if (auto eos = c.ids("eos_token_id"); !eos.empty()) hparams.eos_token_ids = eos;
}

}  // namespace loom
