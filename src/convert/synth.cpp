// loom synth: a HF folder with random weights of any Llama-family shape, so that benchmarks run
// at real sizes (e.g. the 1.1B shape) without downloading a model.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "convert/convert.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "io/safetensors_writer.h"
#include "quant/half.h"

namespace loom {

namespace fs = std::filesystem;

void synth_hf_model(const SynthOptions& o, const std::string& out_dir) {
  if (o.arch != "llama" && o.arch != "qwen2" && o.arch != "qwen3") {
    fail(ErrorCode::kUnsupported, "synth: architecture '{}' is not supported (llama, qwen2, qwen3)",
         o.arch);
  }
  int64_t vocab = o.vocab;
  const std::vector<std::string> tokenizer_files = {
      "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"};
  nlohmann::json source_config;
  if (!o.vocab_from.empty()) {
    ModelSpec src = load_model_spec(o.vocab_from);
    if (src.format != ModelFormat::kHfFolder) {
      fail(ErrorCode::kInvalidArgument, "synth: --vocab-from must be a HF model folder");
    }
    vocab = src.hparams.vocab_size;
    source_config = {{"bos_token_id", src.hparams.bos_token_ids.empty()
                                          ? nlohmann::json(nullptr)
                                          : nlohmann::json(src.hparams.bos_token_ids[0])},
                     {"eos_token_id", src.hparams.eos_token_ids.empty()
                                          ? nlohmann::json(nullptr)
                                          : nlohmann::json(src.hparams.eos_token_ids[0])}};
  }
  const int64_t kv = o.kv_heads > 0 ? o.kv_heads : o.heads;
  if (o.hidden <= 0 || o.layers <= 0 || o.heads <= 0 || o.ffn <= 0 || vocab <= 0 ||
      o.hidden % o.heads != 0 || o.heads % kv != 0) {
    fail(ErrorCode::kInvalidArgument,
         "synth: need positive --hidden, --layers, --heads, --ffn and a vocabulary; hidden must "
         "divide by heads and heads by kv-heads");
  }
  const int64_t hd = o.hidden / o.heads;
  fs::create_directories(out_dir);

  nlohmann::ordered_json config = {
      {"architectures",
       {o.arch == "llama"   ? "LlamaForCausalLM"
        : o.arch == "qwen2" ? "Qwen2ForCausalLM"
                            : "Qwen3ForCausalLM"}},
      {"model_type", o.arch},
      {"hidden_size", o.hidden},
      {"intermediate_size", o.ffn},
      {"num_hidden_layers", o.layers},
      {"num_attention_heads", o.heads},
      {"num_key_value_heads", kv},
      {"head_dim", hd},
      {"vocab_size", vocab},
      {"max_position_embeddings", o.context},
      {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},
      {"hidden_act", "silu"},
      {"tie_word_embeddings", false},
      {"torch_dtype", "bfloat16"},
      {"attention_bias", o.arch == "qwen2"},
  };
  for (auto& [k, v] : source_config.items()) config[k] = v;
  std::ofstream(fs::path(out_dir) / "config.json") << config.dump(2) << "\n";
  if (!o.vocab_from.empty()) {
    for (const std::string& f : tokenizer_files) {
      if (fs::exists(fs::path(o.vocab_from) / f)) {
        fs::copy_file(fs::path(o.vocab_from) / f, fs::path(out_dir) / f,
                      fs::copy_options::overwrite_existing);
      }
    }
  }

  struct Spec {
    std::string name;
    std::vector<int64_t> shape;
    bool ones;
  };
  std::vector<Spec> specs = {{"model.embed_tokens.weight", {vocab, o.hidden}, false}};
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    specs.push_back({p + "input_layernorm.weight", {o.hidden}, true});
    specs.push_back({p + "self_attn.q_proj.weight", {o.heads * hd, o.hidden}, false});
    specs.push_back({p + "self_attn.k_proj.weight", {kv * hd, o.hidden}, false});
    specs.push_back({p + "self_attn.v_proj.weight", {kv * hd, o.hidden}, false});
    if (o.arch == "qwen2") {
      specs.push_back({p + "self_attn.q_proj.bias", {o.heads * hd}, false});
      specs.push_back({p + "self_attn.k_proj.bias", {kv * hd}, false});
      specs.push_back({p + "self_attn.v_proj.bias", {kv * hd}, false});
    }
    if (o.arch == "qwen3") {
      specs.push_back({p + "self_attn.q_norm.weight", {hd}, true});
      specs.push_back({p + "self_attn.k_norm.weight", {hd}, true});
    }
    specs.push_back({p + "self_attn.o_proj.weight", {o.hidden, o.heads * hd}, false});
    specs.push_back({p + "post_attention_layernorm.weight", {o.hidden}, true});
    specs.push_back({p + "mlp.gate_proj.weight", {o.ffn, o.hidden}, false});
    specs.push_back({p + "mlp.up_proj.weight", {o.ffn, o.hidden}, false});
    specs.push_back({p + "mlp.down_proj.weight", {o.hidden, o.ffn}, false});
  }
  specs.push_back({"model.norm.weight", {o.hidden}, true});
  specs.push_back({"lm_head.weight", {vocab, o.hidden}, false});

  ThreadPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  std::vector<std::vector<uint16_t>> data(specs.size());
  std::vector<SafetensorsEntry> entries;
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t n = 1;
    for (int64_t d : specs[i].shape) n *= d;
    data[i].resize(n);
    const bool ones = specs[i].ones;
    // Chunks seeded by (seed, tensor, chunk) so the output does not depend on the thread count.
    const int64_t chunk = 1 << 16;
    pool.parallel_for((n + chunk - 1) / chunk, [&](int64_t b, int64_t e, int) {
      for (int64_t c = b; c < e; ++c) {
        std::mt19937_64 rng(o.seed * 1000003u + i * 7919u + c);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        for (int64_t j = c * chunk; j < std::min(n, (c + 1) * chunk); ++j) {
          data[i][j] = fp32_to_bf16(ones ? 1.0f : normal(rng));
        }
      }
    });
    entries.push_back({specs[i].name, DType::kBF16, specs[i].shape, data[i].data(),
                       data[i].size() * sizeof(uint16_t)});
  }
  write_safetensors((fs::path(out_dir) / "model.safetensors").string(), entries,
                    {{"format", "pt"}});
}

}  // namespace loom
