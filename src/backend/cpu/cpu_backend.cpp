// The CPU backend: float32 compute over weights used in place from the model file's mapping.
// Quantized and half-precision weight rows are dequantized one row at a time into a per-thread
// buffer and reused for every row of the batch, so a batched step reads each weight once.
// (The SIMD kernels of the performance work replace the inner loops, not this structure.)
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "quant/quant.h"

namespace loom {

namespace {

// 16 independent partial sums let the compiler vectorise without -ffast-math.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads) : pool_(n_threads), scratch_(pool_.size()) {}

  std::string name() const override { return "cpu"; }

  void embed(const TensorView& table, std::span<const int32_t> ids, Activations& out) override {
    const int64_t cols = table.shape.back();
    const uint64_t row_bytes_ = *row_bytes(table.dtype, cols);
    out.resize(static_cast<int64_t>(ids.size()), cols);
    pool_.parallel_for(static_cast<int64_t>(ids.size()), [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        LOOM_ASSERT(ids[i] >= 0 && ids[i] < table.shape[0]);
        const auto* src = static_cast<const uint8_t*>(table.data) + ids[i] * row_bytes_;
        dequantize_row(table.dtype, src, out.row(i), cols);
      }
    });
  }

  void matmul(const Activations& x, const TensorView& w, const TensorView* bias,
              Activations& y) override {
    const int64_t n = x.rows(), k = x.cols(), m = w.shape[0];
    LOOM_ASSERT(w.shape.size() == 2 && w.shape[1] == k);
    y.resize(n, m);
    const uint64_t wrow_bytes = *row_bytes(w.dtype, k);
    const float* b = bias != nullptr ? row_as_f32(*bias, 0) : nullptr;
    pool_.parallel_for(m, [&](int64_t begin, int64_t end, int t) {
      std::vector<float>& buf = scratch(t, k);
      for (int64_t j = begin; j < end; ++j) {
        const auto* src = static_cast<const uint8_t*>(w.data) + j * wrow_bytes;
        const float* wr;
        if (w.dtype == DType::kF32) {
          wr = reinterpret_cast<const float*>(src);
        } else {
          dequantize_row(w.dtype, src, buf.data(), k);
          wr = buf.data();
        }
        const float bj = b != nullptr ? b[j] : 0.0f;
        for (int64_t i = 0; i < n; ++i) y.row(i)[j] = dot(x.row(i), wr, k) + bj;
      }
    });
  }

  void rms_norm(const Activations& x, const TensorView& weight, float eps, float weight_offset,
                int64_t group, Activations& y) override {
    const float* w = row_as_f32(weight, 1);
    LOOM_ASSERT(weight.numel() == group && x.cols() % group == 0);
    y.resize(x.rows(), x.cols());
    const int64_t groups_per_row = x.cols() / group;
    pool_.parallel_for(x.rows() * groups_per_row, [&](int64_t b, int64_t e, int) {
      for (int64_t gi = b; gi < e; ++gi) {
        const int64_t r = gi / groups_per_row, off = (gi % groups_per_row) * group;
        const float* xr = x.row(r) + off;
        float* yr = y.row(r) + off;
        float ss = 0.0f;
        for (int64_t i = 0; i < group; ++i) ss += xr[i] * xr[i];
        const float inv = 1.0f / std::sqrt(ss / static_cast<float>(group) + eps);
        for (int64_t i = 0; i < group; ++i) yr[i] = (xr[i] * inv) * (w[i] + weight_offset);
      }
    });
  }

