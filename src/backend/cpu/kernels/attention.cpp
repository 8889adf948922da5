// Attention of one query row over a paged KV cache whose rows are F32, F16, BF16 or Q8_0
// (--kv-type): keys and values are read in their stored type, 16 at a time widened to float32
// in registers, never copied to a float32 buffer. Widening is exact (a half, a bfloat16 and a
// Q8_0 value q * d are all representable in float32), so for any type the arithmetic is the
// float path's over the dequantized rows: per head dot, exp_shift_sum, then the weighted sum,
// in position order. The result depends neither on the number of heads in the group nor on
// how positions split into runs (cache blocks).
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "core/error.h"
#include "quant/half.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

namespace {

// Scalar element access by type: the value dequantize_row gives.
struct ScalarF32 {
  static float at(const uint8_t* p, int64_t i) { return reinterpret_cast<const float*>(p)[i]; }
};
struct ScalarF16 {
  static float at(const uint8_t* p, int64_t i) { return fp16_to_fp32(half_bits_at(p, i)); }
};
struct ScalarBF16 {
  static float at(const uint8_t* p, int64_t i) { return bf16_to_fp32(half_bits_at(p, i)); }
};
struct ScalarQ8_0 {  // blocks of 32: fp16 scale, 32 int8
  static float at(const uint8_t* p, int64_t i) {
    const uint8_t* blk = p + (i >> 5) * 34;
    return static_cast<float>(static_cast<int8_t>(blk[2 + (i & 31)])) *
           fp16_to_fp32(half_bits_at(blk, 0));
  }
};

// As dot_f32 / axpy_f32 (16 partial sums, then the tail), with the row read through S.
template <typename S>
float dot_scalar(const float* q, const uint8_t* k, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += q[i + j] * S::at(k, i + j);
  }
  float s = 0.0f;
  for (; i < n; ++i) s += q[i] * S::at(k, i);
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

template <typename S>
void attend_scalar(const float* q, int nq, int64_t head_dim, const KvRun* runs, int n_runs,
                   int64_t stride, float scale, float softcap, float* scores, float* out) {
  int64_t n_keys = 0;
  for (int ri = 0; ri < n_runs; ++ri) n_keys += runs[ri].n;
  for (int h = 0; h < nq; ++h) {
    const float* qh = q + h * head_dim;
    float* sh = scores + h * n_keys;
    float max_s = -INFINITY;
    int64_t j = 0;
    for (int ri = 0; ri < n_runs; ++ri) {
      for (int64_t i = 0; i < runs[ri].n; ++i, ++j) {
        float sc = dot_scalar<S>(qh, runs[ri].k + i * stride, head_dim) * scale;
        if (softcap > 0.0f) sc = softcap * std::tanh(sc / softcap);
        sh[j] = sc;
        max_s = std::max(max_s, sc);
      }
    }
    const float inv = 1.0f / exp_shift_sum(sh, n_keys, max_s);
    float* o = out + h * head_dim;
    std::fill_n(o, head_dim, 0.0f);
    j = 0;
    for (int ri = 0; ri < n_runs; ++ri) {
      for (int64_t i = 0; i < runs[ri].n; ++i, ++j) {
        const float a = sh[j] * inv;
        const uint8_t* v = runs[ri].v + i * stride;
        for (int64_t c = 0; c < head_dim; ++c) o[c] += a * S::at(v, c);
      }
    }
  }
}

}  // namespace

#ifdef LOOM_HAVE_X86_KERNELS
namespace {

using x86::tail_mask;

// 16 elements from index i (a multiple of 16) of a row, widened to float32.
struct LoadF32 {
  LOOM_AVX512 static __m512 load(const uint8_t* p, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(p) + i);
  }
};
struct LoadF16 {
  LOOM_AVX512 static __m512 load(const uint8_t* p, int64_t i, __mmask16 m) {
    return x86::F16Loader::load(p, i, m);
  }
};
struct LoadBF16 {
  LOOM_AVX512 static __m512 load(const uint8_t* p, int64_t i, __mmask16 m) {
    return x86::BF16Loader::load(p, i, m);
  }
};
struct LoadQ8_0 {  // 16 lanes never straddle a 32-element block
  LOOM_AVX512 static __m512 load(const uint8_t* p, int64_t i, __mmask16 m) {
    const uint8_t* blk = p + (i >> 5) * 34;
    const __m128i q = _mm_maskz_loadu_epi8(m, blk + 2 + (i & 31));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)),
                         _mm512_set1_ps(x86::half_to_float(blk)));
  }
};

