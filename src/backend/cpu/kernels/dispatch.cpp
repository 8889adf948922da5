// CPU feature detection and the per-dtype kernel table.
#include <cstdlib>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {

namespace {

// LOOM_KERNELS caps the tier: "scalar" (portable code only) or "avx2".
bool env_allows(const char* tier) {
  const char* env = std::getenv("LOOM_KERNELS");
  if (env == nullptr) return true;
  if (std::strcmp(env, "scalar") == 0) return false;
  if (std::strcmp(env, "avx2") == 0) return std::strcmp(tier, "avx2") == 0;
  return true;
}

bool detect_avx2() {
  if (!env_allows("avx2")) return false;
#ifdef LOOM_HAVE_X86_KERNELS
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
#else
  return false;
#endif
}

bool detect_avx512() {
  if (!env_allows("avx512")) return false;
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

int64_t pair_prefetch_bytes() {
  static const int64_t bytes = [] {
    if (const char* env = std::getenv("LOOM_PAIR_PREFETCH"); env != nullptr && *env != '\0')
      return static_cast<int64_t>(std::atoll(env));
#ifdef LOOM_HAVE_X86_KERNELS
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") ? int64_t{4096} : int64_t{0};
#else
    return int64_t{0};
#endif
  }();
  return bytes;
}

bool use_avx2() {
  static const bool yes = !use_avx512() && detect_avx2();
  return yes;
}

Kernels find_kernels(DType type) {
  const bool v = use_avx512(), v2 = use_avx2();
  // The tier's function, else the portable one.
  auto pick = [v, v2](auto* f512, auto* f2, auto* f) { return v ? f512 : v2 ? f2 : f; };
  switch (type) {
    case DType::kF32:
      return {nullptr, pick(avx512::dot_f32w, avx2::dot_f32w, scalar::dot_f32w), nullptr,
              v ? avx512::dot_rows_f32w : nullptr};
    case DType::kF16:
      return {nullptr, pick(avx512::dot_f16, avx2::dot_f16, scalar::dot_f16),
              pick(avx512::dequant_f16, avx2::dequant_f16, dequant_f16_scalar),
              v ? avx512::dot_rows_f16 : nullptr};
    case DType::kBF16:
      return {nullptr, pick(avx512::dot_bf16, avx2::dot_bf16, scalar::dot_bf16),
              pick(avx512::dequant_bf16, avx2::dequant_bf16, dequant_bf16_scalar),
              v ? avx512::dot_rows_bf16 : nullptr};
    case DType::kQ4_0:
      return {pick(avx512::dot_q4_0, avx2::dot_q4_0, scalar::dot_q4_0), nullptr,
              pick(avx512::dequant_q4_0, avx2::dequant_q4_0, dequant_q4_0_scalar)};
    case DType::kQ8_0:
      return {pick(avx512::dot_q8_0, avx2::dot_q8_0, scalar::dot_q8_0), nullptr,
              pick(avx512::dequant_q8_0, avx2::dequant_q8_0, dequant_q8_0_scalar)};
    case DType::kQ4_K:
      return {pick(avx512::dot_q4_k, avx2::dot_q4_k, scalar::dot_q4_k), nullptr,
              v ? avx512::dequant_q4_k : dequant_q4_k_scalar};
    case DType::kQ6_K:
      return {pick(avx512::dot_q6_k, avx2::dot_q6_k, scalar::dot_q6_k), nullptr,
              v ? avx512::dequant_q6_k : dequant_q6_k_scalar};
    default:
      return {};
  }
}

}  // namespace loom::cpu::kernels
