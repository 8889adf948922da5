// Q4_0 weights (ggml's block_q4_0: f16 d, 16 bytes of nibbles; x = d * (q - 8), element j in the
// low nibble of qs[j], element j + 16 in the high nibble) against 8-bit activations.
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

using quant_detail::BlockQ4_0;
using quant_detail::load_half;

float scalar::dot_q4_0(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_0*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b) {
    const int8_t* q8 = a.qs + b * 32;
    int sum = 0;
    for (int j = 0; j < 16; ++j) {
      sum += ((blk[b].qs[j] & 0xF) - 8) * q8[j] + ((blk[b].qs[j] >> 4) - 8) * q8[j + 16];
    }
    acc += load_half(blk[b].d) * a.d[b] * static_cast<float>(sum);
  }
  return acc;
}

#ifdef LOOM_HAVE_X86_KERNELS
using x86::unpack_q4_0;

// Two blocks per iteration into two accumulators (the FMA latency would otherwise bound a
// memory-bound loop); the integer dot of a block is exact, one float FMA scales it.
LOOM_AVX512 float avx512::dot_q4_0(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_0*>(w);
  const int64_t nb = k / 32;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i d0 =
        x86::dot_i8(_mm256_setzero_si256(), unpack_q4_0(blk[b].qs),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + b * 32)));
    const __m256i d1 =
        x86::dot_i8(_mm256_setzero_si256(), unpack_q4_0(blk[b + 1].qs),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + b * 32 + 32)));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1),
                           _mm256_set1_ps(x86::half_to_float(blk[b + 1].d) * a.d[b + 1]), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i d0 =
        x86::dot_i8(_mm256_setzero_si256(), unpack_q4_0(blk[b].qs),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + b * 32)));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1));
}

// Bit-exact with dequantize_row: (q - 8) * d, one rounding.
LOOM_AVX512 void avx512::dequant_q4_0(const void* w, float* y, int64_t k) {
  const auto* blk = static_cast<const BlockQ4_0*>(w);
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m256i q = unpack_q4_0(blk[b].qs);
    const __m512 d = _mm512_set1_ps(x86::half_to_float(blk[b].d));
    _mm512_storeu_ps(
        y + b * 32,
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), d));
    _mm512_storeu_ps(
        y + b * 32 + 16,
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))), d));
  }
}
#else
float avx512::dot_q4_0(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q4_0(w, a, k);
}
void avx512::dequant_q4_0(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ4_0, w, y, k);
}
#endif

}  // namespace loom::cpu::kernels
