// Public entry points: argument checks and dispatch to the per-format row kernels.
#include "quant/quant.h"

#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/half.h"

namespace loom {
namespace {

using namespace quant_detail;

using DequantFn = void (*)(const void*, float*, int64_t);
using QuantFn = void (*)(const float*, void*, int64_t);

void dequant_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void dequant_f16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = load_half(p + 2 * i);
}
void dequant_bf16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = bf16_to_fp32(h);
  }
}
void quant_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void quant_f16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) store_half(p + 2 * i, src[i]);
}
void quant_bf16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

struct Kernels {
  DequantFn dequant;
  QuantFn quant;
};

// nullptr members: not supported in that direction.
Kernels kernels_for(DType type) {
  switch (type) {
    case DType::kF32:
      return {dequant_f32, quant_f32};
    case DType::kF16:
      return {dequant_f16, quant_f16};
    case DType::kBF16:
      return {dequant_bf16, quant_bf16};
    case DType::kQ4_0:
      return {dequant_q4_0, quant_q4_0};
    case DType::kQ4_1:
      return {dequant_q4_1, quant_q4_1};
    case DType::kQ5_0:
      return {dequant_q5_0, quant_q5_0};
    case DType::kQ5_1:
      return {dequant_q5_1, quant_q5_1};
    case DType::kQ8_0:
      return {dequant_q8_0, quant_q8_0};
    case DType::kQ2_K:
      return {dequant_q2_k, quant_q2_k};
    case DType::kQ3_K:
      return {dequant_q3_k, quant_q3_k};
    case DType::kQ4_K:
      return {dequant_q4_k, quant_q4_k};
    case DType::kQ5_K:
      return {dequant_q5_k, quant_q5_k};
    case DType::kQ6_K:
      return {dequant_q6_k, quant_q6_k};
    case DType::kQ8_K:
      return {dequant_q8_k, quant_q8_k};
    default:
      return {nullptr, nullptr};
  }
}

void check_row(const char* what, DType type, const void* src, const void* dst, int64_t n) {
  const DTypeInfo& info = dtype_info(type);
  if (n < 0 || n % info.block_size != 0) {
    fail(ErrorCode::kInvalidArgument,
         "{}: a {} row of {} elements is not a multiple of the block size {}", what, info.name, n,
         info.block_size);
  }
  if (n > 0 && (src == nullptr || dst == nullptr)) {
    fail(ErrorCode::kInvalidArgument, "{}: null buffer for a {} row of {} elements", what,
         info.name, n);
  }
}

// The type's name, or its id when the value is outside the dtype table (a corrupt caller value
// must still produce an error rather than an assertion).
std::string type_label(DType type) {
  for (const DTypeInfo& info : all_dtypes()) {
    if (info.type == type) return std::string(info.name);
  }
  return fmt::format("id {}", static_cast<uint32_t>(type));
}

}  // namespace

bool can_dequantize(DType type) {
  return kernels_for(type).dequant != nullptr;
}
bool can_quantize(DType type) {
  return kernels_for(type).quant != nullptr;
}

void dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  const DequantFn fn = kernels_for(type).dequant;
  if (fn == nullptr) {
    fail(ErrorCode::kUnsupported, "dequantize_row: type {} is not supported", type_label(type));
  }
  check_row("dequantize_row", type, src, dst, n);
  if (n > 0) fn(src, dst, n);
}

void quantize_row(DType type, const float* src, void* dst, int64_t n) {
  const QuantFn fn = kernels_for(type).quant;
  if (fn == nullptr) {
    fail(ErrorCode::kUnsupported, "quantize_row: type {} is not supported", type_label(type));
  }
  check_row("quantize_row", type, src, dst, n);
  if (n > 0) fn(src, dst, n);
}

}  // namespace loom
