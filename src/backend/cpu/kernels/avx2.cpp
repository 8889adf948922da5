// The AVX2 tier: kernels for x86 CPUs with AVX2 + FMA + F16C but without AVX-512 (most desktop
// and laptop CPUs before 2022, AMD Zen 1-3). The hot paths of decode and prefill:
// - the per-row decode dots of Q4_0, Q8_0, Q4_K, Q6_K (8-bit activations) and F32/F16/BF16;
// - the activation quantizer those dots read;
// - the activation-major float GEMM of prefill (gemm_xt's 6 x 16 register tile);
// - F16/BF16 row conversion for the GEMM's weight panels.
// They follow the AVX-512 kernels' structure (one 256-bit block of int8 products per step, two
// accumulators), with vpdpbusd replaced by vpmaddubsw + vpmaddwd: the pair sums fit int16
// (|w| <= 127 after moving the sign, |a| <= 127: 2 * 127 * 127 < 32767), so the integer dot
// is still exact. Everything else (norms, attention, element-wise) runs the portable code,
// which -march=native vectorises for AVX2.
#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "core/error.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

#ifdef LOOM_HAVE_X86_KERNELS

namespace {

using quant_detail::BlockQ4_0;
using quant_detail::BlockQ4_K;
using quant_detail::BlockQ6_K;
using quant_detail::BlockQ8_0;
using quant_detail::unpack_scale_min_k4;
using x86::unpack_q4_0;
using x86::unpack_q6_k_half;

// Unsigned bytes u times signed bytes s, summed in groups of 4 into 8 int32 lanes (what
// vpdpbusd does, for |u * s| pair sums within int16).
LOOM_AVX2 inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// Signed bytes w times signed bytes a: the sign of w moves onto a.
LOOM_AVX2 inline __m256i dot_s8s8(__m256i w, __m256i a) {
  return dot_u8s8(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
}

LOOM_AVX2 inline int32_t hsum_i(__m256i s) {
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
  return _mm_cvtsi128_si32(t);
}

LOOM_AVX2 inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Float weight loaders, 8 at a time.
struct F32L {
  static constexpr DType kType = DType::kF32;
  static constexpr int kBytes = 4;
  LOOM_AVX2 static __m256 load(const void* w, int64_t i) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  }
};
struct F16L {
  static constexpr DType kType = DType::kF16;
  static constexpr int kBytes = 2;
  LOOM_AVX2 static __m256 load(const void* w, int64_t i) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i)));
  }
};
struct BF16L {
  static constexpr DType kType = DType::kBF16;
  static constexpr int kBytes = 2;
  LOOM_AVX2 static __m256 load(const void* w, int64_t i) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i))),
        16));
  }
};

