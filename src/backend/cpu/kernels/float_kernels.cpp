// Float-family weights (F32, F16, BF16): the decode dot products (weights converted exactly to
// float32 and FMA'd against the float activations) and the dense float helpers of attention and
// norms. Their prefill is gemm_f32.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "core/error.h"
#include "quant/half.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

namespace {

// 16 partial sums: the compiler vectorises the scalar path without -ffast-math.
template <typename Load>
float dot_generic(const Load& w, const float* x, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += w(i + j) * x[i + j];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += w(i) * x[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

}  // namespace

float scalar::dot_f32w(const void* w, const float* x, int64_t k) {
  const auto* f = static_cast<const float*>(w);
  return dot_generic([f](int64_t i) { return f[i]; }, x, k);
}
float scalar::dot_f16(const void* w, const float* x, int64_t k) {
  return dot_generic([w](int64_t i) { return fp16_to_fp32(half_bits_at(w, i)); }, x, k);
}
float scalar::dot_bf16(const void* w, const float* x, int64_t k) {
  return dot_generic([w](int64_t i) { return bf16_to_fp32(half_bits_at(w, i)); }, x, k);
}

#ifdef LOOM_HAVE_X86_KERNELS
namespace {

using x86::BF16Loader;
using x86::F16Loader;
using x86::F32Loader;
using x86::tail_mask;

// 4 KiB ahead of the weight stream (see packed.cpp's kPrefetchBytes): decode reads
// consecutive rows, so this runs on into the next row.
template <typename L>
LOOM_AVX512 inline void prefetch_ahead(const void* w, int64_t i) {
  if constexpr (L::kPrefetch) {
    const char* p = static_cast<const char*>(w) + i * L::kBytes + 4096;
#pragma GCC unroll 4
    for (int l = 0; l < L::kBytes; ++l) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
  }
}

// Four independent accumulators hide the FMA latency; decode is memory-bound, so the loop
// only has to keep up with the loads.
template <typename L>
LOOM_AVX512 float dot_avx512(const void* w, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  const __mmask16 all = 0xFFFF;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    prefetch_ahead<L>(w, i);
    a0 = _mm512_fmadd_ps(L::load(w, i, all), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(L::load(w, i + 16, all), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(L::load(w, i + 32, all), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(L::load(w, i + 48, all), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    a0 = _mm512_fmadd_ps(L::load(w, i, m), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return x86::hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// dot_avx512 for R activation rows at once: per row the same FMAs in the same order (four
// accumulators over 64-wide steps, then the masked tail into the first, the same reduction),
// so each result is bit-identical to dot_avx512's; each weight vector is loaded and converted
// once for the R rows.
template <class L, int R>
LOOM_AVX512 void dot_rows_group(const void* w, const float* const* x, int64_t n, float* out) {
  __m512 a[R][4];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    a[r][0] = a[r][1] = a[r][2] = a[r][3] = _mm512_setzero_ps();
  }
  const __mmask16 all = 0xFFFF;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    prefetch_ahead<L>(w, i);
    const __m512 w0 = L::load(w, i, all), w1 = L::load(w, i + 16, all),
                 w2 = L::load(w, i + 32, all), w3 = L::load(w, i + 48, all);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      a[r][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[r] + i), a[r][0]);
      a[r][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[r] + i + 16), a[r][1]);
      a[r][2] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(x[r] + i + 32), a[r][2]);
      a[r][3] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(x[r] + i + 48), a[r][3]);
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 wv = L::load(w, i, m);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      a[r][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[r] + i), a[r][0]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    out[r] =
        x86::hsum(_mm512_add_ps(_mm512_add_ps(a[r][0], a[r][1]), _mm512_add_ps(a[r][2], a[r][3])));
  }
}

template <class L>
LOOM_AVX512 void dot_rows_avx512(const void* w, const float* const* x, int rows, int64_t n,
                                 float* out) {
  int r = 0;
  for (; r + 4 <= rows; r += 4) dot_rows_group<L, 4>(w, x + r, n, out + r);
  switch (rows - r) {
    case 3:
      dot_rows_group<L, 3>(w, x + r, n, out + r);
      break;
    case 2:
      dot_rows_group<L, 2>(w, x + r, n, out + r);
      break;
    case 1:
      dot_rows_group<L, 1>(w, x + r, n, out + r);
      break;
    default:
      break;
  }
}

// e^x for 16 lanes: x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so r is exact to a
// few ulp), e^r by its Taylor series to r^7 (truncation below 1e-8 relative), times 2^n by
// vscalefps (which also gives 0 and inf past the float range). Within 2 ulp of expf; NaN
// stays NaN (the clamps keep the NaN operand).
LOOM_AVX512 inline __m512 exp_avx512(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
  x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

LOOM_AVX512 void silu_mul_avx512(const float* g, const float* u, float* o, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), gv));
    const __m512 s = _mm512_div_ps(gv, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(o + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
  }
}

LOOM_AVX512 float exp_shift_sum_avx512(float* x, int64_t n, float shift) {
  __m512 sum = _mm512_setzero_ps();
  const __m512 sv = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sv));
    _mm512_mask_storeu_ps(x + i, m, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(m, e));
  }
  return _mm512_reduce_add_ps(sum);
}

