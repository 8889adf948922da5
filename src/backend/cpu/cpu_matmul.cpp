// Embedding lookup and matrix multiplication on the CPU. Quantized and half-precision weight
// rows are dequantized one row at a time into a per-thread buffer and reused for every row of
// the batch, so a batched step reads each weight once. (SIMD kernels replace the inner loops,
// not this structure.)
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "quant/quant.h"

namespace loom::cpu {

void CpuBackend::embed(const TensorView& table, std::span<const int32_t> ids, Activations& out) {
  const int64_t cols = table.shape.back();
  const uint64_t table_row_bytes = *row_bytes(table.dtype, cols);
  out.resize(static_cast<int64_t>(ids.size()), cols);
  pool_.parallel_for(static_cast<int64_t>(ids.size()), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      LOOM_ASSERT(ids[i] >= 0 && ids[i] < table.shape[0]);
      const auto* src = static_cast<const uint8_t*>(table.data) + ids[i] * table_row_bytes;
      dequantize_row(table.dtype, src, out.row(i), cols);
    }
  });
}

void CpuBackend::matmul(const Activations& x, const TensorView& w, const TensorView* bias,
                        Activations& y) {
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

const float* CpuBackend::row_as_f32(const TensorView& t, int slot) {
  if (t.dtype == DType::kF32) return static_cast<const float*>(t.data);
  std::vector<float>& buf = small_[slot];
  buf.resize(t.numel());
  dequantize_row(t.dtype, t.data, buf.data(), t.numel());
  return buf.data();
}

}  // namespace loom::cpu

namespace loom {

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
  return std::make_unique<cpu::CpuBackend>(n_threads);
}

}  // namespace loom
