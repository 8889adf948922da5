// The Llama family: llama (incl. llama3 rope scaling), mistral, qwen2 (q/k/v bias) and qwen3
// (per-head q/k RMSNorm). One pre-norm decoder block:
//   h = x + Wo · attn(rope(norm_q(Wq·rms(x))), rope(norm_k(Wk·rms(x))), Wv·rms(x))
//   y = h + Wdown · (silu(Wgate·rms(h)) * Wup·rms(h))
// Differences between the members are parameters (bias, q/k norm, rope style), not copies.
#include <cmath>

#include "core/error.h"
#include "model/model.h"
#include "model/model_registry.h"
#include "model/rope.h"
#include "model/weights.h"
#include "quant/quant.h"

namespace loom {

namespace {

struct LlamaLayer {
  TensorView attn_norm;       // [hidden]
  TensorView wq, wk, wv, wo;  // [n_heads*hd, hidden], [n_kv*hd, hidden] x2, [hidden, n_heads*hd]
  std::optional<TensorView> bq, bk, bv;      // qwen2: [n_heads*hd], [n_kv*hd] x2
  std::optional<TensorView> q_norm, k_norm;  // qwen3: [hd]
  TensorView ffn_norm;                       // [hidden]
  TensorView w_gate, w_up;                   // [ffn, hidden]
  TensorView w_down;                         // [hidden, ffn]
};

class LlamaFamilyModel final : public CausalLM {
 public:
  LlamaFamilyModel(const ModelSpec& spec, Backend& backend) : backend_(backend) {
    const HyperParams& hp = spec.hparams;
    auto need = [&](int64_t v, const char* what) {
      if (v <= 0) {
        fail(ErrorCode::kCorruption, "{}: hyper-parameter {} is missing", spec.path, what);
      }
      return v;
    };
    const int64_t hidden = need(hp.hidden_size, "hidden_size");
    const int64_t n_heads = need(hp.n_heads, "n_heads");
    const int64_t n_kv = need(hp.n_kv_heads, "n_kv_heads");
    const int64_t hd = need(hp.head_dim, "head_dim");
    const int64_t ffn = need(hp.ffn_size, "ffn_size");
    const int64_t vocab = need(hp.vocab_size, "vocab_size");
    need(hp.n_layers, "n_layers");
    if (n_heads % n_kv != 0) {
      fail(ErrorCode::kCorruption, "{}: {} heads are not a multiple of {} KV heads", spec.path,
           n_heads, n_kv);
    }
    if (hp.n_experts > 0) {
      fail(ErrorCode::kUnsupported, "{}: mixture-of-experts models are not supported yet",
           spec.path);
    }
    info_ = {spec.architecture,
             vocab,
             hidden,
             hp.n_layers,
             n_kv,
             hd,
             hp.context_length > 0 ? hp.context_length : 4096};
    eps_ = static_cast<float>(hp.norm_eps > 0 ? hp.norm_eps : 1e-6);
    attn_ = {n_heads, n_kv,
             hd,      1.0f / std::sqrt(static_cast<float>(hd)),
             0.0f,    spec.architecture == "qwen2" ? 0 : hp.sliding_window};

    // llama.cpp's converter permutes llama's Q/K rows so that its "normal" (interleaved) rope
    // equals HF's rotate_half; qwen2/qwen3 keep HF's layout in GGUF too.
    const bool interleaved = spec.format == ModelFormat::kGguf && spec.architecture == "llama";
    rope_ = make_rope_table(hp, hd, interleaved ? RopeStyle::kInterleaved : RopeStyle::kNeox,
                            hp.rope_theta > 0 ? hp.rope_theta : 10000.0, spec.path);

    WeightLoader w(spec);
    // llama.cpp stores llama3 rope scaling as per-dimension frequency divisors.
    if (auto rf = w.optional("rope_freqs.weight", {rope_.dims / 2})) {
      std::vector<float> factors(rope_.dims / 2);
      dequantize_row(rf->dtype, rf->data, factors.data(), rope_.dims / 2);
      for (size_t i = 0; i < factors.size(); ++i) rope_.inv_freq[i] /= factors[i];
    }
    tok_embd_ = w.require("token_embd.weight", {vocab, hidden});
    output_norm_ = w.require("output_norm.weight", {hidden});
    auto out = w.optional("output.weight", {vocab, hidden});
    output_ = out ? *out : tok_embd_;
    for (int64_t l = 0; l < hp.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      LlamaLayer L;
      L.attn_norm = w.require(p + "attn_norm.weight", {hidden});
      L.wq = w.require(p + "attn_q.weight", {n_heads * hd, hidden});
      L.wk = w.require(p + "attn_k.weight", {n_kv * hd, hidden});
      L.wv = w.require(p + "attn_v.weight", {n_kv * hd, hidden});
      L.wo = w.require(p + "attn_output.weight", {hidden, n_heads * hd});
      L.bq = w.optional(p + "attn_q.bias", {n_heads * hd});
      L.bk = w.optional(p + "attn_k.bias", {n_kv * hd});
      L.bv = w.optional(p + "attn_v.bias", {n_kv * hd});
      L.q_norm = w.optional(p + "attn_q_norm.weight", {hd});
      L.k_norm = w.optional(p + "attn_k_norm.weight", {hd});
      if (spec.architecture == "qwen3" && (!L.q_norm || !L.k_norm)) {
        fail(ErrorCode::kCorruption, "{}: qwen3 layer {} lacks attn_q_norm/attn_k_norm", spec.path,
             l);
      }
      L.ffn_norm = w.require(p + "ffn_norm.weight", {hidden});
      L.w_gate = w.require(p + "ffn_gate.weight", {ffn, hidden});
      L.w_up = w.require(p + "ffn_up.weight", {ffn, hidden});
      L.w_down = w.require(p + "ffn_down.weight", {hidden, ffn});
      layers_.push_back(std::move(L));
    }
  }