// As avx512::dot_f32w (four accumulators), with the key read through L.
template <typename L>
LOOM_AVX512 float dot_row(const float* q, const uint8_t* k, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  const __mmask16 all = 0xFFFF;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), L::load(k, i, all), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), L::load(k, i + 16, all), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 32), L::load(k, i + 32, all), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 48), L::load(k, i + 48, all), a3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), L::load(k, i, m), a0);
  }
  return x86::hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

// out[h] = sum_j p[h][j] v_j for NH heads at once (C 16-lane chunks per head in registers):
// per lane the same FMA chain over j as an axpy into a zeroed row.
template <typename L, int C, int NH>
LOOM_AVX512 void weighted_sum(const float* p, int64_t n_keys, const KvRun* runs, int n_runs,
                              int64_t stride, const float* inv, float* out, int64_t head_dim) {
  __m512 acc[NH][C];
#pragma GCC unroll 16
  for (int h = 0; h < NH; ++h) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[h][c] = _mm512_setzero_ps();
  }
  const __mmask16 all = 0xFFFF;
  int64_t j = 0;
  for (int ri = 0; ri < n_runs; ++ri) {
    const uint8_t* v = runs[ri].v;
    for (int64_t i = 0; i < runs[ri].n; ++i, ++j, v += stride) {
      __m512 vv[C];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) vv[c] = L::load(v, 16 * c, all);
#pragma GCC unroll 16
      for (int h = 0; h < NH; ++h) {
        const __m512 va = _mm512_set1_ps(p[h * n_keys + j] * inv[h]);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[h][c] = _mm512_fmadd_ps(va, vv[c], acc[h][c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int h = 0; h < NH; ++h) {
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + h * head_dim + 16 * c, acc[h][c]);
  }
}

template <typename L>
LOOM_AVX512 void axpy_row(float a, const uint8_t* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(va, L::load(x, i, m), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

template <typename L>
LOOM_AVX512 void attend_avx512(const float* q, int nq, int64_t head_dim, const KvRun* runs,
                               int n_runs, int64_t stride, float scale, float softcap,
                               float* scores, float* out) {
  int64_t n_keys = 0;
  for (int ri = 0; ri < n_runs; ++ri) n_keys += runs[ri].n;
  float max_s[64], inv[64];
  LOOM_ASSERT(nq <= 64);
  for (int h = 0; h < nq; ++h) max_s[h] = -INFINITY;
  int64_t j = 0;
  for (int ri = 0; ri < n_runs; ++ri) {
    const uint8_t* k = runs[ri].k;
    for (int64_t i = 0; i < runs[ri].n; ++i, ++j, k += stride) {
      for (int h = 0; h < nq; ++h) {
        float sc = dot_row<L>(q + h * head_dim, k, head_dim) * scale;
        if (softcap > 0.0f) sc = softcap * std::tanh(sc / softcap);
        scores[h * n_keys + j] = sc;
        max_s[h] = std::max(max_s[h], sc);
      }
    }
  }
  for (int h = 0; h < nq; ++h) {
    inv[h] = 1.0f / exp_shift_sum(scores + h * n_keys, n_keys, max_s[h]);
  }
  int h = 0;
  if (head_dim == 64) {
    for (; h + 2 <= nq; h += 2) {
      weighted_sum<L, 4, 2>(scores + h * n_keys, n_keys, runs, n_runs, stride, inv + h,
                            out + h * head_dim, head_dim);
    }
  } else if (head_dim == 128) {
    for (; h + 2 <= nq; h += 2) {
      weighted_sum<L, 8, 2>(scores + h * n_keys, n_keys, runs, n_runs, stride, inv + h,
                            out + h * head_dim, head_dim);
    }
  }
  for (; h < nq; ++h) {
    float* o = out + h * head_dim;
    std::fill_n(o, head_dim, 0.0f);
    int64_t jj = 0;
    for (int ri = 0; ri < n_runs; ++ri) {
      const uint8_t* v = runs[ri].v;
      for (int64_t i = 0; i < runs[ri].n; ++i, ++jj, v += stride)
        axpy_row<L>(scores[h * n_keys + jj] * inv[h], v, o, head_dim);
    }
  }
}

// Rows of floats to F16 / BF16, 16 at a time: the same bits as fp32_to_fp16 (vcvtps2ph rounds
// to nearest even and quiets NaNs the same way) and fp32_to_bf16 (tested).
LOOM_AVX512 void store_f16_avx512(const float* x, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(dst + i, m, h);
  }
}

LOOM_AVX512 void store_bf16_avx512(const float* x, int64_t n, uint16_t* dst) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i v = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(v, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(v, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(v, 16), _mm512_set1_epi32(0x40));
    _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
  }
}

}  // namespace
#endif

