// ModelSpec — what a model is, independent of the file it came from: architecture, typed
// hyper-parameters, tokenizer source, and a tensor table keyed by GGUF tensor names
// (see tensor_names.h). Built from a GGUF file or a Hugging Face folder by load_model_spec();
// nothing above io/ looks at file formats.
//
// Ownership: the ModelSpec keeps the mapped files alive; TensorInfo::data points into them and
// is valid for the ModelSpec's lifetime (copies share the mappings).
// Thread-safety: immutable after load.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace loom {

class GgufFile;

enum class ModelFormat { kGguf, kHfFolder };

struct RopeScaling {
  std::string type = "none";  // none | linear | yarn | llama3 | longrope | ...
  double factor = 1.0;
  double low_freq_factor = 0.0;   // llama3
  double high_freq_factor = 0.0;  // llama3
  int64_t original_context = 0;   // original_max_position_embeddings
};

// Hyper-parameters. Zero / empty means "not given by the file"; the model layer decides which
// it needs and fails with a clear error when one is missing.
struct HyperParams {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t ffn_size = 0;
  int64_t context_length = 0;
  double norm_eps = 0.0;
  std::string activation;  // HF spelling: silu, gelu, gelu_pytorch_tanh, gelu_new, quick_gelu
  bool tie_embeddings = false;
  bool attention_bias = false;

  double rope_theta = 0.0;
  int64_t rope_dims = 0;          // rotary dimensions per head (0: head_dim)
  double rope_local_theta = 0.0;  // gemma3 sliding layers
  RopeScaling rope_scaling;

  // Mixture of experts.
  int64_t n_experts = 0;
  int64_t n_experts_used = 0;
  int64_t expert_ffn_size = 0;
  bool expert_norm_topk = false;

  // Gemma-style attention.
  int64_t sliding_window = 0;
  int64_t sliding_window_pattern = 0;    // every Nth layer is global (gemma3)
  std::vector<std::string> layer_types;  // per layer: full_attention | sliding_attention
  double attn_logit_softcap = 0.0;
  double final_logit_softcap = 0.0;
  double query_pre_attn_scalar = 0.0;

  // Encoders.
  int64_t type_vocab_size = 0;  // bert
  int64_t image_size = 0;       // vision towers
  int64_t patch_size = 0;
  int64_t n_channels = 0;

  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
  int64_t pad_token_id = -1;

  // The fields that are set, as JSON (for `loom inspect --json` and tests).
  nlohmann::ordered_json to_json() const;
};

struct TokenizerSource {
  // "bpe", "wordpiece", "unigram" (tokenizer.json, after describe_hf_tokenizer; before it,
  // "tokenizer.json") or GGUF's tokenizer.ggml.model.
  std::string kind;
  std::string file;  // tokenizer.json path, or the GGUF path
  int64_t n_tokens = 0;
  std::string pre;  // GGUF tokenizer.ggml.pre
  bool has_chat_template = false;
};

struct TensorInfo {
  std::string name;         // GGUF naming (blk.N.attn_q.weight)
  std::string source_name;  // the name in the file (HF name for safetensors)
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
  std::string file;  // which file holds it

  TensorView view() const { return TensorView{dtype, shape, data, n_bytes}; }
};

class ModelSpec {
 public:
  std::string path;
  ModelFormat format = ModelFormat::kGguf;
  std::string architecture;   // loom's (= llama.cpp's) name: llama, qwen2, qwen3, gemma2, ...
  std::string hf_model_type;  // config.json model_type, when from a HF folder
  bool architecture_known = false;
  std::string name;  // general.name or the folder name
  HyperParams hparams;
  TokenizerSource tokenizer;
  std::vector<TensorInfo> tensors;

  const TensorInfo* find(std::string_view tensor_name) const;
  // Throws kNotFound naming the tensor and the model when absent.
  const TensorInfo& require(std::string_view tensor_name) const;
  uint64_t total_bytes() const;
  // A cheap identity: the architecture, the shape parameters, every tensor's name, type and
  // shape, and 64 bytes at the start, middle and end of each tensor's data (a few pages read,
  // not the file). Two copies of one model agree; another model, quantization or fine-tune of
  // the same shape does not. Tensor-parallel ranks compare it at load.
  uint64_t fingerprint() const;
  // The GGUF file this came from (its metadata holds the vocabulary); null for HF folders.
  const GgufFile* gguf() const { return gguf_.get(); }

 private:
  friend ModelSpec load_gguf_model_spec(const std::string& path);
  friend ModelSpec load_hf_model_spec(const std::string& dir);
  void build_index();

  std::shared_ptr<const GgufFile> gguf_;
  std::shared_ptr<const void> keepalive_;  // owns the mappings behind tensors[].data
  std::unordered_map<std::string, size_t> index_;
};

// Loads a .gguf file or a HF model folder (config.json + safetensors + tokenizer files).
ModelSpec load_model_spec(const std::string& path);
ModelSpec load_gguf_model_spec(const std::string& path);
ModelSpec load_hf_model_spec(const std::string& dir);

// A HF folder's tokenizer.json is only named by load_model_spec (kind "tokenizer.json"): a
// 150k-token file is tens of MB, and the tokenizer loader reads it anyway. This fills `kind`
// (the model type, lower case) and `n_tokens` from the file, for `loom inspect`; it does nothing
// for other sources.
void describe_hf_tokenizer(TokenizerSource& tok);

// The loom architecture name for a HF model_type; nullopt when unknown.
std::optional<std::string> architecture_from_hf_model_type(std::string_view model_type);

}  // namespace loom
