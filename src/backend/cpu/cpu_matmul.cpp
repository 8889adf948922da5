// Embedding lookup and matrix multiplication on the CPU: the dispatch point of the kernels in
// kernels/ (per weight type, scalar or AVX-512 picked at run time). Every path parallelises
// over output rows (weight rows), so each thread reads a disjoint half of the weights once per
// step; decode (few activation rows) runs per-row dot products, prefill dequantizes panels of
// weights and runs a register-tiled float32 micro-kernel.
#include <algorithm>
#include <array>
#include <cstdint>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/host_kv_cache.h"
#include "backend/cpu/host_tensor.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/error.h"
#include "core/system_memory.h"
#include "quant/quant.h"

namespace loom::cpu {

void CpuBackend::embed(const TensorView& table, std::span<const int32_t> ids, Activations& out) {
  const int64_t cols = table.shape.back();
  const uint64_t table_row_bytes = *row_bytes(table.dtype, cols);
  const auto out_rows = host_alloc(out, static_cast<int64_t>(ids.size()), cols);
  pool_.parallel_for(static_cast<int64_t>(ids.size()), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      LOOM_ASSERT(ids[i] >= 0 && ids[i] < table.shape[0]);
      const auto* src = static_cast<const uint8_t*>(table.data) + ids[i] * table_row_bytes;
      dequantize_row(table.dtype, src, out_rows.row(i), cols);
    }
  });
}

