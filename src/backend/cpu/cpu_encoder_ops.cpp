// Encoder ops on the CPU: bidirectional attention within each sequence of the batch (BERT,
// CLIP/SigLIP vision towers, SigLIP's pooling head) and the erf / quick GELU activations.
// Kept apart from cpu_attention.cpp: there is no KV cache and no causal order here; the
// scores use the same plain float32 dot and an exact max-subtracted softmax.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace loom::cpu {

void CpuBackend::encoder_attention(const Activations& q, const Activations& k, const Activations& v,
                                   int64_t n_seqs, std::span<const int32_t> key_mask,
                                   const AttentionParams& p, Activations& out) {
  LOOM_ASSERT(n_seqs > 0 && q.rows() % n_seqs == 0 && k.rows() % n_seqs == 0);
  LOOM_ASSERT(key_mask.empty() || static_cast<int64_t>(key_mask.size()) == k.rows());
  LOOM_ASSERT(p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0);
  const int64_t q_len = q.rows() / n_seqs, kv_len = k.rows() / n_seqs;
  const int64_t hd = p.head_dim, group = p.n_heads / p.n_kv_heads;
  out.resize(q.rows(), p.n_heads * hd);
  pool_.parallel_for(q.rows() * p.n_heads, [&](int64_t begin, int64_t end, int t) {
    std::vector<float>& scores = scratch(t, kv_len);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / p.n_heads, h = item % p.n_heads, kvh = h / group;
      const int64_t first = (r / q_len) * kv_len;
      const float* qr = q.row(r) + h * hd;
      float mx = -INFINITY;
      for (int64_t j = 0; j < kv_len; ++j) {
        if (!key_mask.empty() && key_mask[first + j] == 0) {
          scores[j] = -INFINITY;
          continue;
        }
        scores[j] = dot(qr, k.row(first + j) + kvh * hd, hd) * p.scale;
        mx = std::max(mx, scores[j]);
      }
      float* o = out.row(r) + h * hd;
      std::fill_n(o, hd, 0.0f);
      if (mx == -INFINITY) continue;  // every key masked: HF gives a uniform mix; we give zeros
      float sum = 0.0f;
      for (int64_t j = 0; j < kv_len; ++j) {
        scores[j] = scores[j] == -INFINITY ? 0.0f : std::exp(scores[j] - mx);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < kv_len; ++j) {
        if (scores[j] == 0.0f) continue;
        const float w = scores[j] * inv;
        const float* vr = v.row(first + j) + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += w * vr[d];
      }
    }
  });
}

void CpuBackend::gelu_erf(Activations& x) {
  float* v = x.data();
  pool_.parallel_for(x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      v[i] = 0.5f * v[i] * (1.0f + std::erf(v[i] * static_cast<float>(std::numbers::sqrt2 / 2)));
    }
  });
}

void CpuBackend::quick_gelu(Activations& x) {
  float* v = x.data();
  pool_.parallel_for(x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) v[i] = v[i] / (1.0f + std::exp(-1.702f * v[i]));
  });
}

}  // namespace loom::cpu
