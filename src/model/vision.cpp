// CLIP and SigLIP vision towers (HF CLIPVisionModel, SigLipVisionModel) on the shared encoder
// block. Both cut the image into P x P patches and embed each with a conv of stride P, which is
// a matmul of the flattened patches (c, y, x order, as the conv weight [hidden, C, P, P] is laid
// out) with the weight viewed as [hidden, C*P*P]. Then:
//   clip:   x = pre_LN([class_embedding; patches] + pos)      (no patch bias, 1 + N rows)
//   siglip: x = patches + bias + pos                           (N rows)
//   blocks: x += out_proj(attn(LN1(x)));  x += fc2(act(fc1(LN2(x))))   (pre-norm, biases)
//   clip:   last_hidden_state = x,             pooler_output = post_LN(x[0])
//   siglip: last_hidden_state = post_LN(x),    pooler_output = head(last_hidden_state), where
//           head (SiglipMultiheadAttentionPoolingHead) is torch's MultiheadAttention with the
//           learned probe as the only query, then y = a + fc2(act(fc1(LN(a)))).
// act is quick_gelu for CLIP and gelu_pytorch_tanh for SigLIP (config hidden_act).
#include <cmath>

#include "core/error.h"
#include "model/encoder.h"
#include "model/weights.h"

namespace loom {

namespace {

struct VisionLayer {
  TensorView ln1, ln1_b, ln2, ln2_b;  // [hidden] x4
  AttentionWeights attn;              // q/k/v/out [hidden, hidden] + biases
  TensorView up, up_b;                // fc1 [ffn, hidden], [ffn]
  TensorView down, down_b;            // fc2 [hidden, ffn], [hidden]
};

TensorView reshaped(const TensorView& t, std::vector<int64_t> shape) {
  TensorView v = t;
  v.shape = std::move(shape);
  return v;
}

class VisionTower final : public Encoder {
 public:
  VisionTower(const ModelSpec& spec, Backend& backend) : backend_(backend) {
    const HyperParams& hp = spec.hparams;
    clip_ = spec.architecture == "clip";
    const int64_t hidden = need_hparam(spec, hp.hidden_size, "hidden_size");
    const int64_t n_heads = need_hparam(spec, hp.n_heads, "n_heads");
    const int64_t ffn = need_hparam(spec, hp.ffn_size, "intermediate_size");
    const int64_t image = need_hparam(spec, hp.image_size, "image_size");
    const int64_t patch = need_hparam(spec, hp.patch_size, "patch_size");
    const int64_t channels = hp.n_channels > 0 ? hp.n_channels : 3;
    need_hparam(spec, hp.n_layers, "n_layers");
    if (hidden % n_heads != 0 || image % patch != 0) {
      fail(ErrorCode::kCorruption,
           "{}: hidden size {} / {} heads or image size {} / patch size {} does not divide",
           spec.path, hidden, n_heads, image, patch);
    }
    const int64_t hd = hidden / n_heads;
    grid_ = image / patch;
    patch_ = patch;
    const int64_t n_patches = grid_ * grid_;
    info_.architecture = spec.architecture;
    info_.vision = true;
    info_.hidden_size = hidden;
    info_.n_layers = hp.n_layers;
    info_.image_size = image;
    info_.n_channels = channels;
    info_.tokens_per_image = n_patches + (clip_ ? 1 : 0);
    eps_ = static_cast<float>(hp.norm_eps > 0 ? hp.norm_eps : (clip_ ? 1e-5 : 1e-6));
    act_ = parse_encoder_activation(spec);
    params_ = {n_heads, n_heads, hd, 1.0f / std::sqrt(static_cast<float>(hd)), 0.0f, 0};

    WeightLoader w(spec);
    const int64_t k = channels * patch * patch;
    patch_w_ =
        reshaped(w.require("v.patch_embd.weight", {hidden, channels, patch, patch}), {hidden, k});
    patch_b_ = w.optional("v.patch_embd.bias", {hidden});
    pos_embd_ = w.require("v.position_embd.weight", {info_.tokens_per_image, hidden});
    post_ln_ = w.require("v.post_ln.weight", {hidden});
    post_ln_b_ = w.require("v.post_ln.bias", {hidden});
    if (clip_) {
      class_embd_ = reshaped(w.require("v.class_embd", {hidden}), {1, hidden});
      pre_ln_ = w.require("v.pre_ln.weight", {hidden});
      pre_ln_b_ = w.require("v.pre_ln.bias", {hidden});
    } else {
      probe_ = reshaped(w.require("head.probe", {1, 1, hidden}), {1, hidden});
      const TensorView in_w = w.require("head.attention.in_proj_weight", {3 * hidden, hidden});
      const TensorView in_b = w.require("head.attention.in_proj_bias", {3 * hidden});
      // torch.nn.MultiheadAttention packs q | k | v rows in in_proj.
      head_attn_.wq = matrix_rows(in_w, 0, hidden);
      head_attn_.wk = matrix_rows(in_w, hidden, hidden);
      head_attn_.wv = matrix_rows(in_w, 2 * hidden, hidden);
      head_attn_.bq = vector_slice(in_b, 0, hidden);
      head_attn_.bk = vector_slice(in_b, hidden, hidden);
      head_attn_.bv = vector_slice(in_b, 2 * hidden, hidden);
      head_attn_.wo = w.require("head.attention.out_proj.weight", {hidden, hidden});
      head_attn_.bo = w.require("head.attention.out_proj.bias", {hidden});
      head_ln_ = w.require("head.layernorm.weight", {hidden});
      head_ln_b_ = w.require("head.layernorm.bias", {hidden});
      head_up_ = w.require("head.mlp.fc1.weight", {ffn, hidden});
      head_up_b_ = w.require("head.mlp.fc1.bias", {ffn});
      head_down_ = w.require("head.mlp.fc2.weight", {hidden, ffn});
      head_down_b_ = w.require("head.mlp.fc2.bias", {hidden});
    }
    for (int64_t l = 0; l < hp.n_layers; ++l) {
      const std::string p = "v.blk." + std::to_string(l) + ".";
      VisionLayer L;
      L.ln1 = w.require(p + "ln1.weight", {hidden});
      L.ln1_b = w.require(p + "ln1.bias", {hidden});
      L.ln2 = w.require(p + "ln2.weight", {hidden});
      L.ln2_b = w.require(p + "ln2.bias", {hidden});
      L.attn.wq = w.require(p + "attn_q.weight", {hidden, hidden});
      L.attn.wk = w.require(p + "attn_k.weight", {hidden, hidden});
      L.attn.wv = w.require(p + "attn_v.weight", {hidden, hidden});
      L.attn.wo = w.require(p + "attn_out.weight", {hidden, hidden});
      L.attn.bq = w.require(p + "attn_q.bias", {hidden});
      L.attn.bk = w.require(p + "attn_k.bias", {hidden});
      L.attn.bv = w.require(p + "attn_v.bias", {hidden});
      L.attn.bo = w.require(p + "attn_out.bias", {hidden});
      L.up = w.require(p + "ffn_up.weight", {ffn, hidden});
      L.up_b = w.require(p + "ffn_up.bias", {ffn});
      L.down = w.require(p + "ffn_down.weight", {hidden, ffn});
      L.down_b = w.require(p + "ffn_down.bias", {hidden});
      prepare_vectors(backend_, L.ln1, L.ln1_b, L.ln2, L.ln2_b, L.up_b, L.down_b);
      prepare(backend_, L.attn);
      prepare(backend_, L.up, WeightUse::kMatrix);
      prepare(backend_, L.down, WeightUse::kMatrix);
      layers_.push_back(std::move(L));
    }
    prepare(backend_, patch_w_, WeightUse::kMatrix);
    prepare_vectors(backend_, patch_b_, post_ln_, post_ln_b_);
    for (TensorView* t : {&pos_embd_, &class_embd_, &probe_})
      prepare(backend_, *t, WeightUse::kRows);
    if (clip_) {
      prepare_vectors(backend_, pre_ln_, pre_ln_b_);
    } else {
      prepare(backend_, head_attn_);
      prepare(backend_, head_up_, WeightUse::kMatrix);
      prepare(backend_, head_down_, WeightUse::kMatrix);
      prepare_vectors(backend_, head_ln_, head_ln_b_, head_up_b_, head_down_b_);
    }
  }