template <typename L>
LOOM_AVX2 float dot_float(const void* w, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(static_cast<const char*>(w) + i * L::kBytes + 4096, _MM_HINT_T0);
    a0 = _mm256_fmadd_ps(L::load(w, i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(L::load(w, i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(L::load(w, i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(L::load(w, i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(L::load(w, i), _mm256_loadu_ps(x + i), a0);
  float s = x86::hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  if (i < n) {  // the tail through the exact scalar conversion
    float tail[8];
    dequantize_row(L::kType, static_cast<const uint8_t*>(w) + i * L::kBytes, tail, n - i);
    for (int64_t j = 0; j < n - i; ++j) s += tail[j] * x[i + j];
  }
  return s;
}

template <typename L>
LOOM_AVX2 void convert_rows(const void* w, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) _mm256_storeu_ps(y + i, L::load(w, i));
  if (i < k) {
    dequantize_row(L::kType, static_cast<const uint8_t*>(w) + i * L::kBytes, y + i, k - i);
  }
}

// NR weight rows x 8*NC activation columns of the activation-major GEMM (see gemm_xt).
template <int NR, int NC>
LOOM_AVX2 void micro_xt(const float* w, int64_t ldw, int64_t kc, const float* xt, int64_t ldxt,
                        float* yt, int64_t ldyt, bool accumulate) {
  __m256 acc[NR][NC];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 2
    for (int h = 0; h < NC; ++h) acc[r][h] = _mm256_setzero_ps();
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    __m256 xv[NC];
#pragma GCC unroll 2
    for (int h = 0; h < NC; ++h) xv[h] = _mm256_load_ps(xt + kk * ldxt + 8 * h);
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      const __m256 wb = _mm256_broadcast_ss(w + r * ldw + kk);
#pragma GCC unroll 2
      for (int h = 0; h < NC; ++h) acc[r][h] = _mm256_fmadd_ps(xv[h], wb, acc[r][h]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
#pragma GCC unroll 2
    for (int h = 0; h < NC; ++h) {
      float* p = yt + r * ldyt + 8 * h;
      _mm256_store_ps(p, accumulate ? _mm256_add_ps(_mm256_load_ps(p), acc[r][h]) : acc[r][h]);
    }
  }
}

constexpr int kRows2 = 6;  // 6 x 2 accumulators + 2 activation vectors + 1 broadcast of 16 ymm
using MicroFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t,
                         bool);
template <size_t... I>
constexpr std::array<MicroFn, sizeof...(I)> micro_table(std::index_sequence<I...>) {
  return {&micro_xt<static_cast<int>(I) + 1, 2>...};
}
constexpr auto kMicro = micro_table(std::make_index_sequence<kRows2>());

}  // namespace

LOOM_AVX2 float avx2::dot_q4_0(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_0*>(w);
  const int64_t nb = k / 32;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(blk + b) + 4096, _MM_HINT_T0);
    const __m256i d0 = dot_s8s8(unpack_q4_0(blk[b].qs), load256(a.qs + b * 32));
    const __m256i d1 = dot_s8s8(unpack_q4_0(blk[b + 1].qs), load256(a.qs + b * 32 + 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1),
                           _mm256_set1_ps(x86::half_to_float(blk[b + 1].d) * a.d[b + 1]), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i d0 = dot_s8s8(unpack_q4_0(blk[b].qs), load256(a.qs + b * 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1));
}

LOOM_AVX2 float avx2::dot_q8_0(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ8_0*>(w);
  const int64_t nb = k / 32;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(blk + b) + 4096, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(blk + b) + 4096 + 64, _MM_HINT_T0);
    const __m256i d0 = dot_s8s8(load256(blk[b].qs), load256(a.qs + b * 32));
    const __m256i d1 = dot_s8s8(load256(blk[b + 1].qs), load256(a.qs + b * 32 + 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1),
                           _mm256_set1_ps(x86::half_to_float(blk[b + 1].d) * a.d[b + 1]), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i d0 = dot_s8s8(load256(blk[b].qs), load256(a.qs + b * 32));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1));
}

LOOM_AVX2 float avx2::dot_q4_k(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_K*>(w);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < k / 256; ++b) {
    _mm_prefetch(reinterpret_cast<const char*>(blk + b) + 4096, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(blk + b) + 4096 + 64, _MM_HINT_T0);
    const float d = x86::half_to_float(blk[b].d), dmin = x86::half_to_float(blk[b].dmin);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) unpack_scale_min_k4(j, blk[b].scales, &sc[j], &m[j]);
    const int8_t* q8 = a.qs + b * 256;
    const float* da = a.d + b * 8;
    const float* s16 = a.s16 + b * 16;
    float msum = 0.0f;
    for (int c = 0; c < 4; ++c) {
      const __m256i q = load256(blk[b].qs + 32 * c);
      const __m256i p0 = dot_u8s8(_mm256_and_si256(q, mask), load256(q8 + 64 * c));
      const __m256i p1 =
          dot_u8s8(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), load256(q8 + 64 * c + 32));
      acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0),
                             _mm256_set1_ps(d * static_cast<float>(sc[2 * c]) * da[2 * c]), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1),
                             _mm256_set1_ps(d * static_cast<float>(sc[2 * c + 1]) * da[2 * c + 1]),
                             acc1);
      msum += static_cast<float>(m[2 * c]) * (s16[4 * c] + s16[4 * c + 1]) +
              static_cast<float>(m[2 * c + 1]) * (s16[4 * c + 2] + s16[4 * c + 3]);
    }
    mins += dmin * msum;
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1)) - mins;
}

