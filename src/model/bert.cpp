// BERT (HF BertModel) as a text encoder: word + absolute position + token-type embeddings,
// LayerNorm, then post-LayerNorm blocks with biases everywhere and a plain GELU (erf) MLP:
//   x = LN(word[id] + pos[t] + type[0])
//   x = LN_attn(x + Wo · attn(x) + bo)              (bidirectional, padding keys masked)
//   x = LN_out(x + Wdown · gelu(Wup · x + bup) + bdown)
// last_hidden_state is x after the last block; pooling (mean / CLS) is the caller's
// (pool_hidden), as sentence-transformers does on top of BertModel. HF's optional pooler
// (dense + tanh on [CLS]) is not applied: embedding models do not use it.
// Token types: loom encodes one segment, so every row gets token_type 0 (HF's default
// token_type_ids = zeros).
#include <cmath>

#include "core/error.h"
#include "model/encoder.h"
#include "model/weights.h"

namespace loom {

namespace {

struct BertLayer {
  AttentionWeights attn;              // q/k/v [hidden, hidden] + bias, output [hidden, hidden]
  TensorView attn_norm, attn_norm_b;  // [hidden] x2 (attention.output.LayerNorm)
  TensorView up, up_b;                // [ffn, hidden], [ffn]
  TensorView down, down_b;            // [hidden, ffn], [hidden]
  TensorView out_norm, out_norm_b;    // [hidden] x2 (output.LayerNorm)
};

class BertModel final : public Encoder {
 public:
  BertModel(const ModelSpec& spec, Backend& backend) : backend_(backend) {
    const HyperParams& hp = spec.hparams;
    const int64_t hidden = need_hparam(spec, hp.hidden_size, "hidden_size");
    const int64_t n_heads = need_hparam(spec, hp.n_heads, "n_heads");
    const int64_t vocab = need_hparam(spec, hp.vocab_size, "vocab_size");
    const int64_t n_pos = need_hparam(spec, hp.context_length, "max_position_embeddings");
    const int64_t ffn = need_hparam(spec, hp.ffn_size, "intermediate_size");
    const int64_t n_types = hp.type_vocab_size > 0 ? hp.type_vocab_size : 2;  // HF default
    need_hparam(spec, hp.n_layers, "n_layers");
    if (hidden % n_heads != 0) {
      fail(ErrorCode::kCorruption, "{}: hidden size {} is not a multiple of {} heads", spec.path,
           hidden, n_heads);
    }
    const int64_t hd = hidden / n_heads;
    info_.architecture = spec.architecture;
    info_.hidden_size = hidden;
    info_.n_layers = hp.n_layers;
    info_.vocab_size = vocab;
    info_.max_tokens = n_pos;
    eps_ = static_cast<float>(hp.norm_eps > 0 ? hp.norm_eps : 1e-12);  // BertConfig default
    act_ = parse_encoder_activation(spec);
    params_ = {n_heads, n_heads, hd, 1.0f / std::sqrt(static_cast<float>(hd)), 0.0f, 0};

    WeightLoader w(spec);
    tok_embd_ = w.require("token_embd.weight", {vocab, hidden});
    pos_embd_ = w.require("position_embd.weight", {n_pos, hidden});
    type_embd_ = w.require("token_types.weight", {n_types, hidden});
    embd_norm_ = w.require("token_embd_norm.weight", {hidden});
    embd_norm_b_ = w.require("token_embd_norm.bias", {hidden});
    const AttentionShape shape{hidden, n_heads, n_heads, hd};
    for (int64_t l = 0; l < hp.n_layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      BertLayer L;
      L.attn = load_attention(w, p, shape);
      L.attn_norm = w.require(p + "attn_output_norm.weight", {hidden});
      L.attn_norm_b = w.require(p + "attn_output_norm.bias", {hidden});
      L.up = w.require(p + "ffn_up.weight", {ffn, hidden});
      L.up_b = w.require(p + "ffn_up.bias", {ffn});
      L.down = w.require(p + "ffn_down.weight", {hidden, ffn});
      L.down_b = w.require(p + "ffn_down.bias", {hidden});
      L.out_norm = w.require(p + "layer_output_norm.weight", {hidden});
      L.out_norm_b = w.require(p + "layer_output_norm.bias", {hidden});
      prepare_vectors(backend_, L.attn_norm, L.attn_norm_b, L.up_b, L.down_b, L.out_norm,
                      L.out_norm_b);
      prepare(backend_, L.attn);
      prepare(backend_, L.up, WeightUse::kMatrix);
      prepare(backend_, L.down, WeightUse::kMatrix);
      layers_.push_back(std::move(L));
    }
    prepare(backend_, tok_embd_, WeightUse::kLookup);  // an encoder: no output head shares it
    for (TensorView* t : {&pos_embd_, &type_embd_}) prepare(backend_, *t, WeightUse::kRows);
    prepare_vectors(backend_, embd_norm_, embd_norm_b_);
  }

  void encode(const TextBatch& b, Activations& out) override {
    const int64_t n = b.n_seqs * b.seq_len;
    if (static_cast<int64_t>(b.ids.size()) != n || static_cast<int64_t>(b.mask.size()) != n) {
      fail(ErrorCode::kInvalidArgument, "text batch: {} ids and {} mask entries for {} x {}",
           b.ids.size(), b.mask.size(), b.n_seqs, b.seq_len);
    }
    if (b.seq_len > info_.max_tokens) {
      fail(ErrorCode::kOutOfRange, "input of {} tokens is longer than the model's {} positions",
           b.seq_len, info_.max_tokens);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (b.ids[i] < 0 || b.ids[i] >= info_.vocab_size) {
        fail(ErrorCode::kOutOfRange, "token id {} is outside the vocabulary of {}", b.ids[i],
             info_.vocab_size);
      }
    }
    Backend& be = backend_;
    positions_.resize(n);
    types_.assign(n, 0);
    for (int64_t i = 0; i < n; ++i) positions_[i] = static_cast<int32_t>(i % b.seq_len);
    be.embed(tok_embd_, b.ids, x_);
    be.embed(pos_embd_, positions_, h_);
    be.add(x_, h_);
    be.embed(type_embd_, types_, h_);
    be.add(x_, h_);
    be.layer_norm(x_, embd_norm_, &embd_norm_b_, eps_, out);
    for (const BertLayer& L : layers_) {
      encoder_attention_block(be, L.attn, params_, out, b.n_seqs, b.mask, buf_, h_);
      be.add(h_, out);
      be.layer_norm(h_, L.attn_norm, &L.attn_norm_b, eps_, out);
      be.matmul(out, L.up, &L.up_b, buf_.u);
      apply_activation(be, act_, buf_.u);
      be.matmul(buf_.u, L.down, &L.down_b, h_);
      be.add(h_, out);
      be.layer_norm(h_, L.out_norm, &L.out_norm_b, eps_, out);
    }
  }

 private:
  Backend& backend_;
  float eps_ = 1e-12f;
  EncoderActivation act_ = EncoderActivation::kGeluErf;
  AttentionParams params_;
  TensorView tok_embd_, pos_embd_, type_embd_, embd_norm_, embd_norm_b_;
  std::vector<BertLayer> layers_;
  BlockBuffers buf_;
  Activations x_, h_;
  std::vector<int32_t> positions_, types_;
};

}  // namespace

std::unique_ptr<Encoder> make_bert(const ModelSpec& spec, Backend& backend) {
  return std::make_unique<BertModel>(spec, backend);
}

}  // namespace loom
