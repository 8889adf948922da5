// Float-family weights (F32, F16, BF16): the decode dot products (weights converted exactly to
// float32 and FMA'd against the float activations) and the dense float helpers of attention and
// norms. Their prefill is gemm_f32.cpp.
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
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

uint16_t load_u16(const void* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, static_cast<const uint8_t*>(p) + 2 * i, 2);
  return h;
}

}  // namespace

float scalar::dot_f32w(const void* w, const float* x, int64_t k) {
  const auto* f = static_cast<const float*>(w);
  return dot_generic([f](int64_t i) { return f[i]; }, x, k);
}
float scalar::dot_f16(const void* w, const float* x, int64_t k) {
  return dot_generic([w](int64_t i) { return fp16_to_fp32(load_u16(w, i)); }, x, k);
}
float scalar::dot_bf16(const void* w, const float* x, int64_t k) {
  return dot_generic([w](int64_t i) { return bf16_to_fp32(load_u16(w, i)); }, x, k);
}

#ifdef LOOM_HAVE_X86_KERNELS
namespace {

LOOM_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
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

// Four independent accumulators hide the FMA latency; decode is memory-bound, so the loop
// only has to keep up with the loads.
template <typename L>
LOOM_AVX512 float dot_avx512(const void* w, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps();
  const __mmask16 all = 0xFFFF;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if constexpr (L::kPrefetch) {
      // 4 KiB ahead of the weight stream (see packed.cpp's kPrefetchBytes): decode reads
      // consecutive rows, so this runs on into the next row.
      const char* p = static_cast<const char*>(w) + i * L::kBytes + 4096;
#pragma GCC unroll 4
      for (int l = 0; l < L::kBytes; ++l) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
    }
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
#endif

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
