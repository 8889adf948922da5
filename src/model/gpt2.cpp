// GPT-2 (HF GPT2LMHeadModel): learned absolute positions added to the token embedding,
// pre-LayerNorm blocks with biases everywhere, fused c_attn (rows q | k | v), no rotary
// embedding, and a plain MLP with gelu_new (the tanh approximation):
//   h = x + Wo · attn(LN1(x)) + bo
//   y = h + Wdown · gelu_tanh(Wup · LN2(h) + bup) + bdown
// HF stores GPT-2's Conv1D weights [in, out]; io/ presents them as [out, in] like every other
// matrix (llama.cpp's converter transposes them too), so this file sees one layout.
#include <cmath>
#include <optional>

#include "core/error.h"
#include "model/blocks.h"
#include "model/model.h"
#include "model/model_registry.h"
#include "model/pipeline.h"
#include "model/weights.h"

namespace loom {

namespace {

struct Gpt2Layer {
  TensorView attn_norm, attn_norm_b;  // [hidden] x2
  AttentionWeights attn;              // fused qkv with bias, output with bias
  TensorView ffn_norm, ffn_norm_b;    // [hidden] x2
  TensorView up;                      // [ffn, hidden]
  TensorView up_b;                    // [ffn]
  TensorView down;                    // [hidden, ffn]
  std::optional<TensorView> down_b;   // [hidden] (on rank 0 only when split)
};

class Gpt2Model final : public StagedDecoder {
 public:
  Gpt2Model(const ModelSpec& spec, Backend& backend, const ShardSpec& shard)
      : StagedDecoder(backend, shard) {
    const HyperParams& hp = spec.hparams;
    const int64_t hidden = need_hparam(spec, hp.hidden_size, "hidden_size");
    const int64_t n_heads = need_hparam(spec, hp.n_heads, "n_heads");
    const int64_t vocab = need_hparam(spec, hp.vocab_size, "vocab_size");
    const int64_t n_ctx = need_hparam(spec, hp.context_length, "context_length");
    const int64_t ffn = hp.ffn_size > 0 ? hp.ffn_size : 4 * hidden;  // HF: n_inner or 4 n_embd
    need_hparam(spec, hp.n_layers, "n_layers");
    if (hidden % n_heads != 0) {
      fail(ErrorCode::kCorruption, "{}: hidden size {} is not a multiple of {} heads", spec.path,
           hidden, n_heads);
    }
    const int64_t hd = hidden / n_heads;
    const AttentionShape whole{hidden, n_heads, n_heads, hd};
    const AttentionShape shape = shard_shape(whole, shard, spec.path);  // this rank's heads
    const Part layers = stage_layers(spec, shard);
    // The learned position table has n_ctx rows: positions beyond it do not exist.
    info_ = {spec.architecture, vocab, hidden, layers.count, shape.n_kv_heads, hd, n_ctx};
    eps_ = static_cast<float>(hp.norm_eps > 0 ? hp.norm_eps : 1e-5);
    if (parse_activation(hp.activation, Activation::kGeluTanh, spec.path) !=
        Activation::kGeluTanh) {
      fail(ErrorCode::kUnsupported, "{}: gpt2 with activation '{}' is not supported", spec.path,
           hp.activation);
    }
    attn_.params = {
        shape.n_heads, shape.n_kv_heads, hd, 1.0f / std::sqrt(static_cast<float>(hd)), 0.0f, 0};
    attn_.rope = nullptr;

    WeightLoader w(spec);
    tok_embd_ = w.require("token_embd.weight", {vocab, hidden});
    pos_embd_ = w.require("position_embd.weight", {n_ctx, hidden});
    output_norm_ = w.require("output_norm.weight", {hidden});
    output_norm_b_ = w.require("output_norm.bias", {hidden});
    auto out = w.optional("output.weight", {vocab, hidden});
    output_ = shard_output_head(out ? *out : tok_embd_, shard);
    for (int64_t l = layers.first; l < layers.first + layers.count; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      Gpt2Layer L;
      L.attn_norm = w.require(p + "attn_norm.weight", {hidden});
      L.attn_norm_b = w.require(p + "attn_norm.bias", {hidden});
      L.attn =
          shard_attention(load_attention(w, p, whole), whole, shard, arena_, spec.path + ": " + p);
      L.ffn_norm = w.require(p + "ffn_norm.weight", {hidden});
      L.ffn_norm_b = w.require(p + "ffn_norm.bias", {hidden});
      L.up = w.require(p + "ffn_up.weight", {ffn, hidden});
      L.up_b = w.require(p + "ffn_up.bias", {ffn});
      L.down = w.require(p + "ffn_down.weight", {hidden, ffn});
      L.down_b = w.require(p + "ffn_down.bias", {hidden});
      if (shard.world > 1) {  // this rank's features: up's rows, down's columns
        const Part f = ffn_part(L.down, ffn, shard, spec.path + ": " + p);
        L.up = matrix_rows(L.up, f.first, f.count);
        L.up_b = vector_slice(L.up_b, f.first, f.count);
        L.down = arena_.columns(L.down, f.first, f.count, spec.path + ": " + p + "ffn_down.weight");
        if (shard.rank != 0) L.down_b.reset();  // the ranks' products are summed
      }
      prepare_vectors(backend_, L.attn_norm, L.attn_norm_b, L.ffn_norm, L.ffn_norm_b, L.up_b,
                      L.down_b);
      prepare(backend_, L.attn, arena_);
      prepare(backend_, L.up, WeightUse::kMatrix);
      const void* down = L.down.data;
      prepare(backend_, L.down, WeightUse::kMatrix);
      arena_.release_replaced(down, L.down.data);
      layers_.push_back(std::move(L));
    }
    if (shard.stage == 0) {
      prepare(backend_, tok_embd_, embedding_use(tok_embd_, output_));
      prepare(backend_, pos_embd_, WeightUse::kRows);
    }
    if (shard.stage == shard.stages - 1) {
      prepare(backend_, output_, WeightUse::kMatrix);
      prepare_vectors(backend_, output_norm_, output_norm_b_);
    }
  }

