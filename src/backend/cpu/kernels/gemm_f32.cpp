// Prefill for weights that convert to float32 exactly (F32, F16, BF16), in the broadcast form
// of a BLAS micro-kernel: 32 weight rows are converted and transposed into a panel wt[kk][32]
// (two zmm per k index), and each activation value is broadcast against them, so a step of k
// is 2 vector loads + 12 broadcasts for 24 FMAs into 24 accumulators (32 weight rows x 12
// activation rows) and no horizontal sums are left at the end, unlike the dot-form 4x6 tile.
// Per (weight row, activation row) the products are summed in k order, panel after panel, the
// same whatever the batch, so a row's result does not depend on the rows beside it.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "core/error.h"
#include "quant/half.h"

namespace loom::cpu::kernels {

namespace {

float load_weight(DType t, const void* src, int64_t i) {
  switch (t) {
    case DType::kF16:
      return fp16_to_fp32(half_bits_at(src, i));
    case DType::kBF16:
      return bf16_to_fp32(half_bits_at(src, i));
    default:
      return static_cast<const float*>(src)[i];
  }
}

void pack_panel32_scalar(DType t, const void* src, int64_t ld, int rows, int64_t kc, float* wt) {
  for (int64_t kk = 0; kk < kc; ++kk) {
    for (int r = 0; r < kPanel32; ++r)
      wt[kk * kPanel32 + r] = r < rows ? load_weight(t, src, r * ld + kk) : 0.0f;
  }
}

void gemm_panel32_scalar(const float* wt, int64_t kc, const float* x, int64_t ldx, int64_t n,
                         float* y, int64_t ldy, int rows, bool accumulate) {
  for (int64_t c = 0; c < n; ++c) {
    float acc[kPanel32] = {};
    for (int64_t kk = 0; kk < kc; ++kk) {
      const float xv = x[c * ldx + kk];
      for (int r = 0; r < kPanel32; ++r) acc[r] += wt[kk * kPanel32 + r] * xv;
    }
    for (int r = 0; r < rows; ++r) y[c * ldy + r] = accumulate ? y[c * ldy + r] + acc[r] : acc[r];
  }
}

void transpose_scalar(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                      int64_t ldd) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
}

// Shaped like gemm_panel32_scalar (a scalar times a run of lanes into lane accumulators) so
// that the compiler treats both alike and they stay bit-identical here too.
void gemm_xt_scalar(const float* w, int64_t ldw, int rows, int64_t kc, const float* xt,
                    int64_t ldxt, int64_t n, float* yt, int64_t ldyt, bool accumulate) {
  for (int r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < n; c0 += 16) {
      float acc[16] = {};
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float wv = w[r * ldw + kk];
        for (int l = 0; l < 16; ++l) acc[l] += xt[kk * ldxt + c0 + l] * wv;
      }
      float* yr = yt + r * ldyt + c0;
      for (int l = 0; l < 16; ++l) yr[l] = accumulate ? yr[l] + acc[l] : acc[l];
    }
  }
}

#ifdef LOOM_HAVE_X86_KERNELS

// The 16 x 16 blocks are converted as they are loaded (F16/BF16 -> float32 is exact), so the
// weights go from the file's rows to the transposed float panel in one pass.
template <typename L>
LOOM_AVX512 void pack_panel32_avx512(const void* src, int64_t ld, int rows, int64_t kc, float* wt) {
  for (int64_t k0 = 0; k0 < kc; k0 += 16) {
    const int64_t cols = std::min<int64_t>(16, kc - k0);
    const __mmask16 m = x86::tail_mask(cols);
    for (int half = 0; half < 2; ++half) {
      __m512 v[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        const int r = 16 * half + i;
        v[i] = r < rows ? L::load(src, r * ld + k0, m) : _mm512_setzero_ps();
      }
      x86::transpose16(v);
      for (int64_t j = 0; j < cols; ++j)
        _mm512_storeu_ps(wt + (k0 + j) * kPanel32 + 16 * half, v[j]);
    }
  }
}