  void layer_norm(const Activations& x, const TensorView& weight, const TensorView* bias, float eps,
                  Activations& y) override {
    const float* w = row_as_f32(weight, 1);
    const float* b = bias != nullptr ? row_as_f32(*bias, 2) : nullptr;
    const int64_t d = x.cols();
    y.resize(x.rows(), d);
    pool_.parallel_for(x.rows(), [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = x.row(r);
        float* yr = y.row(r);
        float mean = 0.0f;
        for (int64_t i = 0; i < d; ++i) mean += xr[i];
        mean /= static_cast<float>(d);
        float var = 0.0f;
        for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        var /= static_cast<float>(d);
        const float inv = 1.0f / std::sqrt(var + eps);
        for (int64_t i = 0; i < d; ++i) {
          yr[i] = (xr[i] - mean) * inv * w[i] + (b != nullptr ? b[i] : 0.0f);
        }
      }
    });
  }

  void rope(Activations& x, int64_t n_heads, int64_t head_dim, std::span<const int32_t> positions,
            const RopeTable& table) override {
    const int64_t half = table.dims / 2;
    pool_.parallel_for(x.rows(), [&](int64_t begin, int64_t end, int) {
      std::vector<float> cs(2 * half);
      for (int64_t r = begin; r < end; ++r) {
        // As HF: the angle is a float32 product of the position and the float32 frequency.
        const float pos = static_cast<float>(positions[r]) / table.position_scale;
        for (int64_t i = 0; i < half; ++i) {
          const float angle = pos * table.inv_freq[i];
          cs[2 * i] = std::cos(angle);
          cs[2 * i + 1] = std::sin(angle);
        }
        for (int64_t h = 0; h < n_heads; ++h) {
          float* v = x.row(r) + h * head_dim;
          for (int64_t i = 0; i < half; ++i) {
            const int64_t a = table.style == RopeStyle::kNeox ? i : 2 * i;
            const int64_t b = table.style == RopeStyle::kNeox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b], c = cs[2 * i], s = cs[2 * i + 1];
            v[a] = x0 * c - x1 * s;
            v[b] = x1 * c + x0 * s;
          }
        }
      }
    });
  }

  void attention(const Activations& q, const Activations& k, const Activations& v, KvCache& cache,
                 int64_t layer, std::span<const SeqSlice> seqs, const AttentionParams& p,
                 Activations& out) override {
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
    std::vector<std::pair<const SeqSlice*, int64_t>> row_seq(q.rows());
    for (const SeqSlice& s : seqs) {
      for (int64_t t = 0; t < s.n_tokens; ++t) row_seq[s.first_row + t] = {&s, s.start_pos + t};
    }
    pool_.parallel_for(q.rows() * p.n_heads, [&](int64_t begin, int64_t end, int t) {
      std::vector<float>& scores = scratch(t, 0);
      for (int64_t item = begin; item < end; ++item) {
        const int64_t r = item / p.n_heads, h = item % p.n_heads, kvh = h / group;
        const auto [s, pos] = row_seq[r];
        const int64_t first =
            p.sliding_window > 0 ? std::max<int64_t>(0, pos - p.sliding_window + 1) : 0;
        const int64_t n_keys = pos - first + 1;
        if (static_cast<int64_t>(scores.size()) < n_keys) scores.resize(n_keys);
        const float* qh = q.row(r) + h * p.head_dim;
        float max_s = -INFINITY;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float* kj = cache.k(layer, slot_of(*s, first + j)) + kvh * p.head_dim;
          float sc = dot(qh, kj, p.head_dim) * p.scale;
          if (p.softcap > 0.0f) sc = p.softcap * std::tanh(sc / p.softcap);
          scores[j] = sc;
          max_s = std::max(max_s, sc);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < n_keys; ++j) {
          scores[j] = std::exp(scores[j] - max_s);
          sum += scores[j];
        }
        float* o = out.row(r) + h * p.head_dim;
        std::fill_n(o, p.head_dim, 0.0f);
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float* vj = cache.v(layer, slot_of(*s, first + j)) + kvh * p.head_dim;
          const float w = scores[j] * inv;
          for (int64_t d = 0; d < p.head_dim; ++d) o[d] += w * vj[d];
        }
      }
    });
  }

  void swiglu(const Activations& gate, const Activations& up, Activations& out) override {
    out.resize(gate.rows(), gate.cols());
    const int64_t n = gate.rows() * gate.cols();
    const float* g = gate.data();
    const float* u = up.data();
    float* o = out.data();
    for (int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }

  void add(Activations& acc, const Activations& x) override {
    const int64_t n = acc.rows() * acc.cols();
    float* a = acc.data();
    const float* b = x.data();
    for (int64_t i = 0; i < n; ++i) a[i] += b[i];
  }

 private:
  std::vector<float>& scratch(int thread, int64_t n) {
    std::vector<float>& s = scratch_[thread];
    if (static_cast<int64_t>(s.size()) < n) s.resize(n);
    return s;
  }

  // A small vector weight (norm, bias) as float32; `slot` picks one of a few reusable buffers
  // so that two such vectors can be live in one op.
  const float* row_as_f32(const TensorView& t, int slot) {
    if (t.dtype == DType::kF32) return static_cast<const float*>(t.data);
    std::vector<float>& buf = small_[slot];
    buf.resize(t.numel());
    dequantize_row(t.dtype, t.data, buf.data(), t.numel());
    return buf.data();
  }

  ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;
  std::vector<float> small_[3];
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
  return std::make_unique<CpuBackend>(n_threads);
}

}  // namespace loom
