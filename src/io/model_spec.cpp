#include "io/model_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "io/tensor_names.h"

namespace loom {

namespace fs = std::filesystem;

nlohmann::ordered_json HyperParams::to_json() const {
  nlohmann::ordered_json j;
  auto put_int = [&](const char* k, int64_t v) {
    if (v != 0) j[k] = v;
  };
  auto put_num = [&](const char* k, double v) {
    if (v != 0.0) j[k] = v;
  };
  put_int("vocab_size", vocab_size);
  put_int("hidden_size", hidden_size);
  put_int("n_layers", n_layers);
  put_int("n_heads", n_heads);
  put_int("n_kv_heads", n_kv_heads);
  put_int("head_dim", head_dim);
  put_int("ffn_size", ffn_size);
  put_int("context_length", context_length);
  put_num("norm_eps", norm_eps);
  if (!activation.empty()) j["activation"] = activation;
  j["tie_embeddings"] = tie_embeddings;
  if (attention_bias) j["attention_bias"] = true;
  put_num("rope_theta", rope_theta);
  put_int("rope_dims", rope_dims);
  put_num("rope_local_theta", rope_local_theta);
  if (rope_scaling.type != "none") {
    j["rope_scaling"] = {{"type", rope_scaling.type},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_context", rope_scaling.original_context}};
  }
  put_int("n_experts", n_experts);
  put_int("n_experts_used", n_experts_used);
  put_int("expert_ffn_size", expert_ffn_size);
  if (n_experts > 0) j["expert_norm_topk"] = expert_norm_topk;
  put_int("sliding_window", sliding_window);
  put_int("sliding_window_pattern", sliding_window_pattern);
  if (!layer_types.empty()) j["layer_types"] = layer_types;
  put_num("attn_logit_softcap", attn_logit_softcap);
  put_num("final_logit_softcap", final_logit_softcap);
  put_num("query_pre_attn_scalar", query_pre_attn_scalar);
  put_int("type_vocab_size", type_vocab_size);
  put_int("image_size", image_size);
  put_int("patch_size", patch_size);
  put_int("n_channels", n_channels);
  if (!bos_token_ids.empty()) j["bos_token_ids"] = bos_token_ids;
  if (!eos_token_ids.empty()) j["eos_token_ids"] = eos_token_ids;
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  return j;
}

void ModelSpec::build_index() {
  index_.clear();
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto [it, inserted] = index_.emplace(tensors[i].name, i);
    if (!inserted) {
      fail(ErrorCode::kCorruption, "{}: two tensors map to the name '{}' ({} and {})", path,
           tensors[i].name, tensors[it->second].source_name, tensors[i].source_name);
    }
  }
}

const TensorInfo* ModelSpec::find(std::string_view tensor_name) const {
  auto it = index_.find(std::string(tensor_name));
  return it == index_.end() ? nullptr : &tensors[it->second];
}

const TensorInfo& ModelSpec::require(std::string_view tensor_name) const {
  const TensorInfo* t = find(tensor_name);
  if (t == nullptr) {
    fail(ErrorCode::kNotFound, "{}: tensor '{}' is missing (architecture {})", path, tensor_name,
         architecture);
  }
  return *t;
}

uint64_t ModelSpec::total_bytes() const {
  uint64_t n = 0;
  for (const TensorInfo& t : tensors) n += t.n_bytes;
  return n;
}

uint64_t ModelSpec::fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  const auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  };
  const auto mix_value = [&mix](const auto& v) { mix(&v, sizeof v); };
  mix(architecture.data(), architecture.size());
  const HyperParams& p = hparams;
  for (int64_t v : {p.vocab_size, p.hidden_size, p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim,
                    p.ffn_size, p.context_length, p.n_experts, p.n_experts_used}) {
    mix_value(v);
  }
  mix_value(p.rope_theta);
  mix_value(p.norm_eps);
  for (const TensorInfo& t : tensors) {
    mix(t.name.data(), t.name.size() + 1);
    mix_value(static_cast<int>(t.dtype));
    for (int64_t d : t.shape) mix_value(d);
    const uint64_t n = std::min<uint64_t>(64, t.n_bytes);
    if (t.data == nullptr || n == 0) continue;
    for (uint64_t at : {uint64_t{0}, (t.n_bytes - n) / 2, t.n_bytes - n}) mix(t.data + at, n);
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// GGUF

namespace {

void read_gguf_hparams(const GgufFile& f, const std::string& arch, HyperParams& hp) {
  auto key = [&](std::string_view suffix) { return fmt::format("{}.{}", arch, suffix); };
  auto i = [&](std::string_view suffix) { return f.get_int(key(suffix)).value_or(0); };
  auto d = [&](std::string_view suffix) { return f.get_float(key(suffix)).value_or(0.0); };
  hp.hidden_size = i("embedding_length");
  hp.n_layers = i("block_count");
  hp.ffn_size = i("feed_forward_length");
  hp.context_length = i("context_length");
  hp.n_heads = i("attention.head_count");
  hp.n_kv_heads = f.get_int(key("attention.head_count_kv")).value_or(hp.n_heads);
  hp.head_dim = i("attention.key_length");
  if (hp.head_dim == 0 && hp.n_heads > 0) hp.head_dim = hp.hidden_size / hp.n_heads;
  hp.norm_eps = d("attention.layer_norm_rms_epsilon");
  if (hp.norm_eps == 0.0) hp.norm_eps = d("attention.layer_norm_epsilon");
  hp.rope_theta = d("rope.freq_base");
  hp.rope_dims = i("rope.dimension_count");
  if (auto t = f.get_string(key("rope.scaling.type")); t && *t != "none") {
    hp.rope_scaling.type = *t;
    hp.rope_scaling.factor = d("rope.scaling.factor");
    hp.rope_scaling.original_context = i("rope.scaling.original_context_length");
  }
  hp.n_experts = i("expert_count");
  hp.n_experts_used = i("expert_used_count");
  hp.expert_ffn_size = i("expert_feed_forward_length");
  // llama.cpp renormalises the top-k routing weights of mixtral (arch llama) and qwen3moe
  // whatever the file says; other MoE archs read the key.
  hp.expert_norm_topk =
      f.get_bool(key("expert_weights_norm")).value_or(arch == "llama" || arch == "qwen3moe");
  hp.sliding_window = i("attention.sliding_window");
  hp.attn_logit_softcap = d("attn_logit_softcapping");
  hp.final_logit_softcap = d("final_logit_softcapping");
  hp.rope_local_theta = d("rope.freq_base_swa");
  // Either a period (every Nth layer global) or, in newer llama.cpp files, one bool per layer
  // (true = sliding window).
  if (const GgufArray* pattern = f.get_array(key("attention.sliding_window_pattern"))) {
    for (const GgufValue& v : pattern->items) {
      hp.layer_types.push_back(v.as_bool().value_or(false) ? "sliding_attention"
                                                           : "full_attention");
    }
  } else {
    hp.sliding_window_pattern = i("attention.sliding_window_pattern");
  }
  // The general attention-scale key stands for query_pre_attn_scalar^-0.5 (gemma).
  if (const double scale = d("attention.scale"); scale > 0.0) {
    hp.query_pre_attn_scalar = 1.0 / (scale * scale);
  }
  hp.vocab_size = i("vocab_size");
  if (const GgufArray* tokens = f.get_array("tokenizer.ggml.tokens")) {
    if (hp.vocab_size == 0) hp.vocab_size = static_cast<int64_t>(tokens->items.size());
  }
  if (auto bos = f.get_int("tokenizer.ggml.bos_token_id")) hp.bos_token_ids = {*bos};
  if (auto eos = f.get_int("tokenizer.ggml.eos_token_id")) hp.eos_token_ids = {*eos};
  if (auto pad = f.get_int("tokenizer.ggml.padding_token_id")) hp.pad_token_id = *pad;
}

bool is_known_architecture(std::string_view arch) {
  static const std::string_view kKnown[] = {"llama",  "qwen2",  "qwen3", "qwen3moe",
                                            "gemma2", "gemma3", "phi3",  "gpt2",
                                            "bert",   "clip",   "siglip"};
  for (std::string_view k : kKnown) {
    if (k == arch) return true;
  }
  return false;
}

}  // namespace

ModelSpec load_gguf_model_spec(const std::string& path) {
  auto file = std::make_shared<GgufFile>(GgufFile::open(path));
  ModelSpec spec;
  spec.path = path;
  spec.format = ModelFormat::kGguf;
  spec.architecture = file->get_string("general.architecture").value_or("");
  if (spec.architecture.empty()) {
    fail(ErrorCode::kCorruption, "{}: metadata 'general.architecture' is missing", path);
  }
  spec.architecture_known = is_known_architecture(spec.architecture);
  spec.name = file->get_string("general.name").value_or(fs::path(path).stem().string());
  read_gguf_hparams(*file, spec.architecture, spec.hparams);
  spec.hparams.tie_embeddings =
      file->find_tensor("output.weight") == nullptr && file->find_tensor("token_embd.weight");

  if (auto model = file->get_string("tokenizer.ggml.model")) {
    spec.tokenizer.kind = *model;
    spec.tokenizer.file = path;
    spec.tokenizer.pre = file->get_string("tokenizer.ggml.pre").value_or("");
    if (const GgufArray* tokens = file->get_array("tokenizer.ggml.tokens")) {
      spec.tokenizer.n_tokens = static_cast<int64_t>(tokens->items.size());
    }
    spec.tokenizer.has_chat_template = file->find("tokenizer.chat_template") != nullptr;
  }
  for (const GgufTensorInfo& t : file->tensors()) {
    spec.tensors.push_back(TensorInfo{t.name, t.name, t.dtype, t.shape(), t.data, t.n_bytes, path});
  }
  spec.build_index();
  spec.gguf_ = file;
  spec.keepalive_ = file;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face folder

namespace {

void read_hf_tokenizer(const fs::path& dir, TokenizerSource& tok) {
  fs::path tj = dir / "tokenizer.json";
  if (fs::exists(tj)) {
    // Only named here: describe_hf_tokenizer reads it when asked (see model_spec.h).
    tok.kind = "tokenizer.json";
    tok.file = tj.string();
  } else if (fs::exists(dir / "tokenizer.model")) {
    tok.kind = "sentencepiece-model";
    tok.file = (dir / "tokenizer.model").string();
  } else if (fs::exists(dir / "vocab.txt")) {
    tok.kind = "wordpiece-vocab";
    tok.file = (dir / "vocab.txt").string();
  }
  if (fs::exists(dir / "chat_template.jinja")) {
    tok.has_chat_template = true;
  } else if (fs::exists(dir / "tokenizer_config.json")) {
    nlohmann::json tc = read_json_file((dir / "tokenizer_config.json").string());
    tok.has_chat_template = tc.is_object() && tc.contains("chat_template");
  }
}

}  // namespace

void describe_hf_tokenizer(TokenizerSource& tok) {
  if (tok.kind != "tokenizer.json") return;
  nlohmann::json j = read_json_file(tok.file);
  auto model = j.is_object() ? j.find("model") : j.end();
  if (model == j.end() || !model->is_object()) {
    fail(ErrorCode::kCorruption, "{}: 'model' is missing or not an object", tok.file);
  }
  auto type = model->find("type");
  tok.kind = (type != model->end() && type->is_string()) ? type->get<std::string>() : "BPE";
  for (char& ch : tok.kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (auto vocab = model->find("vocab"); vocab != model->end()) {
    tok.n_tokens = static_cast<int64_t>(vocab->size());
  }
  if (auto added = j.find("added_tokens"); added != j.end() && added->is_array()) {
    // Added tokens may extend the vocabulary past the model's own ids.
    for (const auto& a : *added) {
      if (a.is_object() && a.contains("id") && a["id"].is_number_integer()) {
        tok.n_tokens = std::max<int64_t>(tok.n_tokens, a["id"].get<int64_t>() + 1);
      }
    }
  }
}

namespace {

// The mapped safetensors plus the few tensors io/ had to rewrite.
struct HfTensors {
  std::shared_ptr<SafetensorsSet> set;
  std::vector<std::vector<uint8_t>> owned;
};

// GPT-2's Conv1D layers store their weight [in, out], the transpose of nn.Linear's [out, in]
// (transformers' pytorch_utils.Conv1D computes x @ W + b).
bool is_gpt2_conv1d(std::string_view name) {
  for (std::string_view s :
       {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    if (name.ends_with(s)) return true;
  }
  return false;
}

// Rewrites a 2-D tensor of a non-block dtype as its transpose in `bytes`, so that every matrix
// above io/ is [out, in] whatever file it came from (llama.cpp's converter transposes GPT-2's
// Conv1D weights the same way).
void transpose_into(TensorInfo& t, std::vector<uint8_t>& bytes) {
  const DTypeInfo& info = dtype_info(t.dtype);
  if (t.shape.size() != 2 || info.block_size != 1) {
    fail(ErrorCode::kCorruption, "{}: Conv1D tensor '{}' must be a {} matrix, got {} {}", t.file,
         t.source_name, "2-D float", dtype_name(t.dtype), shape_to_string(t.shape));
  }
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const size_t eb = info.block_bytes;
  bytes.resize(t.n_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      std::memcpy(bytes.data() + (c * rows + r) * eb, t.data + (r * cols + c) * eb, eb);
    }
  }
  t.shape = {cols, rows};
  t.data = bytes.data();
}

}  // namespace

ModelSpec load_hf_model_spec(const std::string& dir) {
  fs::path root(dir);
  fs::path config_path = root / "config.json";
  if (!fs::exists(config_path)) {
    fail(ErrorCode::kNotFound, "{}: no config.json: not a Hugging Face model folder", dir);
  }
  HfConfig config = parse_hf_config(read_text_file(config_path.string()), config_path.string());
  ModelSpec spec;
  spec.path = dir;
  spec.format = ModelFormat::kHfFolder;
  spec.architecture = config.architecture;
  spec.architecture_known = config.architecture_known;
  spec.hf_model_type = config.model_type;
  spec.name =
      root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  spec.hparams = config.hparams;
  if (fs::path gc = root / "generation_config.json"; fs::exists(gc)) {
    apply_generation_config(read_text_file(gc.string()), gc.string(), spec.hparams);
  }
  read_hf_tokenizer(root, spec.tokenizer);

  auto keep = std::make_shared<HfTensors>();
  keep->set = std::make_shared<SafetensorsSet>(SafetensorsSet::open_dir(dir));
  for (const SafetensorsTensor* t : keep->set->tensors()) {
    std::string name = hf_to_gguf_tensor_name(config.model_type, t->name).value_or(t->name);
    spec.tensors.push_back(
        TensorInfo{name, t->name, t->dtype, t->shape, t->data, t->n_bytes, keep->set->file_of(*t)});
    if (config.model_type == "gpt2" && is_gpt2_conv1d(t->name)) {
      transpose_into(spec.tensors.back(), keep->owned.emplace_back());
    }
  }
  spec.build_index();
  if (spec.find("token_embd.weight") != nullptr && spec.find("output.weight") == nullptr) {
    // Some exports tie without saying so; record what the files show.
    spec.hparams.tie_embeddings = true;
  }
  spec.keepalive_ = keep;
  return spec;
}

ModelSpec load_model_spec(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_hf_model_spec(path);
  if (!fs::exists(path, ec)) fail(ErrorCode::kNotFound, "{}: no such file or folder", path);
  return load_gguf_model_spec(path);
}

}  // namespace loom