namespace {

// Float prefill blocking: 32 weight rows x kPanelK columns per panel (32 KiB of float32, next
// to the activation rows' kPanelK-column slices: 128 rows x 1 KiB in L2).
constexpr int64_t kPanelK = 256;  // a multiple of every block size (256)
// Below this many activation rows the weights are read once per row anyway and the step is
// memory-bound: per-row dot products (int8 for quantized weights) win.
constexpr int64_t kGemmMinRows = 4;
// set_single_row_kernels_up_to: at most this many rows take the single-row kernels.
constexpr int64_t kMaxSingleRowRows = 16;
// From this many activation rows on, float-convertible weights take the activation-major form
// (bit-identical per output to the weight-major panel form below it, which wins for fewer rows
// because its tiles are along the weights).
constexpr int64_t kXtMinRows = 16;

// y[i][r0, r0 + rows) += bias[r0, r0 + rows) for each of the n rows (no-op without a bias).
void add_bias_block(const HostRows<float>& y, int64_t n, const float* bias, int64_t r0,
                    int64_t rows) {
  if (bias == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {
    float* yr = y.row(i) + r0;
    for (int64_t r = 0; r < rows; ++r) yr[r] += bias[r0 + r];
  }
}

float* align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

}  // namespace

void CpuBackend::matmul(const Activations& x, const TensorView& w, const TensorView* bias,
                        Activations& y) {
  const int64_t n = x.rows(), k = x.cols(), m = w.shape[0];
  LOOM_ASSERT(w.shape.size() == 2 && w.shape[1] == k);
  if (w.layout == kPackedRows16) {
    // Q4_0/Q4_K packed 16 rows at a time: one kernel for any n (kernels/packed.cpp).
    const MatmulTarget target{&w, bias, &y};
    const auto* packed = static_cast<const uint8_t*>(w.data);
    packed_matmuls(x, {&target, 1}, {&packed, 1});
    return;
  }
  LOOM_ASSERT(w.layout == 0);
  const MatmulJob job{host(x),
                      host_alloc(y, n, m),
                      n,
                      k,
                      m,
                      &w,
                      static_cast<const uint8_t*>(w.data),
                      *row_bytes(w.dtype, k),
                      bias != nullptr ? row_as_f32(*bias, 0) : nullptr,
                      kernels::find_kernels(w.dtype)};
  // Batch-invariant mode: every n takes the prefill kernels below (see make_cpu_backend).
  const int64_t gemm_min_rows = batch_invariant_ ? 1 : std::max(kGemmMinRows, single_row_rows_ + 1);
  const bool float_convertible = job.kern.dequant != nullptr || w.dtype == DType::kF32;
  // The AVX2 tier has only the activation-major form (so the batch-invariant backend's rows
  // agree across batch sizes there too).
  const int64_t xt_min_rows = kernels::use_avx2() ? 1 : kXtMinRows;
  const bool direct_float =
      w.dtype == DType::kF32 || w.dtype == DType::kF16 || w.dtype == DType::kBF16;
  if (batch_invariant_ && direct_float && n <= kernels::kGemvRows && n < xt_min_rows &&
      kernels::gemv_panel32_supported()) {
    matmul_decode_panel(job);  // the weight-major form's bits, without its panel
  } else if (batch_invariant_ && n <= kernels::kGemvRows && kernels::int8_gemm_supported(w.dtype)) {
    matmul_decode_int8_panel(job);  // the int8 prefill's bits, without padding the rows
  } else if (n < gemm_min_rows && job.kern.qdot != nullptr) {
    matmul_decode_int8(job);
  } else if (n < gemm_min_rows && job.kern.fdot != nullptr) {
    matmul_decode_float(job);
  } else if (kernels::int8_gemm_supported(w.dtype)) {
    matmul_prefill_int8(job);
  } else if (float_convertible && n >= xt_min_rows) {
    matmul_prefill_act_major(job);
  } else if (float_convertible) {
    matmul_prefill_weight_major(job);
  } else {
    matmul_rowwise(job);
  }
}

// Decode with int8 dot products (few rows, a quantized type with qdot).
void CpuBackend::matmul_decode_int8(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const uint8_t* wbase = job.wbase;
  const uint64_t wrow_bytes = job.wrow_bytes;
  const float* b = job.bias;
  const kernels::Kernels& kern = job.kern;
  // Decode: the activation rows are quantized once (thread 0's scratch holds them; the
  // workers only read), then every weight row meets them in int8.
  const int64_t qbytes = kernels::qact_bytes(k);
  float* qbuf = align64(scratch(0, (n * qbytes + 64) / 4 + 16).data());
  std::array<kernels::QAct, kMaxSingleRowRows> qa;
  for (int64_t i = 0; i < n; ++i) {
    qa[i] = kernels::quantize_act(x.row(i), k, reinterpret_cast<uint8_t*>(qbuf) + i * qbytes);
  }
  pool_.parallel_for(m, [&](int64_t begin, int64_t end, int) {
    for (int64_t j = begin; j < end; ++j) {
      const float bj = b != nullptr ? b[j] : 0.0f;
      for (int64_t i = 0; i < n; ++i)
        y.row(i)[j] = kern.qdot(wbase + j * wrow_bytes, qa[i], k) + bj;
    }
  });
}

// Decode with float dot products (few rows, F32/F16/BF16 weights).
void CpuBackend::matmul_decode_float(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const uint8_t* wbase = job.wbase;
  const uint64_t wrow_bytes = job.wrow_bytes;
  const float* b = job.bias;
  const kernels::Kernels& kern = job.kern;
  if (n > 1 && kern.fdot_rows != nullptr) {
    // Several rows (a speculative checking pass): each weight row converted once for all
    // of them, every result bit-identical to fdot's.
    std::array<const float*, kMaxSingleRowRows> xs{};
    for (int64_t i = 0; i < n; ++i) xs[static_cast<size_t>(i)] = x.row(i);
    pool_.parallel_for(m, [&](int64_t begin, int64_t end, int) {
      std::array<float, kMaxSingleRowRows> dots{};
      for (int64_t j = begin; j < end; ++j) {
        const float bj = b != nullptr ? b[j] : 0.0f;
        kern.fdot_rows(wbase + j * wrow_bytes, xs.data(), static_cast<int>(n), k, dots.data());
        for (int64_t i = 0; i < n; ++i) y.row(i)[j] = dots[static_cast<size_t>(i)] + bj;
      }
    });
    return;
  }
  pool_.parallel_for(m, [&](int64_t begin, int64_t end, int) {
    for (int64_t j = begin; j < end; ++j) {
      const float bj = b != nullptr ? b[j] : 0.0f;
      for (int64_t i = 0; i < n; ++i)
        y.row(i)[j] = kern.fdot(wbase + j * wrow_bytes, x.row(i), k) + bj;
    }
  });
}

// Prefill with quantized weights and VNNI.
void CpuBackend::matmul_prefill_int8(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const TensorView& w = *job.w;
  const uint8_t* wbase = job.wbase;
  const uint64_t wrow_bytes = job.wrow_bytes;
  const float* b = job.bias;
  // Prefill with quantized weights: int8 activations packed once, then 8 weight rows at a
  // time meet all of them in VNNI (see gemm_q8.cpp).
  thread_local std::vector<uint8_t> packed;
  packed.resize(static_cast<size_t>(kernels::packed_act_bytes(n, k)) + 64);
  void* act = align64(reinterpret_cast<float*>(packed.data()));
  kernels::pack_activations(x.data(), k, n, k, act);
  const int64_t panels = (m + 7) / 8;
  pool_.parallel_for(panels, [&](int64_t begin, int64_t end, int t) {
    float* panel = align64(scratch(t, kernels::weight_panel_bytes(k) / 4 + 16).data());
    for (int64_t p = begin; p < end; ++p) {
      const int64_t r0 = p * 8;
      const int rows = static_cast<int>(std::min<int64_t>(8, m - r0));
      kernels::gemm_q8(w.dtype, wbase + r0 * wrow_bytes, wrow_bytes, rows, act, n, k, panel,
                       y.data() + r0, m);
      add_bias_block(y, n, b, r0, rows);
    }
  });
}

// Prefill, activation-major: many rows, float-convertible weights.
void CpuBackend::matmul_prefill_act_major(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const TensorView& w = *job.w;
  const uint8_t* wbase = job.wbase;
  const uint64_t wrow_bytes = job.wrow_bytes;
  const float* b = job.bias;
  const kernels::Kernels& kern = job.kern;
  // Prefill with many activation rows: the activations are transposed once (xt_), then
  // kXtRows weight rows x kPanelK columns at a time are converted to float32 rows (no
  // transposing) and meet all n activation columns in the activation-major micro-kernel;
  // each thread gathers its rows' outputs transposed (yt) and writes them back once.
  const int64_t n_pad = (n + 15) / 16 * 16;
  xt_.resize(static_cast<size_t>(k * n_pad + 16));
  float* xt = align64(xt_.data());
  pool_.parallel_for((k + 15) / 16, [&](int64_t begin, int64_t end, int) {
    const int64_t k0 = begin * 16, k1 = std::min(k, end * 16);
    kernels::transpose_f32(x.data() + k0, k, n, k1 - k0, xt + k0 * n_pad, n_pad);
    if (n_pad > n) {
      for (int64_t kk = k0; kk < k1; ++kk)
        std::fill(xt + kk * n_pad + n, xt + (kk + 1) * n_pad, 0.0f);
    }
  });
  const bool f32 = w.dtype == DType::kF32;
  // Byte offset and length of each kPanelK-column panel within a weight row.
  const int64_t n_panels = (k + kPanelK - 1) / kPanelK;
  panel_bytes_.resize(static_cast<size_t>(2 * n_panels));
  for (int64_t p = 0; p < n_panels; ++p) {
    panel_bytes_[2 * p] = *row_bytes(w.dtype, p * kPanelK);
    panel_bytes_[2 * p + 1] = *row_bytes(w.dtype, std::min(kPanelK, k - p * kPanelK));
  }
  // Outputs go back through yt kYtUnits units at a time: 48 rows make whole 16 x 16 blocks
  // and full-line stores into y (12 rows at a time were 5% of an F16 prefill).
  constexpr int64_t kYtUnits = 4;
  const int64_t units = (m + kernels::kXtRows - 1) / kernels::kXtRows;
  pool_.parallel_for(units, [&](int64_t begin, int64_t end, int t) {
    float* wbuf = align64(scratch(t, kernels::kXtRows * (kPanelK + kYtUnits * n_pad) + 32).data());
    float* yt_base = wbuf + kernels::kXtRows * kPanelK;
    const int64_t end_row = std::min(m, end * kernels::kXtRows);
    for (int64_t g = begin; g < end; g += kYtUnits) {
      const int64_t g_end = std::min(end, g + kYtUnits), g_r0 = g * kernels::kXtRows;
      for (int64_t u = g; u < g_end; ++u) {
        const int64_t r0 = u * kernels::kXtRows;
        const int rows = static_cast<int>(std::min<int64_t>(kernels::kXtRows, m - r0));
        float* yt = yt_base + (r0 - g_r0) * n_pad;
        for (int64_t p = 0; p < n_panels; ++p) {
          const int64_t k0 = p * kPanelK, kc = std::min(kPanelK, k - k0);
          const float* wp = wbuf;
          int64_t ldw = kPanelK;
          if (f32) {
            wp = reinterpret_cast<const float*>(wbase + r0 * wrow_bytes) + k0;
            ldw = k;
          } else {
            for (int r = 0; r < rows; ++r) {
              kern.dequant(wbase + (r0 + r) * wrow_bytes + panel_bytes_[2 * p], wbuf + r * kPanelK,
                           kc);
            }
          }
          // The next panel's rows (short streams the hardware prefetcher misses), while the
          // micro-kernel runs.
          const int64_t np = p + 1 < n_panels ? p + 1 : 0;
          const int64_t nr0 = np > 0 ? r0 : r0 + kernels::kXtRows;
          for (int64_t r = nr0; r < std::min(nr0 + kernels::kXtRows, end_row); ++r) {
            const uint8_t* pf = wbase + r * wrow_bytes + panel_bytes_[2 * np];
            for (uint64_t off = 0; off < panel_bytes_[2 * np + 1]; off += 64)
              __builtin_prefetch(pf + off, 0, 3);
          }
          kernels::gemm_xt(wp, ldw, rows, kc, xt + k0 * n_pad, n_pad, n_pad, yt, n_pad, p > 0);
        }
      }
      const int64_t g_rows = std::min(m, g_end * kernels::kXtRows) - g_r0;
      kernels::transpose_f32(yt_base, n_pad, g_rows, n, y.data() + g_r0, m);
      add_bias_block(y, n, b, g_r0, g_rows);
    }
  });
}

// Prefill, weight-major panels: float-convertible weights.
void CpuBackend::matmul_prefill_weight_major(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const TensorView& w = *job.w;
  const uint8_t* wbase = job.wbase;
  const uint64_t wrow_bytes = job.wrow_bytes;
  const float* b = job.bias;
  const kernels::Kernels& kern = job.kern;
  // Prefill with float-convertible weights: 32 rows x kPanelK columns at a time are converted
  // to float32 and transposed into a panel (F32/F16/BF16 straight from the file's rows,
  // other types dequantized first) and multiplied with every activation row by the
  // broadcast micro-kernel (kernels/gemm_f32.cpp); the panel (32 KiB) stays in L1/L2 while
  // all n rows pass.
  const bool direct = w.dtype == DType::kF32 || w.dtype == DType::kF16 || w.dtype == DType::kBF16;
  const int64_t units = (m + kernels::kPanel32 - 1) / kernels::kPanel32;
  pool_.parallel_for(units, [&](int64_t begin, int64_t end, int t) {
    float* rows_buf = align64(scratch(t, 2 * kernels::kPanel32 * kPanelK + 32).data());
    float* wt = rows_buf + kernels::kPanel32 * kPanelK;
    for (int64_t u = begin; u < end; ++u) {
      const int64_t r0 = u * kernels::kPanel32;
      const int rows = static_cast<int>(std::min<int64_t>(kernels::kPanel32, m - r0));
      for (int64_t k0 = 0; k0 < k; k0 += kPanelK) {
        const int64_t kc = std::min(kPanelK, k - k0);
        const uint64_t col_bytes = *row_bytes(w.dtype, k0);
        // The next panel's rows: 32 short streams the hardware prefetcher does not pick up
        // in time (the conversion waited on memory for 8% of an F16 prefill); the
        // micro-kernel calls below hide them.
        kernels::PanelPrefetch next;
        const int64_t nk0 = k0 + kPanelK < k ? k0 + kPanelK : 0;
        const int64_t nr0 = nk0 > 0 ? r0 : r0 + kernels::kPanel32;
        if (nr0 < std::min(m, end * kernels::kPanel32)) {
          next.base = wbase + nr0 * wrow_bytes + *row_bytes(w.dtype, nk0);
          next.stride = wrow_bytes;
          next.bytes = *row_bytes(w.dtype, std::min(kPanelK, k - nk0));
          next.rows = static_cast<int>(std::min<int64_t>(kernels::kPanel32, m - nr0));
        }
        if (direct) {
          kernels::pack_panel32(w.dtype, wbase + r0 * wrow_bytes + col_bytes, k, rows, kc, wt);
        } else {
          for (int r = 0; r < rows; ++r) {
            kern.dequant(wbase + (r0 + r) * wrow_bytes + col_bytes, rows_buf + r * kPanelK, kc);
          }
          kernels::pack_panel32(DType::kF32, rows_buf, kPanelK, rows, kc, wt);
        }
        kernels::gemm_panel32(wt, kc, x.data() + k0, k, n, y.data() + r0, m, rows, k0 > 0, next);
      }
      add_bias_block(y, n, b, r0, rows);
    }
  });
}

void CpuBackend::matmul_decode_panel(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const int64_t units = (m + kernels::kPanel32 - 1) / kernels::kPanel32;
  pool_.parallel_for(units, [&](int64_t begin, int64_t end, int) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t r0 = u * kernels::kPanel32;
      const int rows = static_cast<int>(std::min<int64_t>(kernels::kPanel32, m - r0));
      kernels::gemv_panel32(job.w->dtype, job.wbase + r0 * job.wrow_bytes, k, rows, k, kPanelK,
                            x.data(), k, static_cast<int>(n), y.data() + r0, m,
                            std::min<int64_t>(2 * kernels::kPanel32, m - r0));
      add_bias_block(y, n, job.bias, r0, rows);
    }
  });
}