LOOM_AVX512 void axpy_avx512(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(
        y + i, m,
        _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

LOOM_AVX512 float sum_squares_avx512(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    a0 = _mm512_fmadd_ps(v0, v0, a0);
    a1 = _mm512_fmadd_ps(v1, v1, a1);
  }
  for (; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
    a0 = _mm512_fmadd_ps(v, v, a0);
  }
  return x86::hsum(_mm512_add_ps(a0, a1));
}

}  // namespace

LOOM_AVX512 float avx512::dot_f32w(const void* w, const float* x, int64_t k) {
  return dot_avx512<F32Loader>(w, x, k);
}
LOOM_AVX512 float avx512::dot_f16(const void* w, const float* x, int64_t k) {
  return dot_avx512<F16Loader>(w, x, k);
}
LOOM_AVX512 void avx512::dot_rows_f32w(const void* w, const float* const* x, int rows, int64_t k,
                                       float* out) {
  dot_rows_avx512<F32Loader>(w, x, rows, k, out);
}
LOOM_AVX512 void avx512::dot_rows_f16(const void* w, const float* const* x, int rows, int64_t k,
                                      float* out) {
  dot_rows_avx512<F16Loader>(w, x, rows, k, out);
}
LOOM_AVX512 void avx512::dot_rows_bf16(const void* w, const float* const* x, int rows, int64_t k,
                                       float* out) {
  dot_rows_avx512<BF16Loader>(w, x, rows, k, out);
}
LOOM_AVX512 float avx512::dot_bf16(const void* w, const float* x, int64_t k) {
  return dot_avx512<BF16Loader>(w, x, k);
}
LOOM_AVX512 void avx512::dequant_f16(const void* w, float* y, int64_t k) {
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = tail_mask(k - i);
    _mm512_mask_storeu_ps(y + i, m, F16Loader::load(w, i, m));
  }
}
LOOM_AVX512 void avx512::dequant_bf16(const void* w, float* y, int64_t k) {
  for (int64_t i = 0; i < k; i += 16) {
    const __mmask16 m = tail_mask(k - i);
    _mm512_mask_storeu_ps(y + i, m, BF16Loader::load(w, i, m));
  }
}
#else
void avx512::dequant_f16(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kF16, w, y, k);
}
void avx512::dequant_bf16(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kBF16, w, y, k);
}
float avx512::dot_f32w(const void* w, const float* x, int64_t k) {
  return scalar::dot_f32w(w, x, k);
}
float avx512::dot_f16(const void* w, const float* x, int64_t k) {
  return scalar::dot_f16(w, x, k);
}
float avx512::dot_bf16(const void* w, const float* x, int64_t k) {
  return scalar::dot_bf16(w, x, k);
}
void avx512::dot_rows_f32w(const void* w, const float* const* x, int rows, int64_t k, float* out) {
  for (int r = 0; r < rows; ++r) out[r] = scalar::dot_f32w(w, x[r], k);
}
void avx512::dot_rows_f16(const void* w, const float* const* x, int rows, int64_t k, float* out) {
  for (int r = 0; r < rows; ++r) out[r] = scalar::dot_f16(w, x[r], k);
}
void avx512::dot_rows_bf16(const void* w, const float* const* x, int rows, int64_t k, float* out) {
  for (int r = 0; r < rows; ++r) out[r] = scalar::dot_bf16(w, x[r], k);
}
#endif

void silu_mul(const float* g, const float* u, float* o, int64_t n) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return silu_mul_avx512(g, u, o, n);
#endif
  for (int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

float exp_shift_sum(float* x, int64_t n, float shift) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return exp_shift_sum_avx512(x, n, shift);
#endif
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - shift);
  return sum;
}

float dot_f32(const float* a, const float* b, int64_t n) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return avx512::dot_f32w(a, b, n);
#endif
  return scalar::dot_f32w(a, b, n);
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) {
    axpy_avx512(a, x, y, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

float sum_squares_f32(const float* x, int64_t n) {
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) return sum_squares_avx512(x, n);
#endif
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j] * x[i + j];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += x[i] * x[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

}  // namespace loom::cpu::kernels
