// The Llama family: llama (incl. llama3 rope scaling), mistral, qwen2 (q/k/v bias), qwen3
// (per-head q/k RMSNorm), phi3 (fused qkv and gate_up, split as row views) and the
// mixture-of-experts members mixtral (= llama + MoE; llama.cpp's arch "llama") and qwen3moe
// (= qwen3 + MoE). One pre-norm decoder block:
//   h = x + Wo · attn(rope(norm_q(Wq·rms(x))), rope(norm_k(Wk·rms(x))), Wv·rms(x))
//   y = h + Wdown · (silu(Wgate·rms(h)) * Wup·rms(h))      (dense)
//   y = h + sum over the top-k experts e of w_e · FFN_e(rms(h))   (MoE)
// Differences between the members are parameters (bias, q/k norm, rope style, fused weights,
// experts), not copies; the blocks are shared with the other families (blocks.h).
#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "model/blocks.h"
#include "model/model.h"
#include "model/model_registry.h"
#include "model/pipeline.h"
#include "model/rope.h"
#include "model/weights.h"
#include "quant/quant.h"

namespace loom {

namespace {

struct LlamaLayer {
  TensorView attn_norm;  // [hidden]
  AttentionWeights attn;
  TensorView ffn_norm;                 // [hidden]
  std::optional<GatedFfnWeights> ffn;  // dense layers
  std::optional<MoeWeights> moe;       // mixture-of-experts layers
};

class LlamaFamilyModel final : public StagedDecoder {
 public:
  LlamaFamilyModel(const ModelSpec& spec, Backend& backend, const ShardSpec& shard)
      : StagedDecoder(backend, shard) {
    const HyperParams& hp = spec.hparams;
    const std::string& arch = spec.architecture;
    const AttentionShape whole = attention_shape(spec);
    // With tensor parallelism this rank runs its share of the heads (ShardSpec).
    const AttentionShape shape = shard_shape(whole, shard, spec.path);
    const int64_t hidden = shape.hidden, n_heads = shape.n_heads, n_kv = shape.n_kv_heads,
                  hd = shape.head_dim;
    const int64_t vocab = need_hparam(spec, hp.vocab_size, "vocab_size");
    need_hparam(spec, hp.n_layers, "n_layers");
    // With pipeline stages this rank holds its stage's layers (and KV cache) only.
    const Part layers = stage_layers(spec, shard);
    const bool first_stage = shard.stage == 0, last_stage = shard.stage == shard.stages - 1;
    const bool moe = hp.n_experts > 0;
    if (moe && (hp.n_experts_used <= 0 || hp.n_experts_used > hp.n_experts)) {
      fail(ErrorCode::kCorruption, "{}: {} experts per token is not in [1, {}]", spec.path,
           hp.n_experts_used, hp.n_experts);
    }
    // Mixtral's experts are intermediate_size wide; qwen3moe's moe_intermediate_size.
    const int64_t ffn = moe && hp.expert_ffn_size > 0 ? hp.expert_ffn_size
                                                      : need_hparam(spec, hp.ffn_size, "ffn_size");
    info_ = {arch,
             vocab,
             hidden,
             layers.count,
             n_kv,
             hd,
             hp.context_length > 0 ? hp.context_length : 4096};
    eps_ = static_cast<float>(hp.norm_eps > 0 ? hp.norm_eps : 1e-6);
    act_ = parse_activation(hp.activation, Activation::kSilu, spec.path);
    // The qwen family slides only when use_sliding_window is set, which no member we run uses.
    const bool qwen = arch == "qwen2" || arch == "qwen3" || arch == "qwen3moe";
    attn_.params = {n_heads, n_kv,
                    hd,      1.0f / std::sqrt(static_cast<float>(hd)),
                    0.0f,    qwen ? 0 : hp.sliding_window};
    attn_.qk_norm_eps = eps_;

    // llama.cpp's converter permutes llama's (and mixtral's) Q/K rows so that its "normal"
    // (interleaved) rope equals HF's rotate_half; the others keep HF's layout in GGUF too.
    const bool interleaved = spec.format == ModelFormat::kGguf && arch == "llama";
    rope_ = make_rope_table(hp, hd, interleaved ? RopeStyle::kInterleaved : RopeStyle::kNeox,
                            hp.rope_theta > 0 ? hp.rope_theta : 10000.0, spec.path);
    attn_.rope = &rope_;

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
    // Split over ranks by vocabulary rows; the logits are gathered (all_gather).
    output_ = shard_output_head(out ? *out : tok_embd_, shard);
    for (int64_t l = layers.first; l < layers.first + layers.count; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      LlamaLayer L;
      L.attn_norm = w.require(p + "attn_norm.weight", {hidden});
      L.attn =
          shard_attention(load_attention(w, p, whole), whole, shard, arena_, spec.path + ": " + p);
      if ((arch == "qwen3" || arch == "qwen3moe") && (!L.attn.q_norm || !L.attn.k_norm)) {
        fail(ErrorCode::kCorruption, "{}: {} layer {} lacks attn_q_norm/attn_k_norm", spec.path,
             arch, l);
      }
      L.ffn_norm = w.require(p + "ffn_norm.weight", {hidden});
      if (moe) {
        L.moe = load_moe(w, p, hidden, ffn, hp.n_experts, hp.n_experts_used, hp.expert_norm_topk);
        // Every rank routes every token (the router is whole) and runs its features of each
        // expert; the partial sums meet in the all-reduce.
        for (size_t e = 0; e < L.moe->experts.size(); ++e) {
          L.moe->experts[e] = shard_gated_ffn(L.moe->experts[e], ffn, shard, arena_,
                                              fmt::format("{}: {}expert {} ", spec.path, p, e));
        }
      } else {
        L.ffn = shard_gated_ffn(load_gated_ffn(w, p, hidden, ffn), ffn, shard, arena_,
                                spec.path + ": " + p);
      }
      prepare_vectors(backend_, L.attn_norm, L.ffn_norm);
      prepare(backend_, L.attn, arena_);
      if (L.ffn) prepare(backend_, *L.ffn, arena_);
      if (L.moe) prepare(backend_, *L.moe);
      layers_.push_back(std::move(L));
    }
    if (first_stage) prepare(backend_, tok_embd_, embedding_use(tok_embd_, output_));
    if (last_stage) {
      prepare(backend_, output_, WeightUse::kMatrix);
      prepare_vectors(backend_, output_norm_);
    }
  }