void CpuBackend::matmul_decode_int8_panel(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<float>& y = job.y;
  const int64_t qbytes = kernels::qact_bytes(k);
  // Thread 0's scratch holds the quantized rows, then its own unpacked weights: sized once,
  // before the rows are written, so that nothing moves under them.
  const int64_t q_floats = (n * qbytes + 64) / 4 + 16;
  const int64_t scratch_floats = kernels::gemv_q8_scratch_bytes(k) / 4 + 16;
  float* qbuf = align64(scratch(0, q_floats + scratch_floats).data());
  std::array<kernels::QAct, kernels::kGemvRows> qa;
  for (int64_t i = 0; i < n; ++i) {
    qa[i] = kernels::quantize_act(job.x.row(i), k, reinterpret_cast<uint8_t*>(qbuf) + i * qbytes);
  }
  const int64_t units = (m + 15) / 16;
  pool_.parallel_for(units, [&](int64_t begin, int64_t end, int t) {
    float* buf =
        t == 0 ? align64(qbuf + q_floats - 16) : align64(scratch(t, scratch_floats).data());
    for (int64_t u = begin; u < end; ++u) {
      const int64_t r0 = u * 16;
      const int rows = static_cast<int>(std::min<int64_t>(16, m - r0));
      kernels::gemv_q8(job.w->dtype, job.wbase + r0 * job.wrow_bytes, job.wrow_bytes, rows,
                       qa.data(), static_cast<int>(n), k, buf, y.data() + r0, m);
      add_bias_block(y, n, job.bias, r0, rows);
    }
  });
}

