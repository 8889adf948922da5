// Attention over the paged KV cache on the CPU: each query row attends causally over its own
// sequence's positions, found through the sequence's block table. Scores and the weighted sum
// of values use the SIMD dot/axpy kernels; the softmax is exact float32 (max-subtracted).
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels/kernels.h"

namespace loom::cpu {

void CpuBackend::attention(const Activations& q, const Activations& k, const Activations& v,
                           KvCache& cache, int64_t layer, std::span<const SeqSlice> seqs,
                           const AttentionParams& p, Activations& out) {
  const int64_t bs = cache.block_size(), kv_dim = p.n_kv_heads * p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  auto slot_of = [bs](const SeqSlice& s, int64_t pos) {
    return static_cast<int64_t>(s.block_table[pos / bs]) * bs + pos % bs;
  };
  // 1. Store the new keys and values.
  for (const SeqSlice& s : seqs) {
    for (int64_t t = 0; t < s.n_tokens; ++t) {
      const int64_t slot = slot_of(s, s.start_pos + t);
      std::copy_n(k.row(s.first_row + t), kv_dim, cache.k(layer, slot));
      std::copy_n(v.row(s.first_row + t), kv_dim, cache.v(layer, slot));
    }
  }
  // 2. Attend: one work item per (query row, head).
  out.resize(q.rows(), p.n_heads * p.head_dim);
  row_seq_.resize(q.rows());
  for (const SeqSlice& s : seqs) {
    for (int64_t t = 0; t < s.n_tokens; ++t) row_seq_[s.first_row + t] = {&s, s.start_pos + t};
  }
  // A single decode row over a short context is cheaper on this thread than handed out.
  int64_t max_pos = 0;
  for (const auto& rs : row_seq_) max_pos = std::max(max_pos, rs.second);
  const bool inline_work = q.rows() * p.n_heads * p.head_dim * (max_pos + 1) < (1 << 16);
  auto body = [&](int64_t begin, int64_t end, int t) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / p.n_heads, h = item % p.n_heads, kvh = h / group;
      const auto [s, pos] = row_seq_[r];
      const int64_t first =
          p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
      const int64_t n_keys = pos - first + 1;
      std::vector<float>& scores = scratch(t, n_keys);
      const float* qh = q.row(r) + h * p.head_dim;
      float max_s = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* kj = cache.k(layer, slot_of(*s, first + j)) + kvh * p.head_dim;
        float sc = kernels::dot_f32(qh, kj, p.head_dim) * p.scale;
        if (p.softcap > 0.0f) sc = p.softcap * std::tanh(sc / p.softcap);
        scores[j] = sc;
        max_s = std::max(max_s, sc);
      }
      const float sum = kernels::exp_shift_sum(scores.data(), n_keys, max_s);
      float* o = out.row(r) + h * p.head_dim;
      std::fill_n(o, p.head_dim, 0.0f);
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* vj = cache.v(layer, slot_of(*s, first + j)) + kvh * p.head_dim;
        kernels::axpy_f32(scores[j] * inv, vj, o, p.head_dim);
      }
    }
  };
  if (inline_work) {
    body(0, q.rows() * p.n_heads, 0);
  } else {
    pool_.parallel_for(q.rows() * p.n_heads, body);
  }
}

}  // namespace loom::cpu