bool attention_supports(DType kv_type, int64_t head_dim) {
  switch (kv_type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return true;
    case DType::kQ8_0:
      return head_dim % 32 == 0;  // a head's row must be whole blocks
    default:
      return false;
  }
}

void attend_group(const float* q, int nq, int64_t head_dim, const KvRun* runs, int n_runs,
                  int64_t stride, DType kv_type, float scale, float softcap, float* scores,
                  float* out) {
  LOOM_ASSERT(attention_supports(kv_type, head_dim));
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) {
    switch (kv_type) {
      case DType::kF16:
        return attend_avx512<LoadF16>(q, nq, head_dim, runs, n_runs, stride, scale, softcap, scores,
                                      out);
      case DType::kBF16:
        return attend_avx512<LoadBF16>(q, nq, head_dim, runs, n_runs, stride, scale, softcap,
                                       scores, out);
      case DType::kQ8_0:
        return attend_avx512<LoadQ8_0>(q, nq, head_dim, runs, n_runs, stride, scale, softcap,
                                       scores, out);
      default:
        return attend_avx512<LoadF32>(q, nq, head_dim, runs, n_runs, stride, scale, softcap, scores,
                                      out);
    }
  }
#endif
  switch (kv_type) {
    case DType::kF16:
      return attend_scalar<ScalarF16>(q, nq, head_dim, runs, n_runs, stride, scale, softcap, scores,
                                      out);
    case DType::kBF16:
      return attend_scalar<ScalarBF16>(q, nq, head_dim, runs, n_runs, stride, scale, softcap,
                                       scores, out);
    case DType::kQ8_0:
      return attend_scalar<ScalarQ8_0>(q, nq, head_dim, runs, n_runs, stride, scale, softcap,
                                       scores, out);
    default:
      return attend_scalar<ScalarF32>(q, nq, head_dim, runs, n_runs, stride, scale, softcap, scores,
                                      out);
  }
}

void store_kv_row(const float* x, int64_t n, DType kv_type, uint8_t* dst) {
  switch (kv_type) {
    case DType::kF32:
      std::copy_n(x, n, reinterpret_cast<float*>(dst));
      return;
    case DType::kF16: {
      auto* h = reinterpret_cast<uint16_t*>(dst);
#ifdef LOOM_HAVE_X86_KERNELS
      if (use_avx512()) return store_f16_avx512(x, n, h);
#endif
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
      return;
    }
    case DType::kBF16: {
      auto* h = reinterpret_cast<uint16_t*>(dst);
#ifdef LOOM_HAVE_X86_KERNELS
      if (use_avx512()) return store_bf16_avx512(x, n, h);
#endif
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(x[i]);
      return;
    }
    default:
      quantize_row(kv_type, x, dst, n);
      return;
  }
}

}  // namespace loom::cpu::kernels
