// Gemma 2 and Gemma 3 (text). Decoder block with "sandwich" norms (HF Gemma2DecoderLayer):
//   h = x + post_attn_norm(Wo · attn(pre_attn_norm(x)))
//   y = h + post_ffw_norm(Wdown · (gelu_tanh(Wgate·pre_ffw_norm(h)) * Wup·pre_ffw_norm(h)))
// and, as HF's Gemma models:
//   - the embedding is multiplied by sqrt(hidden) (HF casts the normaliser to the compute
//     dtype; the references compute in float32, so it is float32 here);
//   - RMSNorm scales by (1 + weight). llama.cpp's converter stores weight + 1 in GGUF (its
//     Gemma2Model adds 1 to every "norm.weight"), so the offset is 1 from HF folders, 0 from GGUF;
//   - attention scores are scaled by query_pre_attn_scalar^-0.5 (not head_dim^-0.5);
//   - layers alternate sliding-window and global attention (config layer_types; else every
//     2nd (gemma2) / 6th (gemma3) layer is global, as llama.cpp's default pattern);
//   - gemma2: tanh soft-capping of attention scores and of the final logits;
//   - gemma3: per-head q/k RMSNorm, and sliding layers rotate with rope_local_base_freq
//     (10000) while global layers use rope_theta and its scaling.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/blocks.h"
#include "model/model.h"
#include "model/model_registry.h"
#include "model/pipeline.h"
#include "model/rope.h"
#include "model/weights.h"

namespace loom {

namespace {

struct GemmaLayer {
  TensorView attn_norm;  // [hidden]
  AttentionWeights attn;
  TensorView post_attn_norm;  // [hidden]
  TensorView ffn_norm;        // [hidden] (pre_feedforward_layernorm)
  GatedFfnWeights ffn;
  TensorView post_ffw_norm;  // [hidden]
  bool sliding = false;
};

// Whether layer l uses sliding-window attention.
std::vector<bool> sliding_layers(const ModelSpec& spec) {
  const HyperParams& hp = spec.hparams;
  std::vector<bool> out(hp.n_layers);
  if (!hp.layer_types.empty()) {
    if (static_cast<int64_t>(hp.layer_types.size()) != hp.n_layers) {
      fail(ErrorCode::kCorruption, "{}: layer_types has {} entries for {} layers", spec.path,
           hp.layer_types.size(), hp.n_layers);
    }
    for (int64_t l = 0; l < hp.n_layers; ++l) {
      const std::string& t = hp.layer_types[l];
      if (t != "sliding_attention" && t != "full_attention") {
        fail(ErrorCode::kUnsupported, "{}: layer type '{}' is not supported", spec.path, t);
      }
      out[l] = t == "sliding_attention";
    }
    return out;
  }
  int64_t period = hp.sliding_window_pattern;
  if (period <= 0) period = spec.architecture == "gemma2" ? 2 : 6;
  for (int64_t l = 0; l < hp.n_layers; ++l) out[l] = (l + 1) % period != 0;
  return out;
}

class GemmaModel final : public StagedDecoder {
 public:
  GemmaModel(const ModelSpec& spec, Backend& backend, const ShardSpec& shard)
      : StagedDecoder(backend, shard) {
    const HyperParams& hp = spec.hparams;
    const bool gemma3 = spec.architecture == "gemma3";
    const AttentionShape whole = attention_shape(spec);
    // Tensor parallel: this rank's heads (blocks.h head_part); the query scale below keeps the
    // whole model's head counts.
    const AttentionShape shape = shard_shape(whole, shard, spec.path);
    const int64_t hidden = shape.hidden, n_heads = shape.n_heads, n_kv = shape.n_kv_heads,
                  hd = shape.head_dim;
    const int64_t ffn = need_hparam(spec, hp.ffn_size, "ffn_size");
    const int64_t vocab = need_hparam(spec, hp.vocab_size, "vocab_size");
    need_hparam(spec, hp.n_layers, "n_layers");
    const Part layers = stage_layers(spec, shard);
    info_ = {spec.architecture,
             vocab,
             hidden,
             layers.count,
             n_kv,
             hd,
             hp.context_length > 0 ? hp.context_length : 8192};
    eps_ = static_cast<float>(hp.norm_eps > 0 ? hp.norm_eps : 1e-6);
    norm_offset_ = spec.format == ModelFormat::kHfFolder ? 1.0f : 0.0f;
    embed_scale_ = std::sqrt(static_cast<float>(hidden));
    final_softcap_ = static_cast<float>(hp.final_logit_softcap);
    act_ = parse_activation(hp.activation, Activation::kGeluTanh, spec.path);

    // GGUFs from llama.cpp's converter carry no query_pre_attn_scalar; as llama.cpp's loader,
    // the 27B models (gemma2: 46 layers, gemma3: 62) use hidden / n_heads, the others head_dim.
    const bool is_27b = hp.n_layers == (gemma3 ? 62 : 46);
    double qpas = is_27b ? static_cast<double>(hidden / whole.n_heads) : static_cast<double>(hd);
    if (hp.query_pre_attn_scalar > 0) qpas = hp.query_pre_attn_scalar;
    AttentionOptions base;
    base.params = {n_heads,
                   n_kv,
                   hd,
                   static_cast<float>(1.0 / std::sqrt(qpas)),
                   static_cast<float>(hp.attn_logit_softcap),
                   0};
    base.qk_norm_eps = eps_;
    base.qk_norm_offset = norm_offset_;
    global_ = base;
    local_ = base;
    local_.params.sliding_window = hp.sliding_window;

    global_rope_ = make_rope_table(hp, hd, RopeStyle::kNeox,
                                   hp.rope_theta > 0 ? hp.rope_theta : 10000.0, spec.path);
    if (gemma3) {
      // Sliding layers: the local base, without the global layers' scaling.
      HyperParams local = hp;
      local.rope_scaling = RopeScaling{};
      local_rope_ =
          make_rope_table(local, hd, RopeStyle::kNeox,
                          hp.rope_local_theta > 0 ? hp.rope_local_theta : 10000.0, spec.path);
    } else {
      local_rope_ = global_rope_;
    }
    global_.rope = &global_rope_;
    local_.rope = &local_rope_;

    const std::vector<bool> sliding = sliding_layers(spec);
    if (hp.sliding_window <= 0 &&
        std::find(sliding.begin(), sliding.end(), true) != sliding.end()) {
      fail(ErrorCode::kCorruption, "{}: sliding-window layers but no sliding_window size",
           spec.path);
    }

    WeightLoader w(spec);
    tok_embd_ = w.require("token_embd.weight", {vocab, hidden});
    output_norm_ = w.require("output_norm.weight", {hidden});
    auto out = w.optional("output.weight", {vocab, hidden});
    output_ = shard_output_head(out ? *out : tok_embd_, shard);
    for (int64_t l = layers.first; l < layers.first + layers.count; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      GemmaLayer L;
      L.attn_norm = w.require(p + "attn_norm.weight", {hidden});
      L.attn =
          shard_attention(load_attention(w, p, whole), whole, shard, arena_, spec.path + ": " + p);
      if (gemma3 && (!L.attn.q_norm || !L.attn.k_norm)) {
        fail(ErrorCode::kCorruption, "{}: gemma3 layer {} lacks attn_q_norm/attn_k_norm", spec.path,
             l);
      }
      L.post_attn_norm = w.require(p + "post_attention_norm.weight", {hidden});
      L.ffn_norm = w.require(p + "ffn_norm.weight", {hidden});
      L.ffn = shard_gated_ffn(load_gated_ffn(w, p, hidden, ffn), ffn, shard, arena_,
                              spec.path + ": " + p);
      L.post_ffw_norm = w.require(p + "post_ffw_norm.weight", {hidden});
      L.sliding = sliding[l];
      prepare_vectors(backend_, L.attn_norm, L.post_attn_norm, L.ffn_norm, L.post_ffw_norm);
      prepare(backend_, L.attn, arena_);
      prepare(backend_, L.ffn, arena_);
      layers_.push_back(std::move(L));
    }
    if (shard.stage == 0) prepare(backend_, tok_embd_, embedding_use(tok_embd_, output_));
    if (shard.stage == shard.stages - 1) {
      prepare(backend_, output_, WeightUse::kMatrix);
      prepare_vectors(backend_, output_norm_);
    }
  }