  void encode_images(std::span<const float> pixels, int64_t n_images, Activations& out,
                     Activations& pooled) override {
    const int64_t c = info_.n_channels, s = info_.image_size;
    const int64_t per_image = c * s * s;
    if (n_images <= 0 || static_cast<int64_t>(pixels.size()) != n_images * per_image) {
      fail(ErrorCode::kInvalidArgument, "{} pixel values for {} images of {} x {} x {}",
           pixels.size(), n_images, c, s, s);
    }
    Backend& be = backend_;
    const int64_t n_patches = grid_ * grid_, tokens = info_.tokens_per_image;
    // Patch embedding: the conv as im2col (one row per patch) and a matmul, on the backend.
    be.upload(pixels, n_images, per_image, pixels_);
    be.image_patches(pixels_, c, s, patch_, patches_);
    be.matmul(patches_, patch_w_, patch_b_ ? &*patch_b_ : nullptr, h_);
    // Token rows per image: [class] + patches (clip) or patches (siglip), plus positions.
    ids_.clear();
    for (int64_t i = 0; i < n_images; ++i) {
      for (int64_t t = 0; t < tokens; ++t) ids_.push_back(static_cast<int32_t>(t));
    }
    be.embed(pos_embd_, ids_, x_);
    if (clip_) {
      // Row 0 of each image gets the class embedding, rows 1.. its patches.
      zeros_.assign(n_images, 0);
      be.embed(class_embd_, zeros_, cls_);
      rows_.clear();
      for (int64_t i = 0; i < n_images; ++i) rows_.push_back(static_cast<int32_t>(i * tokens));
      ones_.assign(n_images * n_patches, 1.0f);
      be.add_rows_scaled(x_, cls_, rows_, std::span<const float>(ones_).first(n_images));
      rows_.clear();
      for (int64_t i = 0; i < n_images; ++i) {
        for (int64_t p = 0; p < n_patches; ++p) {
          rows_.push_back(static_cast<int32_t>(i * tokens + 1 + p));
        }
      }
      be.add_rows_scaled(x_, h_, rows_, ones_);
      be.layer_norm(x_, pre_ln_, &pre_ln_b_, eps_, out);
    } else {
      be.add(x_, h_);
      std::swap(x_, out);
    }
    // `out` is the residual stream.
    for (const VisionLayer& L : layers_) {
      be.layer_norm(out, L.ln1, &L.ln1_b, eps_, h_);
      encoder_attention_block(be, L.attn, params_, h_, n_images, {}, buf_, h_);
      be.add(out, h_);
      be.layer_norm(out, L.ln2, &L.ln2_b, eps_, h_);
      be.matmul(h_, L.up, &L.up_b, buf_.u);
      apply_activation(be, act_, buf_.u);
      be.matmul(buf_.u, L.down, &L.down_b, h_);
      be.add(out, h_);
    }
    if (clip_) {
      rows_.clear();
      for (int64_t i = 0; i < n_images; ++i) rows_.push_back(static_cast<int32_t>(i * tokens));
      be.gather_rows(out, rows_, x_);
      be.layer_norm(x_, post_ln_, &post_ln_b_, eps_, pooled);
      return;
    }
    be.layer_norm(out, post_ln_, &post_ln_b_, eps_, h_);
    std::swap(out, h_);
    // SigLIP's attention-pooling head: the probe queries every token of its image.
    zeros_.assign(n_images, 0);
    be.embed(probe_, zeros_, x_);
    be.matmul(x_, head_attn_.wq, &*head_attn_.bq, buf_.q);
    be.matmul(out, head_attn_.wk, &*head_attn_.bk, buf_.k);
    be.matmul(out, head_attn_.wv, &*head_attn_.bv, buf_.v);
    be.encoder_attention(buf_.q, buf_.k, buf_.v, n_images, {}, params_, buf_.a);
    be.matmul(buf_.a, head_attn_.wo, &*head_attn_.bo, pooled);
    be.layer_norm(pooled, head_ln_, &head_ln_b_, eps_, x_);
    be.matmul(x_, head_up_, &head_up_b_, buf_.u);
    apply_activation(be, act_, buf_.u);
    be.matmul(buf_.u, head_down_, &head_down_b_, x_);
    be.add(pooled, x_);
  }

