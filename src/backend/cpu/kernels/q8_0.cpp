// Q8_0 weights (ggml's block_q8_0: f16 d, 32 int8; x = d * q) against 8-bit activations.
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

using quant_detail::BlockQ8_0;
using quant_detail::load_half;

float scalar::dot_q8_0(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ8_0*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b) {
    const int8_t* q8 = a.qs + b * 32;
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += blk[b].qs[j] * q8[j];
    acc += load_half(blk[b].d) * a.d[b] * static_cast<float>(sum);
  }
  return acc;
}

#ifdef LOOM_HAVE_X86_KERNELS
LOOM_AVX512 float avx512::dot_q8_0(const void* w, const QAct& a, int64_t k) {
  const auto* blk = static_cast<const BlockQ8_0*>(w);
  const int64_t nb = k / 32;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i d0 = x86::dot_i8(
        _mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs)),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + b * 32)));
    const __m256i d1 = x86::dot_i8(
        _mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b + 1].qs)),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + b * 32 + 32)));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1),
                           _mm256_set1_ps(x86::half_to_float(blk[b + 1].d) * a.d[b + 1]), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i d0 = x86::dot_i8(
        _mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs)),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs + b * 32)));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0),
                           _mm256_set1_ps(x86::half_to_float(blk[b].d) * a.d[b]), acc0);
  }
  return x86::hsum(_mm256_add_ps(acc0, acc1));
}

LOOM_AVX512 void avx512::dequant_q8_0(const void* w, float* y, int64_t k) {
  const auto* blk = static_cast<const BlockQ8_0*>(w);
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m512 d = _mm512_set1_ps(x86::half_to_float(blk[b].d));
    for (int h = 0; h < 2; ++h) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b].qs + 16 * h));
      _mm512_storeu_ps(y + b * 32 + 16 * h,
                       _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
    }
  }
}
#else
float avx512::dot_q8_0(const void* w, const QAct& a, int64_t k) {
  return scalar::dot_q8_0(w, a, k);
}
void avx512::dequant_q8_0(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ8_0, w, y, k);
}
#endif

}  // namespace loom::cpu::kernels
