// Activations quantized to 8 bits in blocks of 32 for the int8 dot products (the role of
// ggml's quantize_row_q8_0 / q8_K before vec_dot): d = max|x| / 127, q = round(x / d), ties to
// even as the AVX-512 conversion does, so both paths give the same bytes.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"

namespace loom::cpu::kernels {

namespace {

constexpr int64_t align64(int64_t n) {
  return (n + 63) & ~int64_t{63};
}

struct Layout {
  int64_t d_off, s_off, i_off, i16_off, total;
};
Layout layout(int64_t k) {
  const int64_t d_off = align64(k);
  const int64_t s_off = d_off + align64(k / 32 * 4);
  const int64_t i_off = s_off + align64(k / 16 * 4);
  const int64_t i16_off = i_off + align64(k / 32 * 4);
  return {d_off, s_off, i_off, i16_off, i16_off + align64(k / 16 * 4)};
}

}  // namespace

void nonfinite_block(int64_t b, int8_t* qs, float* d, float* s16, int32_t* isum) {
  // A block holding NaN or an infinity (a model whose weights overflow): its dot products are
  // NaN, as a float path's would be, and no int conversion sees a non-finite value (UB).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::fill_n(qs + b * 32, 32, int8_t{0});
  d[b] = nan;
  s16[2 * b] = s16[2 * b + 1] = nan;
  isum[b] = 0;
}

namespace {

void quantize_scalar(const float* x, int64_t k, int8_t* qs, float* d, float* s16, int32_t* isum) {
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    bool finite = true;
    for (int i = 0; i < 32; ++i) {
      amax = std::fmax(amax, std::fabs(xb[i]));
      finite = finite && std::fabs(xb[i]) <= std::numeric_limits<float>::max();
    }
    if (!finite) {
      nonfinite_block(b, qs, d, s16, isum);
      continue;
    }
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 127.0f / amax : 0.0f;
    int sums[2] = {0, 0};
    for (int i = 0; i < 32; ++i) {
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      qs[b * 32 + i] = static_cast<int8_t>(q);
      sums[i / 16] += q;
    }
    d[b] = db;
    s16[2 * b] = db * static_cast<float>(sums[0]);
    s16[2 * b + 1] = db * static_cast<float>(sums[1]);
    isum[b] = sums[0] + sums[1];
  }
}

#ifdef LOOM_HAVE_X86_KERNELS
LOOM_AVX512 void quantize_avx512(const float* x, int64_t k, int8_t* qs, float* d, float* s16,
                                 int32_t* isum) {
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * 32);
    const __m512 v1 = _mm512_loadu_ps(x + b * 32 + 16);
    const __m512 a0 = _mm512_and_ps(v0, sign_off), a1 = _mm512_and_ps(v1, sign_off);
    // !(|x| <= FLT_MAX): NaN or infinite.
    const __m512 big = _mm512_set1_ps(std::numeric_limits<float>::max());
    if ((_mm512_cmp_ps_mask(a0, big, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(a1, big, _CMP_NLE_UQ)) !=
        0) {
      nonfinite_block(b, qs, d, s16, isum);
      continue;
    }
    const __m512 a = _mm512_max_ps(a0, a1);
    const float amax = _mm512_reduce_max_ps(a);
    const float db = amax / 127.0f;
    const float id = db != 0.0f ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * 32), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * 32 + 16), _mm512_cvtsepi32_epi8(q1));
    const int32_t sum0 = _mm512_reduce_add_epi32(q0), sum1 = _mm512_reduce_add_epi32(q1);
    d[b] = db;
    s16[2 * b] = db * static_cast<float>(sum0);
    s16[2 * b + 1] = db * static_cast<float>(sum1);
    isum[b] = sum0 + sum1;
  }
}
#endif

}  // namespace

int64_t qact_bytes(int64_t k) {
  return layout(k).total;
}

QAct quantize_act(const float* x, int64_t k, void* buf) {
  const Layout l = layout(k);
  auto* base = static_cast<uint8_t*>(buf);
  auto* qs = reinterpret_cast<int8_t*>(base);
  auto* d = reinterpret_cast<float*>(base + l.d_off);
  auto* s16 = reinterpret_cast<float*>(base + l.s_off);
  auto* isum = reinterpret_cast<int32_t*>(base + l.i_off);
  auto* isum16 = reinterpret_cast<int32_t*>(base + l.i16_off);
#ifdef LOOM_HAVE_X86_KERNELS
  if (use_avx512()) {
    quantize_avx512(x, k, qs, d, s16, isum);
  } else if (use_avx2()) {
    avx2::quantize_row(x, k, qs, d, s16, isum);
  } else {
    quantize_scalar(x, k, qs, d, s16, isum);
  }
#else
  quantize_scalar(x, k, qs, d, s16, isum);
#endif
  // Once per activation row, not once per 16 weight rows in the kernels that need them.
  for (int64_t j = 0; j < k / 16; ++j) {
    int32_t sum = 0;
    for (int i = 0; i < 16; ++i) sum += qs[16 * j + i];
    isum16[j] = sum;
  }
  return {qs, d, s16, isum, isum16};
}

}  // namespace loom::cpu::kernels