 private:
  Backend& backend_;
  bool clip_ = true;
  int64_t grid_ = 0, patch_ = 0;
  float eps_ = 1e-5f;
  EncoderActivation act_ = EncoderActivation::kQuickGelu;
  AttentionParams params_;
  TensorView patch_w_;                 // [hidden, C*P*P] (the conv weight [hidden, C, P, P])
  std::optional<TensorView> patch_b_;  // [hidden] (siglip)
  TensorView pos_embd_;                // [tokens_per_image, hidden]
  TensorView class_embd_;              // [1, hidden] (clip)
  TensorView pre_ln_, pre_ln_b_;       // [hidden] (clip)
  TensorView post_ln_, post_ln_b_;     // [hidden]
  // siglip head
  TensorView probe_;                    // [1, hidden] (stored [1, 1, hidden])
  AttentionWeights head_attn_;          // rows of in_proj [3 hidden, hidden]; out_proj
  TensorView head_ln_, head_ln_b_;      // [hidden]
  TensorView head_up_, head_up_b_;      // [ffn, hidden], [ffn]
  TensorView head_down_, head_down_b_;  // [hidden, ffn], [hidden]
  std::vector<VisionLayer> layers_;
  BlockBuffers buf_;
  Activations pixels_, patches_, x_, h_, cls_;
  std::vector<int32_t> ids_, zeros_, rows_;
  std::vector<float> ones_;
};

}  // namespace

std::unique_ptr<Encoder> make_vision_tower(const ModelSpec& spec, Backend& backend) {
  return std::make_unique<VisionTower>(spec, backend);
}

}  // namespace loom