 private:
  void embed(const Batch& batch, Activations& x) override {
    if (batch.embeddings != nullptr || !batch.rope_positions.empty()) {
      fail(ErrorCode::kUnsupported, "gpt2 takes neither precomputed embeddings nor rope positions");
    }
    backend_.embed(tok_embd_, batch.tokens, x);
    backend_.embed(pos_embd_, batch.positions, h_);
    backend_.add(x, h_);
  }

  void run_layers(KvCache& cache, Activations& x) override {
    Backend& be = backend_;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Gpt2Layer& L = layers_[l];
      be.layer_norm(x, L.attn_norm, &L.attn_norm_b, eps_, h_);
      attention_block(be, L.attn, attn_, h_, cache, static_cast<int64_t>(l), buf_, h_);
      if (shard_.world > 1) be.all_reduce(h_);  // the heads' shares of Wo · attn
      be.add(x, h_);
      be.layer_norm(x, L.ffn_norm, &L.ffn_norm_b, eps_, h_);
      be.matmul(h_, L.up, &L.up_b, buf_.u);
      be.gelu_tanh(buf_.u);
      be.matmul(buf_.u, L.down, L.down_b ? &*L.down_b : nullptr, h_);
      if (shard_.world > 1) be.all_reduce(h_);  // the features' shares of Wdown · act
      be.add(x, h_);
    }
  }

  void output_head(const Batch& batch, const Activations& x, Activations& logits) override {
    Backend& be = backend_;
    select_logit_rows(be, x, batch, buf_, sel_);
    be.layer_norm(sel_, output_norm_, &output_norm_b_, eps_, h_);
    vocab_parallel_head(be, h_, output_, info_.vocab_size, part_, logits);
  }

  WeightArena arena_;  // this rank's column slices
  float eps_ = 1e-5f;
  AttentionOptions attn_;
  TensorView tok_embd_, pos_embd_, output_norm_, output_norm_b_, output_;
  std::vector<Gpt2Layer> layers_;
  BlockBuffers buf_;
  Activations h_, sel_, part_;  // reused across steps
};

}  // namespace

void register_gpt2(ModelRegistry& r) {
  r.add("gpt2",
        [](const ModelSpec& spec, Backend& backend,
           const ShardSpec& shard) -> std::unique_ptr<CausalLM> {
          return std::make_unique<Gpt2Model>(spec, backend, shard);
        });
}

}  // namespace loom
