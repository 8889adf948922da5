// CPU feature detection and the per-dtype kernel table.
#include <cstdlib>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

namespace {

bool detect_avx512() {
  if (const char* env = std::getenv("LOOM_KERNELS");
      env != nullptr && std::strcmp(env, "scalar") == 0) {
    return false;
  }
#ifdef LOOM_HAVE_X86_KERNELS
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
  // F16C is not checked: every AVX-512F processor has it, and clang 14's
  // __builtin_cpu_supports does not know the name.
#else
  return false;
#endif
}

void dequant_f16_scalar(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kF16, w, y, k);
}
void dequant_bf16_scalar(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kBF16, w, y, k);
}
void dequant_q4_0_scalar(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ4_0, w, y, k);
}
void dequant_q8_0_scalar(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ8_0, w, y, k);
}
void dequant_q4_k_scalar(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ4_K, w, y, k);
}
void dequant_q6_k_scalar(const void* w, float* y, int64_t k) {
  dequantize_row(DType::kQ6_K, w, y, k);
}

}  // namespace

bool use_avx512() {
  static const bool yes = detect_avx512();
  return yes;
}

Kernels find_kernels(DType type) {
  const bool v = use_avx512();
  switch (type) {
    case DType::kF32:
      return {nullptr, v ? avx512::dot_f32w : scalar::dot_f32w, nullptr};
    case DType::kF16:
      return {nullptr, v ? avx512::dot_f16 : scalar::dot_f16,
              v ? avx512::dequant_f16 : dequant_f16_scalar};
    case DType::kBF16:
      return {nullptr, v ? avx512::dot_bf16 : scalar::dot_bf16,
              v ? avx512::dequant_bf16 : dequant_bf16_scalar};
    case DType::kQ4_0:
      return {v ? avx512::dot_q4_0 : scalar::dot_q4_0, nullptr,
              v ? avx512::dequant_q4_0 : dequant_q4_0_scalar};
    case DType::kQ8_0:
      return {v ? avx512::dot_q8_0 : scalar::dot_q8_0, nullptr,
              v ? avx512::dequant_q8_0 : dequant_q8_0_scalar};
    case DType::kQ4_K:
      return {v ? avx512::dot_q4_k : scalar::dot_q4_k, nullptr,
              v ? avx512::dequant_q4_k : dequant_q4_k_scalar};
    case DType::kQ6_K:
      return {v ? avx512::dot_q6_k : scalar::dot_q6_k, nullptr,
              v ? avx512::dequant_q6_k : dequant_q6_k_scalar};
    default:
      return {};
  }
}

}  // namespace loom::cpu::kernels