 private:
  void embed(const Batch& batch, Activations& x) override {
    backend_.embed(tok_embd_, batch.tokens, x);
    backend_.scale(x, embed_scale_);
  }

  void run_layers(KvCache& cache, Activations& x) override {
    Backend& be = backend_;
    const int64_t hidden = info_.hidden_size;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const GemmaLayer& L = layers_[l];
      be.rms_norm(x, L.attn_norm, eps_, norm_offset_, hidden, h_);
      attention_block(be, L.attn, L.sliding ? local_ : global_, h_, cache, static_cast<int64_t>(l),
                      buf_, h_);
      if (shard_.world > 1) be.all_reduce(h_);  // the heads' shares, before the sandwich norm
      be.rms_norm(h_, L.post_attn_norm, eps_, norm_offset_, hidden, h2_);
      be.add(x, h2_);
      be.rms_norm(x, L.ffn_norm, eps_, norm_offset_, hidden, h_);
      gated_ffn(be, L.ffn, act_, h_, buf_, h_);
      if (shard_.world > 1) be.all_reduce(h_);  // the features' shares
      be.rms_norm(h_, L.post_ffw_norm, eps_, norm_offset_, hidden, h2_);
      be.add(x, h2_);
    }
  }

  void output_head(const Batch& batch, const Activations& x, Activations& logits) override {
    Backend& be = backend_;
    select_logit_rows(be, x, batch, buf_, sel_);
    be.rms_norm(sel_, output_norm_, eps_, norm_offset_, info_.hidden_size, h_);
    vocab_parallel_head(be, h_, output_, info_.vocab_size, part_, logits);
    if (final_softcap_ > 0.0f) be.softcap(logits, final_softcap_);
  }

  WeightArena arena_;  // this rank's column slices
  float eps_ = 1e-6f, norm_offset_ = 1.0f, embed_scale_ = 1.0f, final_softcap_ = 0.0f;
  Activation act_ = Activation::kGeluTanh;
  AttentionOptions global_, local_;
  RopeTable global_rope_, local_rope_;
  TensorView tok_embd_, output_norm_, output_;
  std::vector<GemmaLayer> layers_;
  BlockBuffers buf_;
  Activations h_, h2_, sel_, part_;  // reused across steps
};

}  // namespace

void register_gemma(ModelRegistry& r) {
  auto make = [](const ModelSpec& spec, Backend& backend,
                 const ShardSpec& shard) -> std::unique_ptr<CausalLM> {
    return std::make_unique<GemmaModel>(spec, backend, shard);
  };
  for (const char* arch : {"gemma2", "gemma3"}) r.add(arch, make);
}

}  // namespace loom