LOOM_AVX2 float avx2::dot_q6_k(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ6_K*>(w);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 offs0 = _mm256_setzero_ps(), offs1 = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / 256; ++b) {
    for (int l = 0; l < 4; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(blk + b) + 4096 + 64 * l, _MM_HINT_T0);
    const __m256 d = _mm256_set1_ps(x86::half_to_float(blk[b].d));
    // d * sc for the 16 sub-blocks, 8 per half.
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b].scales));
    const __m256 scf[2] = {
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8)), d),
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8))), d)};
    offs0 = _mm256_fmadd_ps(scf[0], _mm256_loadu_ps(a.s16 + b * 16), offs0);
    offs1 = _mm256_fmadd_ps(scf[1], _mm256_loadu_ps(a.s16 + b * 16 + 8), offs1);
    for (int h = 0; h < 2; ++h) {
      __m256i q[4];
      x86::unpack_q6_k_half(blk[b].ql + 64 * h, blk[b].qh + 32 * h, q);
      for (int g = 0; g < 4; ++g) {
        const int64_t ab = b * 8 + h * 4 + g;
        const __m256i p = dot_u8s8(q[g], load256(a.qs + ab * 32));
        // Lanes 0..3 hold sub-block 2g, lanes 4..7 sub-block 2g + 1.
        const int s = 2 * g;
        const __m256 scale =
            _mm256_mul_ps(_mm256_permutevar8x32_ps(
                              scf[h], _mm256_set_epi32(s + 1, s + 1, s + 1, s + 1, s, s, s, s)),
                          _mm256_set1_ps(a.d[ab]));
        if (g % 2 == 0) {
          acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc0);
        } else {
          acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc1);
        }
      }
    }
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1)) - 32.0f * x86::hsum(_mm256_add_ps(offs0, offs1));
}

LOOM_AVX2 float avx2::dot_f32w(const void* w, const float* x, int64_t k) {
  return dot_float<F32L>(w, x, k);
}
LOOM_AVX2 float avx2::dot_f16(const void* w, const float* x, int64_t k) {
  return dot_float<F16L>(w, x, k);
}
LOOM_AVX2 float avx2::dot_bf16(const void* w, const float* x, int64_t k) {
  return dot_float<BF16L>(w, x, k);
}
LOOM_AVX2 void avx2::dequant_f16(const void* w, float* y, int64_t k) {
  convert_rows<F16L>(w, y, k);
}
LOOM_AVX2 void avx2::dequant_bf16(const void* w, float* y, int64_t k) {
  convert_rows<BF16L>(w, y, k);
}

// Bit-exact with dequantize_row: (q - 8) * d and q * d, one rounding each.
LOOM_AVX2 void avx2::dequant_q4_0(const void* w, float* y, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_0*>(w);
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m256i q = unpack_q4_0(blk[b].qs);
    const __m256 d = _mm256_set1_ps(x86::half_to_float(blk[b].d));
    for (int i = 0; i < 4; ++i) {
      const __m128i q8 = i < 2 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
      const __m128i part = i % 2 == 0 ? q8 : _mm_srli_si128(q8, 8);
      _mm256_storeu_ps(y + b * 32 + 8 * i,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part)), d));
    }
  }
}
LOOM_AVX2 void avx2::dequant_q8_0(const void* w, float* y, int64_t k) {
  const auto* blk = static_cast<const BlockQ8_0*>(w);
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m256 d = _mm256_set1_ps(x86::half_to_float(blk[b].d));
    for (int i = 0; i < 4; ++i) {
      const __m128i part = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk[b].qs + 8 * i));
      _mm256_storeu_ps(y + b * 32 + 8 * i,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part)), d));
    }
  }
}

