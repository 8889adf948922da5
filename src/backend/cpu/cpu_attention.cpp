// Attention over the paged KV cache on the CPU: each query row attends causally over its own
// sequence's positions, found through the sequence's block table. The query heads that share a
// KV head are one work item (kernels::attend_group: SIMD dots, exact float32 max-subtracted
// softmax, weighted sum of values in registers).
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/host_kv_cache.h"
#include "backend/cpu/host_tensor.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/error.h"

namespace loom::cpu {

void CpuBackend::begin_step(const StepInputs& step) {
  LOOM_ASSERT(step.rope_axes >= 1 && step.rope_positions.size() % step.rope_axes == 0);
  step_positions_.assign(step.rope_positions.begin(), step.rope_positions.end());
  step_axes_ = step.rope_axes;
  step_seqs_.assign(step.seqs.begin(), step.seqs.end());
}

void CpuBackend::attention(const Activations& q, const Activations& k, const Activations& v,
                           KvCache& kv, int64_t layer, const AttentionParams& p, Activations& out) {
  const std::span<const SeqSlice> seqs = step_seqs_;
  HostKvCache& cache = host_cache(kv);
  const auto Q = host(q), K = host(k), V = host(v);
  const int64_t bs = cache.block_size(), kv_dim = p.n_kv_heads * p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t head_bytes = cache.head_bytes();
  auto slot_of = [bs](const SeqSlice& s, int64_t pos) {
    return static_cast<int64_t>(s.block_table[pos / bs]) * bs + pos % bs;
  };
  // 1. Store the new keys and values.
  for (const SeqSlice& s : seqs) {
    for (int64_t t = 0; t < s.n_tokens; ++t) {
      const int64_t slot = slot_of(s, s.start_pos + t);
      kernels::store_kv_row(K.row(s.first_row + t), kv_dim, cache.dtype(), cache.k(layer, slot));
      kernels::store_kv_row(V.row(s.first_row + t), kv_dim, cache.dtype(), cache.v(layer, slot));
    }
  }
  // 2. Attend: one work item per (query row, head).
  const auto O = host_alloc(out, q.rows(), p.n_heads * p.head_dim);
  row_seq_.resize(q.rows());
  for (const SeqSlice& s : seqs) {
    for (int64_t t = 0; t < s.n_tokens; ++t) row_seq_[s.first_row + t] = {&s, s.start_pos + t};
  }
  // A single decode row over a short context is cheaper on this thread than handed out.
  int64_t max_pos = 0;
  for (const auto& rs : row_seq_) max_pos = std::max(max_pos, rs.second);
  const bool inline_work = q.rows() * p.n_heads * p.head_dim * (max_pos + 1) < (1 << 16);
  // One work item per (query row, KV head): the `group` query heads that share the KV head
  // read each key and value once. Positions are walked block by block (contiguous slots).
  auto body = [&](int64_t begin, int64_t end, int t) {
    std::vector<kernels::KvRun>& runs = runs_[t];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / p.n_kv_heads, kvh = item % p.n_kv_heads;
      const auto [s, pos] = row_seq_[r];
      const int64_t first =
          p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
      runs.clear();
      for (int64_t j = first; j <= pos;) {
        const int64_t n = std::min(pos + 1 - j, bs - j % bs);
        const int64_t slot = slot_of(*s, j);
        runs.push_back(
            {cache.k(layer, slot) + kvh * head_bytes, cache.v(layer, slot) + kvh * head_bytes, n});
        j += n;
      }
      std::vector<float>& scores = scratch(t, group * (pos - first + 1));
      const int64_t h0 = kvh * group;
      kernels::attend_group(Q.row(r) + h0 * p.head_dim, static_cast<int>(group), p.head_dim,
                            runs.data(), static_cast<int>(runs.size()), cache.row_bytes(),
                            cache.dtype(), p.scale, p.softcap, scores.data(),
                            O.row(r) + h0 * p.head_dim);
    }
  };
  if (inline_work) {
    body(0, q.rows() * p.n_kv_heads, 0);
  } else {
    pool_.parallel_for(q.rows() * p.n_kv_heads, body);
  }
}

}  // namespace loom::cpu
