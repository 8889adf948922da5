// Encoder ops on the CPU: bidirectional attention within each sequence of the batch (BERT,
// CLIP/SigLIP vision towers, SigLIP's pooling head) and the erf / quick GELU activations.
// Kept apart from cpu_attention.cpp: there is no KV cache and no causal order here; the
// scores use the same plain float32 dot and an exact max-subtracted softmax.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/host_tensor.h"
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
  const auto Q = host(q), K = host(k), V = host(v);
  const auto O = host_alloc(out, q.rows(), p.n_heads * hd);
  pool_.parallel_for(q.rows() * p.n_heads, [&](int64_t begin, int64_t end, int t) {
    std::vector<float>& scores = scratch(t, kv_len);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / p.n_heads, h = item % p.n_heads, kvh = h / group;
      const int64_t first = (r / q_len) * kv_len;
      const float* qr = Q.row(r) + h * hd;
      float mx = -INFINITY;
      for (int64_t j = 0; j < kv_len; ++j) {
        if (!key_mask.empty() && key_mask[first + j] == 0) {
          scores[j] = -INFINITY;
          continue;
        }
        scores[j] = dot(qr, K.row(first + j) + kvh * hd, hd) * p.scale;
        mx = std::max(mx, scores[j]);
      }
      float* o = O.row(r) + h * hd;
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
        const float* vr = V.row(first + j) + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += w * vr[d];
      }
    }
  });
}

void CpuBackend::image_patches(const Activations& images, int64_t channels, int64_t size,
                               int64_t patch, Activations& out) {
  LOOM_ASSERT(patch > 0 && size % patch == 0 && images.cols() == channels * size * size);
  const int64_t grid = size / patch, n_patches = grid * grid;
  const auto img = host(images);
  const auto o = host_alloc(out, images.rows() * n_patches, channels * patch * patch);
  pool_.parallel_for(images.rows() * n_patches, [&](int64_t begin, int64_t end, int) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t i = item / n_patches, gy = (item % n_patches) / grid, gx = item % grid;
      float* row = o.row(item);
      for (int64_t ch = 0; ch < channels; ++ch) {
        for (int64_t py = 0; py < patch; ++py) {
          const float* src = img.row(i) + ch * size * size + (gy * patch + py) * size + gx * patch;
          std::copy_n(src, patch, row + (ch * patch + py) * patch);
        }
      }
    }
  });
}

void CpuBackend::gelu_erf(Activations& x) {
  float* v = host(x).data();
  pool_.parallel_for(x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      v[i] = 0.5f * v[i] * (1.0f + std::erf(v[i] * static_cast<float>(std::numbers::sqrt2 / 2)));
    }
  });
}

void CpuBackend::quick_gelu(Activations& x) {
  float* v = host(x).data();
  pool_.parallel_for(x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) v[i] = v[i] / (1.0f + std::exp(-1.702f * v[i]));
  });
}

}  // namespace loom::cpu