// Any other type: one dequantized weight row at a time.
void CpuBackend::matmul_rowwise(const MatmulJob& job) {
  const int64_t n = job.n, k = job.k, m = job.m;
  const HostRows<const float>& x = job.x;
  const HostRows<float>& y = job.y;
  const TensorView& w = *job.w;
  const uint8_t* wbase = job.wbase;
  const uint64_t wrow_bytes = job.wrow_bytes;
  const float* b = job.bias;
  // Other types: dequantize a weight row at a time and reuse it for every batch row.
  pool_.parallel_for(m, [&](int64_t begin, int64_t end, int t) {
    std::vector<float>& buf = scratch(t, k);
    for (int64_t j = begin; j < end; ++j) {
      dequantize_row(w.dtype, wbase + j * wrow_bytes, buf.data(), k);
      const float bj = b != nullptr ? b[j] : 0.0f;
      for (int64_t i = 0; i < n; ++i) y.row(i)[j] = dot(x.row(i), buf.data(), k) + bj;
    }
  });
}

void CpuBackend::matmul_many(const Activations& x, std::span<const MatmulTarget> targets) {
  std::array<const uint8_t*, 3> packed{};  // at most one bias slot (small_) per matrix
  bool all_packed = targets.size() <= packed.size();
  for (size_t i = 0; all_packed && i < targets.size(); ++i) {
    const TensorView& w = *targets[i].w;
    packed[i] = w.layout == kPackedRows16 && w.shape[1] == x.cols()
                    ? static_cast<const uint8_t*>(w.data)
                    : nullptr;
    all_packed = packed[i] != nullptr;
  }
  if (!all_packed) {
    Backend::matmul_many(x, targets);
    return;
  }
  packed_matmuls(x, targets, {packed.data(), targets.size()});
}