template <int NR>
LOOM_AVX512 void micro32(const float* wt, int64_t kc, const float* x, int64_t ldx, float* y,
                         int64_t ldy, __mmask16 m0, __mmask16 m1, bool accumulate) {
  __m512 a0[NR], a1[NR];
#pragma GCC unroll 16
  for (int c = 0; c < NR; ++c) a0[c] = a1[c] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < kc; ++kk) {
    const __m512 w0 = _mm512_load_ps(wt + kk * kPanel32);
    const __m512 w1 = _mm512_load_ps(wt + kk * kPanel32 + 16);
#pragma GCC unroll 16
    for (int c = 0; c < NR; ++c) {
      const __m512 xb = _mm512_set1_ps(x[c * ldx + kk]);
      a0[c] = _mm512_fmadd_ps(w0, xb, a0[c]);
      a1[c] = _mm512_fmadd_ps(w1, xb, a1[c]);
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < NR; ++c) {
    float* yc = y + c * ldy;
    if (accumulate) {
      a0[c] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, yc), a0[c]);
      a1[c] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, yc + 16), a1[c]);
    }
    _mm512_mask_storeu_ps(yc, m0, a0[c]);
    _mm512_mask_storeu_ps(yc + 16, m1, a1[c]);
  }
}

constexpr int kNR = 12;
using MicroFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, __mmask16,
                         __mmask16, bool);
template <size_t... I>
constexpr std::array<MicroFn, sizeof...(I)> micro_table(std::index_sequence<I...>) {
  return {&micro32<static_cast<int>(I) + 1>...};
}
constexpr auto kMicro = micro_table(std::make_index_sequence<kNR>());

LOOM_AVX512 void gemm_panel32_avx512(const float* wt, int64_t kc, const float* x, int64_t ldx,
                                     int64_t n, float* y, int64_t ldy, int rows, bool accumulate,
                                     const PanelPrefetch& next) {
  auto mask = [](int r) {
    return static_cast<__mmask16>(r >= 16 ? 0xFFFF : r <= 0 ? 0 : (1u << r) - 1);
  };
  const __mmask16 m0 = mask(rows), m1 = mask(rows - 16);
  // Near-equal tiles of at most kNR rows (128 = 7 x 12 + 4 x 11 rather than 10 x 12 + 8): a
  // short last tile reloads the panel for few FMAs.
  const int64_t tiles = (n + kNR - 1) / kNR;
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t c0 = t * n / tiles, nr = (t + 1) * n / tiles - c0;
    for (int r = static_cast<int>(t * next.rows / tiles);
         r < static_cast<int>((t + 1) * next.rows / tiles); ++r) {
      const uint8_t* p = next.base + r * next.stride;
      for (uint64_t off = 0; off < next.bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
    kMicro[nr - 1](wt, kc, x + c0 * ldx, ldx, y + c0 * ldy, ldy, m0, m1, accumulate);
  }
}

// The few-row form of the weight-major panel product (gemv_panel32): 2 x 16 weight rows are
// converted and transposed in registers, 16 columns at a time, and meet the NR activation rows
// at once, with no panel stored and reloaded. Per output the arithmetic is micro32's over the
// same panels (acc = w*x + acc in k order from zero per panel of panel_k, then y_old + acc).
template <typename L, int NR>
LOOM_AVX512 void gemv32(const void* src, int64_t ld, int rows, int64_t k, int64_t panel_k,
                        const float* x, int64_t ldx, float* y, int64_t ldy, int64_t prefetch_rows) {
  auto mask = [](int r) {
    return static_cast<__mmask16>(r >= 16 ? 0xFFFF : r <= 0 ? 0 : (1u << r) - 1);
  };
  const __mmask16 m0 = mask(rows), m1 = mask(rows - 16);
  for (int64_t k0 = 0; k0 < k; k0 += panel_k) {
    const int64_t kc = std::min(panel_k, k - k0);
    __m512 a0[NR], a1[NR];
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) a0[c] = a1[c] = _mm512_setzero_ps();
    for (int64_t kk0 = 0; kk0 < kc; kk0 += 16) {
      const int64_t cols = std::min<int64_t>(16, kc - kk0);
      const __mmask16 m = x86::tail_mask(cols);
      // 32 short row streams the hardware prefetcher does not follow in time: each step asks
      // for the lines its rows need one panel ahead (the next unit's rows in the last panel).
      {
        const int64_t ahead = k0 + kk0 + panel_k;
        const auto* base = static_cast<const uint8_t*>(src);
        for (int i = 0; i < 32; ++i) {
          const int64_t row = ahead < k ? i : i + 32;
          if (row < prefetch_rows) {
            const int64_t col = ahead < k ? ahead : ahead - k;
            _mm_prefetch(reinterpret_cast<const char*>(base + (row * ld + col) * L::kBytes),
                         _MM_HINT_T0);
          }
        }
      }
      const float* xk = x + k0 + kk0;
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        __m512 v[16];
        const int base_row = 16 * half;
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) {
          v[i] = base_row + i < rows ? L::load(src, (base_row + i) * ld + k0 + kk0, m)
                                     : _mm512_setzero_ps();
        }
        x86::transpose16(v);
        __m512* acc = half == 0 ? a0 : a1;
        if (cols == 16) {
#pragma GCC unroll 16
          for (int j = 0; j < 16; ++j) {
#pragma GCC unroll 4
            for (int c = 0; c < NR; ++c) {
              acc[c] = _mm512_fmadd_ps(v[j], _mm512_set1_ps(xk[c * ldx + j]), acc[c]);
            }
          }
        } else {
          for (int64_t j = 0; j < cols; ++j) {
#pragma GCC unroll 4
            for (int c = 0; c < NR; ++c) {
              acc[c] = _mm512_fmadd_ps(v[j], _mm512_set1_ps(xk[c * ldx + j]), acc[c]);
            }
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NR; ++c) {
      float* yc = y + c * ldy;
      if (k0 > 0) {
        a0[c] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, yc), a0[c]);
        a1[c] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, yc + 16), a1[c]);
      }
      _mm512_mask_storeu_ps(yc, m0, a0[c]);
      _mm512_mask_storeu_ps(yc + 16, m1, a1[c]);
    }
  }
}