  void forward(const Batch& batch, KvCache& cache, Activations& logits) override {
    Backend& be = backend_;
    const int64_t hidden = info_.hidden_size;
    be.embed(tok_embd_, batch.tokens, x_);
    for (size_t l = 0; l < layers_.size(); ++l) {
      const LlamaLayer& L = layers_[l];
      be.rms_norm(x_, L.attn_norm, eps_, 0.0f, hidden, h_);
      be.matmul(h_, L.wq, L.bq ? &*L.bq : nullptr, q_);
      be.matmul(h_, L.wk, L.bk ? &*L.bk : nullptr, k_);
      be.matmul(h_, L.wv, L.bv ? &*L.bv : nullptr, v_);
      if (L.q_norm) be.rms_norm(q_, *L.q_norm, eps_, 0.0f, info_.head_dim, q_);
      if (L.k_norm) be.rms_norm(k_, *L.k_norm, eps_, 0.0f, info_.head_dim, k_);
      be.rope(q_, attn_.n_heads, attn_.head_dim, batch.positions, rope_);
      be.rope(k_, attn_.n_kv_heads, attn_.head_dim, batch.positions, rope_);
      be.attention(q_, k_, v_, cache, static_cast<int64_t>(l), batch.seqs, attn_, a_);
      be.matmul(a_, L.wo, nullptr, h_);
      be.add(x_, h_);
      be.rms_norm(x_, L.ffn_norm, eps_, 0.0f, hidden, h_);
      be.matmul(h_, L.w_gate, nullptr, g_);
      be.matmul(h_, L.w_up, nullptr, u_);
      be.swiglu(g_, u_, g_);
      be.matmul(g_, L.w_down, nullptr, h_);
      be.add(x_, h_);
    }
    // Only the rows whose logits are wanted go through the output head.
    sel_.resize(static_cast<int64_t>(batch.logit_rows.size()), hidden);
    for (size_t i = 0; i < batch.logit_rows.size(); ++i) {
      std::copy_n(x_.row(batch.logit_rows[i]), hidden, sel_.row(static_cast<int64_t>(i)));
    }
    be.rms_norm(sel_, output_norm_, eps_, 0.0f, hidden, h_);
    be.matmul(h_, output_, nullptr, logits);
  }

 private:
  Backend& backend_;
  float eps_ = 1e-6f;
  AttentionParams attn_;
  RopeTable rope_;
  TensorView tok_embd_, output_norm_, output_;
  std::vector<LlamaLayer> layers_;
  Activations x_, h_, q_, k_, v_, a_, g_, u_, sel_;  // reused across steps
};

}  // namespace

void register_llama_family(ModelRegistry& r) {
  auto make = [](const ModelSpec& spec, Backend& backend) -> std::unique_ptr<CausalLM> {
    return std::make_unique<LlamaFamilyModel>(spec, backend);
  };
  for (const char* arch : {"llama", "mistral", "qwen2", "qwen3"}) r.add(arch, make);
}

}  // namespace loom
