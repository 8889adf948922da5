// Q6_K weights (ggml's block_q6_K: 256 elements, 16 sub-blocks of 16 with int8 scales,
// x = d * sc * (q - 32), q = 4 low bits in ql + 2 high bits in qh; half h of 128 elements uses
// ql[64h ..], qh[32h ..]: element 128h + 32g + l takes ql[64h + l + 32*(g&1)] (low nibble for
// g < 2, high for g >= 2) and bits 2g..2g+1 of qh[32h + l]; sub-block 8h + 2g + l/16) against
// 8-bit activations in blocks of 32 (two sub-blocks per activation block).
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

using quant_detail::BlockQ6_K;
using quant_detail::load_half;

float scalar::dot_q6_k(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ6_K*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < k / 256; ++b) {
    const float d = load_half(blk[b].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk[b].ql + 64 * h;
      const uint8_t* qh = blk[b].qh + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const int64_t ab = b * 8 + h * 4 + g;
        const int8_t* q8 = a.qs + ab * 32;
        int sums[2] = {0, 0};
        for (int l = 0; l < 32; ++l) {
          const uint8_t lb = ql[l + 32 * (g & 1)];
          const int low = g < 2 ? (lb & 0xF) : (lb >> 4);
          const int q = (low | (((qh[l] >> (2 * g)) & 3) << 4)) - 32;
          sums[l / 16] += q * q8[l];
        }
        const int8_t* sc = blk[b].scales + 8 * h + 2 * g;
        acc += d * a.d[ab] *
               (static_cast<float>(sc[0]) * static_cast<float>(sums[0]) +
                static_cast<float>(sc[1]) * static_cast<float>(sums[1]));
      }
    }
  }
  return acc;
}

#ifdef LOOM_HAVE_X86_KERNELS
// The unsigned 6-bit q meets the activations in vpdpbusd; the offset 32 comes off once per
// super-block as 32 * d * sum_i sc_i * (da * sum of the 16 activations of sub-block i).
LOOM_AVX512 float avx512::dot_q6_k(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ6_K*>(w);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m512 offs = _mm512_setzero_ps();
  for (int64_t b = 0; b < k / 256; ++b) {
    const float d = x86::half_to_float(blk[b].d);
    // d * sc for the 16 sub-blocks.
    const __m512 scf = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                         reinterpret_cast<const __m128i*>(blk[b].scales)))),
                                     _mm512_set1_ps(d));
    offs = _mm512_fmadd_ps(scf, _mm512_loadu_ps(a.s16 + b * 16), offs);
    for (int h = 0; h < 2; ++h) {
      const __m256 sch = h == 0 ? _mm512_castps512_ps256(scf) : _mm512_extractf32x8_ps(scf, 1);
      __m256i q[4];
      x86::unpack_q6_k_half(blk[b].ql + 64 * h, blk[b].qh + 32 * h, q);
      for (int g = 0; g < 4; ++g) {
        const int64_t ab = b * 8 + h * 4 + g;
        const __m256i p = _mm256_dpbusd_epi32(
            _mm256_setzero_si256(), q[g],
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + ab * 32)));
        // Lanes 0..3 hold sub-block 2g, lanes 4..7 sub-block 2g + 1.
        const int s = 2 * g;
        const __m256 scale = _mm256_mul_ps(
            _mm256_permutexvar_ps(_mm256_set_epi32(s + 1, s + 1, s + 1, s + 1, s, s, s, s), sch),
            _mm256_set1_ps(a.d[ab]));
        if (g % 2 == 0) {
          acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc0);
        } else {
          acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc1);
        }
      }
    }
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1)) - 32.0f * x86::hsum(offs);
}

// Bit-exact with dequantize_row: (d * sc) * (q - 32).
LOOM_AVX512 void avx512::dequant_q6_k(const void* w, float* y, int64_t k) {
  const auto* blk = static_cast<const BlockQ6_K*>(w);
  for (int64_t b = 0; b < k / 256; ++b) {
    const float d = x86::half_to_float(blk[b].d);
    for (int h = 0; h < 2; ++h) {
      __m256i q[4];
      x86::unpack_q6_k_half(blk[b].ql + 64 * h, blk[b].qh + 32 * h, q);
      for (int g = 0; g < 4; ++g) {
        const __m256i qs = _mm256_sub_epi8(q[g], _mm256_set1_epi8(32));
        for (int half = 0; half < 2; ++half) {
          const __m512 s =
              _mm512_set1_ps(d * static_cast<float>(blk[b].scales[8 * h + 2 * g + half]));
          const __m128i q16 =
              half == 0 ? _mm256_castsi256_si128(qs) : _mm256_extracti128_si256(qs, 1);
          _mm512_storeu_ps(y + b * 256 + 128 * h + 32 * g + 16 * half,
                           _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q16))));
        }
      }
    }
  }
}
#else
float avx512::dot_q6_k(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q6_k(w, a, k);
}
void avx512::dequant_q6_k(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ6_K, w, y, k);
}
#endif

}  // namespace loom::cpu::kernels