template <typename L>
LOOM_AVX512 void gemv32_rows(const void* src, int64_t ld, int rows, int64_t k, int64_t panel_k,
                             const float* x, int64_t ldx, int n, float* y, int64_t ldy,
                             int64_t prefetch_rows) {
  switch (n) {
    case 1:
      return gemv32<L, 1>(src, ld, rows, k, panel_k, x, ldx, y, ldy, prefetch_rows);
    case 2:
      return gemv32<L, 2>(src, ld, rows, k, panel_k, x, ldx, y, ldy, prefetch_rows);
    case 3:
      return gemv32<L, 3>(src, ld, rows, k, panel_k, x, ldx, y, ldy, prefetch_rows);
    default:
      return gemv32<L, 4>(src, ld, rows, k, panel_k, x, ldx, y, ldy, prefetch_rows);
  }
}

// dst[j][i] = src[i][j] for i < rows, j < cols, through 16 x 16 register blocks.
LOOM_AVX512 void transpose_avx512(const float* src, int64_t lds, int64_t rows, int64_t cols,
                                  float* dst, int64_t ldd) {
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const int64_t ni = std::min<int64_t>(16, rows - i0);
    const __mmask16 mi = x86::tail_mask(ni);
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const int64_t nj = std::min<int64_t>(16, cols - j0);
      const __mmask16 mj = x86::tail_mask(nj);
      __m512 v[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        v[i] = i < ni ? _mm512_maskz_loadu_ps(mj, src + (i0 + i) * lds + j0) : _mm512_setzero_ps();
      }
      x86::transpose16(v);
      // Masked stores are slow on some cores (Zen 5 among them): only the edges take them.
      if (ni == 16) {
        for (int64_t j = 0; j < nj; ++j) _mm512_storeu_ps(dst + (j0 + j) * ldd + i0, v[j]);
      } else {
        for (int64_t j = 0; j < nj; ++j) _mm512_mask_storeu_ps(dst + (j0 + j) * ldd + i0, mi, v[j]);
      }
    }
  }
}

// NR weight rows x 16*NC activation columns: per k, NC vector loads of the transposed
// activations and NR broadcast weights for NR*NC FMAs. Per output the arithmetic is that of
// micro32 (acc = w*x + acc in k order, then y_old + acc), so both forms give the same bits.
template <int NR, int NC>
LOOM_AVX512 void micro_xt(const float* w, int64_t ldw, int64_t kc, const float* xt, int64_t ldxt,
                          float* yt, int64_t ldyt, bool accumulate) {
  __m512 acc[NR][NC];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 4
    for (int h = 0; h < NC; ++h) acc[r][h] = _mm512_setzero_ps();
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    __m512 xv[NC];
#pragma GCC unroll 4
    for (int h = 0; h < NC; ++h) xv[h] = _mm512_load_ps(xt + kk * ldxt + 16 * h);
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const __m512 wb = _mm512_set1_ps(w[r * ldw + kk]);
#pragma GCC unroll 4
      for (int h = 0; h < NC; ++h) acc[r][h] = _mm512_fmadd_ps(xv[h], wb, acc[r][h]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 4
    for (int h = 0; h < NC; ++h) {
      float* p = yt + r * ldyt + 16 * h;
      _mm512_store_ps(p, accumulate ? _mm512_add_ps(_mm512_load_ps(p), acc[r][h]) : acc[r][h]);
    }
  }
}

using MicroXtFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t,
                           bool);
template <int NC, size_t... I>
constexpr std::array<MicroXtFn, sizeof...(I)> micro_xt_table(std::index_sequence<I...>) {
  return {&micro_xt<static_cast<int>(I) + 1, NC>...};
}
constexpr auto kMicroXt2 = micro_xt_table<2>(std::make_index_sequence<kXtRows>());
constexpr auto kMicroXt1 = micro_xt_table<1>(std::make_index_sequence<kXtRows>());

LOOM_AVX512 void gemm_xt_avx512(const float* w, int64_t ldw, int rows, int64_t kc, const float* xt,
                                int64_t ldxt, int64_t n, float* yt, int64_t ldyt, bool accumulate) {
  int64_t c = 0;
  for (; c + 32 <= n; c += 32)
    kMicroXt2[rows - 1](w, ldw, kc, xt + c, ldxt, yt + c, ldyt, accumulate);
  if (c < n) kMicroXt1[rows - 1](w, ldw, kc, xt + c, ldxt, yt + c, ldyt, accumulate);
}

#endif

}  // namespace

void pack_panel32(DType type, const void* src, int64_t ld, int rows, int64_t kc, float* wt) {
  LOOM_ASSERT(type == DType::kF32 || type == DType::kF16 || type == DType::kBF16);
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) {
    switch (type) {
      case DType::kF16:
        return pack_panel32_avx512<x86::F16Loader>(src, ld, rows, kc, wt);
      case DType::kBF16:
        return pack_panel32_avx512<x86::BF16Loader>(src, ld, rows, kc, wt);
      default:
        return pack_panel32_avx512<x86::F32Loader>(src, ld, rows, kc, wt);
    }
  }
#endif
  pack_panel32_scalar(type, src, ld, rows, kc, wt);
}

bool gemv_panel32_supported() {
#ifdef LOOM_HAVE_X86_KERNELS
  return use_avx512();
#else
  return false;
#endif
}

void gemv_panel32(DType type, const void* src, int64_t ld, int rows, int64_t k, int64_t panel_k,
                  const float* x, int64_t ldx, int n, float* y, int64_t ldy,
                  int64_t prefetch_rows) {
  LOOM_ASSERT(rows >= 1 && rows <= kPanel32 && n >= 1 && n <= kGemvRows);
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) {
    switch (type) {
      case DType::kF16:
        return gemv32_rows<x86::F16Loader>(src, ld, rows, k, panel_k, x, ldx, n, y, ldy,
                                           prefetch_rows);
      case DType::kBF16:
        return gemv32_rows<x86::BF16Loader>(src, ld, rows, k, panel_k, x, ldx, n, y, ldy,
                                            prefetch_rows);
      case DType::kF32:
        return gemv32_rows<x86::F32Loader>(src, ld, rows, k, panel_k, x, ldx, n, y, ldy,
                                           prefetch_rows);
      default:
        break;
    }
  }
#endif
  LOOM_ASSERT(false && "gemv_panel32: no kernel for this type on this CPU");
}

void transpose_f32(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                   int64_t ldd) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return transpose_avx512(src, lds, rows, cols, dst, ldd);
  if (use_avx2()) return avx2::transpose(src, lds, rows, cols, dst, ldd);
#endif
  transpose_scalar(src, lds, rows, cols, dst, ldd);
}

void gemm_xt(const float* w, int64_t ldw, int rows, int64_t kc, const float* xt, int64_t ldxt,
             int64_t n, float* yt, int64_t ldyt, bool accumulate) {
  LOOM_ASSERT(rows >= 1 && rows <= kXtRows && n % 16 == 0);
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return gemm_xt_avx512(w, ldw, rows, kc, xt, ldxt, n, yt, ldyt, accumulate);
  if (use_avx2()) return avx2::gemm_xt(w, ldw, rows, kc, xt, ldxt, n, yt, ldyt, accumulate);
#endif
  gemm_xt_scalar(w, ldw, rows, kc, xt, ldxt, n, yt, ldyt, accumulate);
}

void gemm_panel32(const float* wt, int64_t kc, const float* x, int64_t ldx, int64_t n, float* y,
                  int64_t ldy, int rows, bool accumulate, const PanelPrefetch& next) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return gemm_panel32_avx512(wt, kc, x, ldx, n, y, ldy, rows, accumulate, next);
#endif
  gemm_panel32_scalar(wt, kc, x, ldx, n, y, ldy, rows, accumulate);
}

}  // namespace loom::cpu::kernels
