#include "io/tensor_names.h"

#include <array>
#include <charconv>
#include <utility>

namespace loom {

namespace {

struct Rule {
  std::string_view hf;    // suffix after the layer prefix, or a whole name for globals
  std::string_view gguf;  // GGUF suffix after "blk.N." or whole name
};

// Whole-model tensors. Several HF families spell the same thing differently.
constexpr std::array kGlobal = {
    Rule{"model.embed_tokens.weight", "token_embd.weight"},
    Rule{"model.norm.weight", "output_norm.weight"},
    Rule{"lm_head.weight", "output.weight"},
    // gpt2
    Rule{"transformer.wte.weight", "token_embd.weight"},
    Rule{"transformer.wpe.weight", "position_embd.weight"},
    Rule{"transformer.ln_f.weight", "output_norm.weight"},
    Rule{"transformer.ln_f.bias", "output_norm.bias"},
    Rule{"wte.weight", "token_embd.weight"},
    Rule{"wpe.weight", "position_embd.weight"},
    Rule{"ln_f.weight", "output_norm.weight"},
    Rule{"ln_f.bias", "output_norm.bias"},
    // bert
    Rule{"embeddings.word_embeddings.weight", "token_embd.weight"},
    Rule{"embeddings.position_embeddings.weight", "position_embd.weight"},
    Rule{"embeddings.token_type_embeddings.weight", "token_types.weight"},
    Rule{"embeddings.LayerNorm.weight", "token_embd_norm.weight"},
    Rule{"embeddings.LayerNorm.bias", "token_embd_norm.bias"},
    // clip / siglip vision towers (llama.cpp's clip names)
    Rule{"embeddings.class_embedding", "v.class_embd"},
    Rule{"embeddings.patch_embedding.weight", "v.patch_embd.weight"},
    Rule{"embeddings.patch_embedding.bias", "v.patch_embd.bias"},
    Rule{"embeddings.position_embedding.weight", "v.position_embd.weight"},
    Rule{"pre_layrnorm.weight", "v.pre_ln.weight"},
    Rule{"pre_layrnorm.bias", "v.pre_ln.bias"},
    Rule{"post_layernorm.weight", "v.post_ln.weight"},
    Rule{"post_layernorm.bias", "v.post_ln.bias"},
};

// Per-layer tensors, after the layer prefix.
constexpr std::array kLayer = {
    Rule{"input_layernorm.weight", "attn_norm.weight"},
    Rule{"self_attn.q_proj.weight", "attn_q.weight"},
    Rule{"self_attn.k_proj.weight", "attn_k.weight"},
    Rule{"self_attn.v_proj.weight", "attn_v.weight"},
    Rule{"self_attn.o_proj.weight", "attn_output.weight"},
    Rule{"self_attn.q_proj.bias", "attn_q.bias"},
    Rule{"self_attn.k_proj.bias", "attn_k.bias"},
    Rule{"self_attn.v_proj.bias", "attn_v.bias"},
    Rule{"self_attn.o_proj.bias", "attn_output.bias"},
    Rule{"self_attn.q_norm.weight", "attn_q_norm.weight"},
    Rule{"self_attn.k_norm.weight", "attn_k_norm.weight"},
    Rule{"self_attn.qkv_proj.weight", "attn_qkv.weight"},
    Rule{"mlp.gate_proj.weight", "ffn_gate.weight"},
    Rule{"mlp.up_proj.weight", "ffn_up.weight"},
    Rule{"mlp.down_proj.weight", "ffn_down.weight"},
    Rule{"mlp.gate_up_proj.weight", "ffn_up.weight"},  // phi3: fused gate+up, as llama.cpp
    // MoE routers
    Rule{"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    Rule{"mlp.gate.weight", "ffn_gate_inp.weight"},
    // gpt2
    Rule{"ln_1.weight", "attn_norm.weight"},
    Rule{"ln_1.bias", "attn_norm.bias"},
    Rule{"ln_2.weight", "ffn_norm.weight"},
    Rule{"ln_2.bias", "ffn_norm.bias"},
    Rule{"attn.c_attn.weight", "attn_qkv.weight"},
    Rule{"attn.c_attn.bias", "attn_qkv.bias"},
    Rule{"attn.c_proj.weight", "attn_output.weight"},
    Rule{"attn.c_proj.bias", "attn_output.bias"},
    Rule{"mlp.c_fc.weight", "ffn_up.weight"},
    Rule{"mlp.c_fc.bias", "ffn_up.bias"},
    Rule{"mlp.c_proj.weight", "ffn_down.weight"},
    Rule{"mlp.c_proj.bias", "ffn_down.bias"},
    // bert
    Rule{"attention.self.query.weight", "attn_q.weight"},
    Rule{"attention.self.query.bias", "attn_q.bias"},
    Rule{"attention.self.key.weight", "attn_k.weight"},
    Rule{"attention.self.key.bias", "attn_k.bias"},
    Rule{"attention.self.value.weight", "attn_v.weight"},
    Rule{"attention.self.value.bias", "attn_v.bias"},
    Rule{"attention.output.dense.weight", "attn_output.weight"},
    Rule{"attention.output.dense.bias", "attn_output.bias"},
    Rule{"attention.output.LayerNorm.weight", "attn_output_norm.weight"},
    Rule{"attention.output.LayerNorm.bias", "attn_output_norm.bias"},
    Rule{"intermediate.dense.weight", "ffn_up.weight"},
    Rule{"intermediate.dense.bias", "ffn_up.bias"},
    Rule{"output.dense.weight", "ffn_down.weight"},
    Rule{"output.dense.bias", "ffn_down.bias"},
    Rule{"output.LayerNorm.weight", "layer_output_norm.weight"},
    Rule{"output.LayerNorm.bias", "layer_output_norm.bias"},
    // clip / siglip encoder layers
    Rule{"layer_norm1.weight", "ln1.weight"},
    Rule{"layer_norm1.bias", "ln1.bias"},
    Rule{"layer_norm2.weight", "ln2.weight"},
    Rule{"layer_norm2.bias", "ln2.bias"},
    Rule{"self_attn.out_proj.weight", "attn_out.weight"},
    Rule{"self_attn.out_proj.bias", "attn_out.bias"},
    Rule{"mlp.fc1.weight", "ffn_up.weight"},
    Rule{"mlp.fc1.bias", "ffn_up.bias"},
    Rule{"mlp.fc2.weight", "ffn_down.weight"},
    Rule{"mlp.fc2.bias", "ffn_down.bias"},
};

// Gemma 2/3 have four norms per layer; llama.cpp names them differently from llama's two.
constexpr std::array kGemmaLayer = {
    Rule{"post_attention_layernorm.weight", "post_attention_norm.weight"},
    Rule{"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    Rule{"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
};
constexpr Rule kLlamaPostAttnNorm{"post_attention_layernorm.weight", "ffn_norm.weight"};

constexpr std::array kLayerPrefixes = {
    std::string_view("model.layers."),  std::string_view("transformer.h."),  std::string_view("h."),
    std::string_view("encoder.layer."), std::string_view("encoder.layers."),
};

// "12.rest" -> (12, "rest")
std::optional<std::pair<int, std::string_view>> split_layer(std::string_view s) {
  int n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p == s.data() || p == s.data() + s.size() || *p != '.') {
    return std::nullopt;
  }
  return std::pair{n, s.substr(p - s.data() + 1)};
}

// Expert tensors: "block_sparse_moe.experts.E.w1.weight" / "mlp.experts.E.gate_proj.weight".
// Kept per expert (blk.N.ffn_gate.E.weight); `loom convert` stacks them into llama.cpp's
// 3-D ffn_gate_exps tensors.
std::optional<std::string> map_expert(std::string_view rest) {
  for (std::string_view prefix :
       {std::string_view("block_sparse_moe.experts."), std::string_view("mlp.experts.")}) {
    if (!rest.starts_with(prefix)) continue;
    auto split = split_layer(rest.substr(prefix.size()));
    if (!split) return std::nullopt;
    auto [e, tail] = *split;
    std::string_view kind;
    if (tail == "w1.weight" || tail == "gate_proj.weight") kind = "ffn_gate";
    if (tail == "w3.weight" || tail == "up_proj.weight") kind = "ffn_up";
    if (tail == "w2.weight" || tail == "down_proj.weight") kind = "ffn_down";
    if (kind.empty()) return std::nullopt;
    return std::string(kind) + "." + std::to_string(e) + ".weight";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> hf_to_gguf_tensor_name(std::string_view model_type,
                                                  std::string_view hf_name) {
  // Vision-language checkpoints nest the towers; the vision-only ones we read do not.
  for (const Rule& r : kGlobal) {
    if (r.hf == hf_name) return std::string(r.gguf);
  }
  const bool gemma = model_type.starts_with("gemma");
  const bool vision = model_type.find("vision") != std::string_view::npos || model_type == "clip" ||
                      model_type == "siglip";
  for (std::string_view prefix : kLayerPrefixes) {
    if (!hf_name.starts_with(prefix)) continue;
    auto split = split_layer(hf_name.substr(prefix.size()));
    if (!split) return std::nullopt;
    auto [layer, rest] = *split;
    std::string blk = (vision ? "v.blk." : "blk.") + std::to_string(layer) + ".";
    if (gemma) {
      for (const Rule& r : kGemmaLayer) {
        if (r.hf == rest) return blk + std::string(r.gguf);
      }
    } else if (rest == kLlamaPostAttnNorm.hf) {
      return blk + std::string(kLlamaPostAttnNorm.gguf);
    }
    if (vision) {
      // clip/siglip attention projections are named like llama's but live in the vision tree.
      if (rest.starts_with("self_attn.") && rest.find("_proj.") != std::string_view::npos &&
          !rest.starts_with("self_attn.out_proj")) {
        std::string_view which = rest.substr(10, 1);  // q, k or v
        std::string_view kind = rest.substr(rest.rfind('.') + 1);
        return blk + "attn_" + std::string(which) + "." + std::string(kind);
      }
    }
    for (const Rule& r : kLayer) {
      if (r.hf == rest) return blk + std::string(r.gguf);
    }
    if (auto e = map_expert(rest)) return blk + *e;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace loom