// Same values as the scalar quantizer: round to nearest even of x * (127 / amax).
LOOM_AVX2 void avx2::quantize_row(const float* x, int64_t k, int8_t* qs, float* d, float* s16,
                                  int32_t* isum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < k / 32; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    int nonfinite = 0;
    const __m256 big = _mm256_set1_ps(std::numeric_limits<float>::max());
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + b * 32 + 8 * i);
      const __m256 a = _mm256_and_ps(v[i], abs_mask);
      nonfinite |= _mm256_movemask_ps(_mm256_cmp_ps(a, big, _CMP_NLE_UQ));
      amax = _mm256_max_ps(amax, a);
    }
    if (nonfinite != 0) {
      nonfinite_block(b, qs, d, s16, isum);
      continue;
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float am = _mm_cvtss_f32(m);
    const float db = am / 127.0f;
    const float id = db != 0.0f ? 127.0f / am : 0.0f;
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(id)));
    // int32 -> int8 in element order: the packs interleave 128-bit lanes, the permute undoes it.
    const __m256i p16 = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16, p16b),
                                                   _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs + b * 32), p8);
    const __m256i s01 = _mm256_add_epi32(q[0], q[1]), s23 = _mm256_add_epi32(q[2], q[3]);
    const int32_t sum0 = hsum_i(s01), sum1 = hsum_i(s23);
    d[b] = db;
    s16[2 * b] = db * static_cast<float>(sum0);
    s16[2 * b + 1] = db * static_cast<float>(sum1);
    isum[b] = sum0 + sum1;
  }
}

// 8 x 8 blocks through registers (unpack, shuffle, then swap 128-bit halves); edges scalar.
LOOM_AVX2 void avx2::transpose(const float* src, int64_t lds, int64_t rows, int64_t cols,
                               float* dst, int64_t ldd) {
  const int64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int64_t i0 = 0; i0 < rows8; i0 += 8) {
    for (int64_t j0 = 0; j0 < cols8; j0 += 8) {
      __m256 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (i0 + i) * lds + j0);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
      }
      // u[j] (rows 0-3) and u[4 + j] (rows 4-7) hold columns j and 4 + j in their halves.
      for (int j = 0; j < 4; ++j) {
        _mm256_storeu_ps(dst + (j0 + j) * ldd + i0, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));
        _mm256_storeu_ps(dst + (j0 + 4 + j) * ldd + i0,
                         _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
      }
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = i < rows8 ? cols8 : 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
}

LOOM_AVX2 void avx2::gemm_xt(const float* w, int64_t ldw, int rows, int64_t kc, const float* xt,
                             int64_t ldxt, int64_t n, float* yt, int64_t ldyt, bool accumulate) {
  LOOM_ASSERT(n % 16 == 0);
  for (int64_t c = 0; c < n; c += 16) {
    for (int r = 0; r < rows; r += kRows2) {
      const int nr = std::min(kRows2, rows - r);
      kMicro[nr - 1](w + r * ldw, ldw, kc, xt + c, ldxt, yt + r * ldyt + c, ldyt, accumulate);
    }
  }
}

#else  // not x86: the tier is never selected; these keep the link whole.

float avx2::dot_q4_0(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q4_0(w, a, k);
}
float avx2::dot_q8_0(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q8_0(w, a, k);
}
float avx2::dot_q4_k(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q4_k(w, a, k);
}
float avx2::dot_q6_k(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q6_k(w, a, k);
}
float avx2::dot_f32w(const void* w, const float* x, int64_t k) {
  return scalar::dot_f32w(w, x, k);
}
float avx2::dot_f16(const void* w, const float* x, int64_t k) {
  return scalar::dot_f16(w, x, k);
}
float avx2::dot_bf16(const void* w, const float* x, int64_t k) {
  return scalar::dot_bf16(w, x, k);
}
void avx2::dequant_f16(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kF16, w, y, k);
}
void avx2::dequant_bf16(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kBF16, w, y, k);
}
void avx2::dequant_q4_0(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ4_0, w, y, k);
}
void avx2::dequant_q8_0(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ8_0, w, y, k);
}
void avx2::quantize_row(const float*, int64_t, int8_t*, float*, float*, int32_t*) {
  LOOM_ASSERT(false);
}
void avx2::transpose(const float*, int64_t, int64_t, int64_t, float*, int64_t) {
  LOOM_ASSERT(false);
}
void avx2::gemm_xt(const float*, int64_t, int, int64_t, const float*, int64_t, int64_t, float*,
                   int64_t, bool) {
  LOOM_ASSERT(false);
}

#endif

}  // namespace loom::cpu::kernels
