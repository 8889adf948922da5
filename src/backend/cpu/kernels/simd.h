// Internal to the kernels: the target attribute of the AVX-512 paths and small helpers.
// Functions marked LOOM_AVX512 are compiled for AVX-512F/BW/VL/VNNI + FMA + F16C whatever the
// build's -march, and are only called after use_avx512() said the CPU has those features.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOOM_HAVE_X86_KERNELS 1
#include <immintrin.h>

#include <cstdint>

// GCC 12's AVX-512 headers build "undefined" vectors by self-initialisation
// (_mm512_undefined_pd: `__m512d __Y = __Y;`), which -Wuninitialized reports at every inlined
// extract/reduce in the files that include this header. Only those files see this pragma.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define LOOM_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi2")))
// The AVX2 tier's target (avx2.cpp). Helpers marked with it inline into both tiers' kernels
// (the AVX-512 target includes every feature it names).
#define LOOM_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))

namespace loom::cpu::kernels::x86 {

LOOM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

LOOM_AVX512 inline float hsum(__m512 v) {
  return hsum(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

// Signed int8 dot in 32-bit lanes: vpdpbusd multiplies unsigned by signed bytes, so the sign
// of `w` moves onto `a` (the trick of llama.cpp's AVX2 vec_dot, exact for w > -128).
LOOM_AVX512 inline __m256i dot_i8(__m256i acc, __m256i w, __m256i a) {
  return _mm256_dpbusd_epi32(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
}

LOOM_AVX2 inline float half_to_float(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// 16 x 16 transpose of floats: in[i] is row i; out[j] is column j.
LOOM_AVX512 __attribute__((always_inline)) inline void transpose16(__m512* v) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[4i + j], 128-bit lane L: rows 4i..4i+3 of column 4L + j.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    const __m512 b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
    const __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
    v[j] = _mm512_shuffle_f32x4(a, c, 0x88);
    v[8 + j] = _mm512_shuffle_f32x4(a, c, 0xDD);
    v[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    v[12 + j] = _mm512_shuffle_f32x4(b, d, 0xDD);
  }
}

LOOM_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// Q4_0: the 32 nibbles of a block as signed bytes (q - 8), in element order.
LOOM_AVX2 inline __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0F));
  return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

// Q6_K: one half super-block's 128 values as unsigned 6-bit bytes (0..63), 32 per group g:
// q[g] byte l = ql[l + 32 * (g & 1)]'s nibble g / 2 | ((qh[l] >> 2g) & 3) << 4.
LOOM_AVX2 inline void unpack_q6_k_half(const uint8_t* ql, const uint8_t* qh, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
  q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
}

// Weight loaders: 16 weights at index i as float32 (masked: lanes beyond the mask read 0).
struct F32Loader {
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 4;
  LOOM_AVX512 static __m512 load(const void* w, int64_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(w) + i);
  }
};
struct F16Loader {
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 2;
  LOOM_AVX512 static __m512 load(const void* w, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i));
  }
};
struct BF16Loader {  // bf16 is the top half of a float32: widen and shift, exact.
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 2;
  LOOM_AVX512 static __m512 load(const void* w, int64_t i, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(w) + i)),
        16));
  }
};

}  // namespace loom::cpu::kernels::x86

#endif
