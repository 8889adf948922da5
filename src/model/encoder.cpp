#include "model/encoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace loom {

TextBatch TextBatch::from_sequences(const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id) {
  TextBatch b;
  b.n_seqs = static_cast<int64_t>(seqs.size());
  for (const auto& s : seqs) b.seq_len = std::max<int64_t>(b.seq_len, std::ssize(s));
  b.ids.assign(b.n_seqs * b.seq_len, pad_id);
  b.mask.assign(b.n_seqs * b.seq_len, 0);
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    std::copy(seqs[i].begin(), seqs[i].end(), b.ids.begin() + i * b.seq_len);
    std::fill_n(b.mask.begin() + i * b.seq_len, seqs[i].size(), 1);
  }
  return b;
}

void Encoder::encode(const TextBatch&, Activations&) {
  fail(ErrorCode::kUnsupported, "{} is a vision encoder: it takes images, not text",
       info_.architecture);
}

void Encoder::encode_images(std::span<const float>, int64_t, Activations&, Activations&) {
  fail(ErrorCode::kUnsupported, "{} is a text encoder: it takes text, not images",
       info_.architecture);
}

bool is_encoder_architecture(const std::string& a) {
  return a == "bert" || a == "clip" || a == "siglip";
}

std::unique_ptr<Encoder> load_encoder(const ModelSpec& spec, Backend& backend) {
  if (spec.architecture == "bert") return make_bert(spec, backend);
  if (spec.architecture == "clip" || spec.architecture == "siglip") {
    return make_vision_tower(spec, backend);
  }
  fail(ErrorCode::kUnsupported,
       "{}: architecture '{}' is not an encoder (loom encodes with: "
       "bert, clip, siglip)",
       spec.path, spec.architecture);
}

std::vector<std::vector<float>> pool_hidden(std::span<const float> h, int64_t d, const TextBatch& b,
                                            Pooling pooling) {
  LOOM_ASSERT(static_cast<int64_t>(h.size()) == b.n_seqs * b.seq_len * d);
  std::vector<std::vector<float>> out;
  for (int64_t s = 0; s < b.n_seqs; ++s) {
    std::vector<double> acc(d, 0.0);
    double count = 0;
    for (int64_t t = 0; t < b.seq_len; ++t) {
      const int64_t r = s * b.seq_len + t;
      if (pooling == Pooling::kCls && t > 0) break;
      if (pooling == Pooling::kMean && b.mask[r] == 0) continue;
      for (int64_t j = 0; j < d; ++j) acc[j] += h[r * d + j];
      count += 1;
    }
    std::vector<float> v(d);
    // sentence-transformers clamps the token count at 1e-9 (an all-padding row gives zeros).
    for (int64_t j = 0; j < d; ++j) v[j] = static_cast<float>(acc[j] / std::max(count, 1e-9));
    out.push_back(std::move(v));
  }
  return out;
}

void l2_normalize(std::span<float> v) {
  double ss = 0;
  for (float x : v) ss += static_cast<double>(x) * x;
  const double n = std::max(std::sqrt(ss), 1e-12);
  for (float& x : v) x = static_cast<float>(x / n);
}

void encoder_attention_block(Backend& be, const AttentionWeights& W, const AttentionParams& p,
                             const Activations& h, int64_t n_seqs,
                             std::span<const int32_t> key_mask, BlockBuffers& buf,
                             Activations& out) {
  be.matmul(h, W.wq, W.bq ? &*W.bq : nullptr, buf.q);
  be.matmul(h, W.wk, W.bk ? &*W.bk : nullptr, buf.k);
  be.matmul(h, W.wv, W.bv ? &*W.bv : nullptr, buf.v);
  be.encoder_attention(buf.q, buf.k, buf.v, n_seqs, key_mask, p, buf.a);
  be.matmul(buf.a, W.wo, W.bo ? &*W.bo : nullptr, out);
}

EncoderActivation parse_encoder_activation(const ModelSpec& spec) {
  const std::string& a = spec.hparams.activation;
  // HF ACT2FN: "gelu" is the exact erf GELU; gelu_new / gelu_pytorch_tanh the tanh form.
  if (a == "gelu" || a.empty()) return EncoderActivation::kGeluErf;
  if (a == "gelu_pytorch_tanh" || a == "gelu_new" || a == "gelu_tanh") {
    return EncoderActivation::kGeluTanh;
  }
  if (a == "quick_gelu") return EncoderActivation::kQuickGelu;
  fail(ErrorCode::kUnsupported, "{}: encoder activation '{}' is not supported yet", spec.path, a);
}

void apply_activation(Backend& be, EncoderActivation act, Activations& x) {
  switch (act) {
    case EncoderActivation::kGeluErf:
      be.gelu_erf(x);
      break;
    case EncoderActivation::kGeluTanh:
      be.gelu_tanh(x);
      break;
    case EncoderActivation::kQuickGelu:
      be.quick_gelu(x);
      break;
  }
}

}  // namespace loom