void CpuBackend::packed_matmuls(const Activations& x, std::span<const MatmulTarget> targets,
                                std::span<const uint8_t* const> packed) {
  const int64_t n = x.rows(), k = x.cols();
  const auto xr = host(x);
  // The activation rows are quantized once for all the matrices.
  const int64_t qbytes = kernels::qact_bytes(k);
  qact_.resize(static_cast<size_t>(n * qbytes + 64));
  auto* qbase = reinterpret_cast<uint8_t*>(align64(reinterpret_cast<float*>(qact_.data())));
  qviews_.resize(static_cast<size_t>(n));
  pool_.parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      qviews_[i] = kernels::quantize_act(xr.row(i), k, qbase + i * qbytes);
    }
  });
  // One dispatch over the 16-row groups of all the matrices, in order.
  LOOM_ASSERT(targets.size() <= 3);
  std::array<int64_t, 4> first{};
  std::array<const float*, 3> bias{};
  std::array<uint64_t, 3> group_bytes{};
  std::array<float*, 3> ys{};
  for (size_t t = 0; t < targets.size(); ++t) {
    const int64_t m = targets[t].w->shape[0];
    ys[t] = host_alloc(*targets[t].y, n, m).data();
    first[t + 1] = first[t] + m / kernels::kPackRows;
    group_bytes[t] = kernels::kPackRows * *row_bytes(targets[t].w->dtype, k);
    if (targets[t].bias != nullptr) bias[t] = row_as_f32(*targets[t].bias, static_cast<int>(t));
  }
  const int64_t groups = first[targets.size()];
  // Chunks taken from a shared counter: with a static half each, the thread that started
  // later (or whose core the host slowed) left the other waiting 12% of decode time.
  const int64_t chunk = std::max<int64_t>(1, groups / (4 * pool_.size()));
  pool_.parallel_for_dynamic(groups, chunk, [&](int64_t begin, int64_t end, int) {
    size_t t = 0;
    for (int64_t g = begin; g < end; ++g) {
      while (g >= first[t + 1]) ++t;
      const TensorView& w = *targets[t].w;
      const int64_t m = w.shape[0], local = g - first[t];
      float* y = ys[t] + local * kernels::kPackRows;
      kernels::packed_gemm(w.dtype, packed[t] + local * group_bytes[t], k, qviews_.data(), n, y, m);
      if (bias[t] != nullptr) {
        const float* b = bias[t] + local * kernels::kPackRows;
        for (int64_t i = 0; i < n; ++i) {
          for (int r = 0; r < kernels::kPackRows; ++r) y[i * m + r] += b[r];
        }
      }
    }
  });
}