 private:
  void embed(const Batch& batch, Activations& x) override {
    backend_.embed(tok_embd_, batch.tokens, x);
  }

  // This rank's layers over x (in place).
  void run_layers(KvCache& cache, Activations& x) override {
    Backend& be = backend_;
    const int64_t hidden = info_.hidden_size;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const LlamaLayer& L = layers_[l];
      be.rms_norm(x, L.attn_norm, eps_, 0.0f, hidden, h_);
      attention_block(be, L.attn, attn_, h_, cache, static_cast<int64_t>(l), buf_, h_);
      if (shard_.world > 1) be.all_reduce(h_);  // the heads' shares of Wo · attn
      be.add(x, h_);
      be.rms_norm(x, L.ffn_norm, eps_, 0.0f, hidden, h_);
      if (L.moe && shard_.world > 1) {
        if (zeros_.size() != static_cast<size_t>(h_.numel())) zeros_.assign(h_.numel(), 0.0f);
        be.upload(zeros_, h_.rows(), hidden, part_);
        moe_ffn_accumulate(be, *L.moe, act_, h_, part_);
        be.all_reduce(part_);  // the features' shares of every chosen expert
        be.add(x, part_);
      } else if (L.moe) {
        moe_ffn_accumulate(be, *L.moe, act_, h_, x);
      } else {
        gated_ffn(be, *L.ffn, act_, h_, buf_, h_);
        if (shard_.world > 1) be.all_reduce(h_);  // the features' shares of Wdown · act
        be.add(x, h_);
      }
    }
  }

  // The last stage: the final norm and the output head over the batch's logit rows of x.
  void output_head(const Batch& batch, const Activations& x, Activations& logits) override {
    Backend& be = backend_;
    select_logit_rows(be, x, batch, buf_, sel_);
    be.rms_norm(sel_, output_norm_, eps_, 0.0f, info_.hidden_size, h_);
    vocab_parallel_head(be, h_, output_, info_.vocab_size, part_, logits);
  }

  WeightArena arena_;  // this rank's column slices
  float eps_ = 1e-6f;
  Activation act_ = Activation::kSilu;
  AttentionOptions attn_;
  RopeTable rope_;
  TensorView tok_embd_, output_norm_, output_;
  std::vector<LlamaLayer> layers_;
  BlockBuffers buf_;
  Activations h_, sel_;  // reused across steps
  Activations part_;     // tensor parallel: this rank's share before a collective
  std::vector<float> zeros_;
};

}  // namespace

void register_llama_family(ModelRegistry& r) {
  auto make = [](const ModelSpec& spec, Backend& backend,
                 const ShardSpec& shard) -> std::unique_ptr<CausalLM> {
    return std::make_unique<LlamaFamilyModel>(spec, backend, shard);
  };
  for (const char* arch : {"llama", "mistral", "qwen2", "qwen3", "phi3", "qwen3moe"}) {
    r.add(arch, make);
  }
}

}  // namespace loom
