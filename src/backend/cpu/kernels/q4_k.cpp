// Q4_K weights (ggml's block_q4_K: 256 elements in 8 sub-blocks of 32, x = d * sc * q - dmin * m
// with 6-bit sc, m; chunk c of 64 elements uses qs[32c .. 32c+31], low nibbles for sub-block
// 2c, high nibbles for 2c + 1) against 8-bit activations in blocks of 32: sub-block j meets
// activation block j exactly, so dot = sum_j d*sc_j*da_j*sum(q*qa) - dmin*m_j*(da_j*sum(qa)).
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

using quant_detail::BlockQ4_K;
using quant_detail::load_half;
using quant_detail::unpack_scale_min_k4;

float scalar::dot_q4_k(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_K*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < k / 256; ++b) {
    const float d = load_half(blk[b].d), dmin = load_half(blk[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, blk[b].scales, &sc, &m);
      const uint8_t* q = blk[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      const int64_t ab = b * 8 + j;
      const int8_t* q8 = a.qs + ab * 32;
      int sum = 0;
      for (int l = 0; l < 32; ++l) sum += ((q[l] >> shift) & 0xF) * q8[l];
      acc += d * static_cast<float>(sc) * a.d[ab] * static_cast<float>(sum) -
             dmin * static_cast<float>(m) * (a.s16[2 * ab] + a.s16[2 * ab + 1]);
    }
  }
  return acc;
}

#ifdef LOOM_HAVE_X86_KERNELS
LOOM_AVX512 float avx512::dot_q4_k(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_K*>(w);
  const __m256i mask = _mm256_set1_epi8(0x0F);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < k / 256; ++b) {
    const float d = x86::half_to_float(blk[b].d), dmin = x86::half_to_float(blk[b].dmin);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) unpack_scale_min_k4(j, blk[b].scales, &sc[j], &m[j]);
    const int8_t* q8 = a.qs + b * 256;
    const float* da = a.d + b * 8;
    const float* s16 = a.s16 + b * 16;
    float msum = 0.0f;
    for (int c = 0; c < 4; ++c) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs + 32 * c));
      const __m256i lo = _mm256_and_si256(q, mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
      const __m256i p0 =
          _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo,
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 64 * c)));
      const __m256i p1 = _mm256_dpbusd_epi32(
          _mm256_setzero_si256(), hi,
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 64 * c + 32)));
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

// Bit-exact with dequantize_row: (d * sc) * q - dmin * m, a product then a difference.
LOOM_AVX512 void avx512::dequant_q4_k(const void* w, float* y, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_K*>(w);
  for (int64_t b = 0; b < k / 256; ++b) {
    const float d = x86::half_to_float(blk[b].d), dmin = x86::half_to_float(blk[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      unpack_scale_min_k4(j, blk[b].scales, &sc, &m);
      const __m512 d1 = _mm512_set1_ps(d * static_cast<float>(sc));
      const __m512 m1 = _mm512_set1_ps(dmin * static_cast<float>(m));
      const __m256i q =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs + 32 * (j / 2)));
      const __m256i n =
          _mm256_and_si256(j % 2 == 0 ? q : _mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0F));
      for (int h = 0; h < 2; ++h) {
        const __m128i n16 = h == 0 ? _mm256_castsi256_si128(n) : _mm256_extracti128_si256(n, 1);
        _mm512_storeu_ps(
            y + b * 256 + 32 * j + 16 * h,
            _mm512_sub_ps(_mm512_mul_ps(d1, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(n16))), m1));
      }
    }
  }
}
#else
float avx512::dot_q4_k(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q4_k(w, a, k);
}
void avx512::dequant_q4_k(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ4_K, w, y, k);
}
#endif

}  // namespace loom::cpu::kernels