TensorView CpuBackend::prepare_weight(const TensorView& w, WeightUse use) {
  if (use == WeightUse::kLookup) {
    // A token embedding reads one row per token: the whole table in memory (copied from the
    // file, or its pages kept after a full read) is resident memory that serves nothing. Its
    // pages go back to the page cache, and a background copy of the file skips them.
    release_file_pages(w.data, w.n_bytes);
    return Backend::prepare_weight(w, use);
  }
  if (use != WeightUse::kMatrix || !pack_enabled_ || w.layout != 0 || w.shape.size() != 2 ||
      !kernels::packable(w.dtype, w.shape[0], w.shape[1])) {
    return Backend::prepare_weight(w, use);
  }
  const int64_t m = w.shape[0], k = w.shape[1];
  const uint64_t wrow_bytes = *row_bytes(w.dtype, k);
  const uint64_t group_bytes = kernels::kPackRows * wrow_bytes;
  // A packed copy is memory of its own while the file's bytes are in the page cache: a model
  // larger than memory (its file left mapped) keeps its weights where they are once memory runs
  // short, rather than pushing the rest of the file out of the cache or the process into the
  // OOM killer.
  if (!fits_in_memory(static_cast<uint64_t>(m) * wrow_bytes, read_system_memory())) {
    return Backend::prepare_weight(w, use);
  }
  uint8_t* packed = packed_.allocate(static_cast<uint64_t>(m) * wrow_bytes);
  const auto* src = static_cast<const uint8_t*>(w.data);
  pool_.parallel_for(m / kernels::kPackRows, [&](int64_t begin, int64_t end, int) {
    for (int64_t g = begin; g < end; ++g) {
      kernels::pack_rows16(w.dtype, src + g * group_bytes, wrow_bytes, k, packed + g * group_bytes);
    }
  });
  // The matmuls read the packed copy: the file's copy of these bytes goes back to the system
  // (pages re-read from the file if anything reads them again, e.g. the embedding lookup of a
  // tied token_embd), so packing does not double resident memory.
  release_file_pages(src, static_cast<uint64_t>(m) * wrow_bytes);
  TensorView out = w;
  out.data = packed;
  out.n_bytes = static_cast<uint64_t>(m) * wrow_bytes;
  out.layout = kPackedRows16;
  account_weight(out.data, out.n_bytes);
  return out;
}

const float* CpuBackend::row_as_f32(const TensorView& t, int slot) {
  if (t.dtype == DType::kF32) return static_cast<const float*>(t.data);
  std::vector<float>& buf = small_[slot];
  buf.resize(t.numel());
  dequantize_row(t.dtype, t.data, buf.data(), t.numel());
  return buf.data();
}

void CpuBackend::set_single_row_kernels_up_to(int64_t rows) {
  single_row_rows_ = std::clamp<int64_t>(rows, 0, kMaxSingleRowRows);
}

}  // namespace loom::cpu

namespace loom {

std::unique_ptr<Backend> make_cpu_backend(int n_threads, bool batch_invariant,
                                          std::shared_ptr<Communicator> comm) {
  return std::make_unique<cpu::CpuBackend>(n_threads, batch_invariant, std::move(comm));
}

}  // namespace loom
