#include "core/dtype.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/checked_math.h"
#include "core/error.h"

namespace loom {

namespace {

// Block sizes and bytes follow ggml's block structs (ggml-common.h): e.g. block_q4_K holds
// d, dmin (2 x f16), 12 bytes of 6-bit scales and 128 bytes of nibbles for 256 weights.
constexpr std::array kTable = {
    DTypeInfo{DType::kF32, "F32", "F32", 1, 4, false, true},
    DTypeInfo{DType::kF16, "F16", "F16", 1, 2, false, true},
    DTypeInfo{DType::kQ4_0, "Q4_0", "", 32, 18, true, true},
    DTypeInfo{DType::kQ4_1, "Q4_1", "", 32, 20, true, true},
    DTypeInfo{DType::kQ5_0, "Q5_0", "", 32, 22, true, true},
    DTypeInfo{DType::kQ5_1, "Q5_1", "", 32, 24, true, true},
    DTypeInfo{DType::kQ8_0, "Q8_0", "", 32, 34, true, true},
    DTypeInfo{DType::kQ8_1, "Q8_1", "", 32, 36, true, true},
    DTypeInfo{DType::kQ2_K, "Q2_K", "", 256, 84, true, true},
    DTypeInfo{DType::kQ3_K, "Q3_K", "", 256, 110, true, true},
    DTypeInfo{DType::kQ4_K, "Q4_K", "", 256, 144, true, true},
    DTypeInfo{DType::kQ5_K, "Q5_K", "", 256, 176, true, true},
    DTypeInfo{DType::kQ6_K, "Q6_K", "", 256, 210, true, true},
    DTypeInfo{DType::kQ8_K, "Q8_K", "", 256, 292, true, true},
    DTypeInfo{DType::kIQ2_XXS, "IQ2_XXS", "", 256, 66, true, true},
    DTypeInfo{DType::kIQ2_XS, "IQ2_XS", "", 256, 74, true, true},
    DTypeInfo{DType::kIQ3_XXS, "IQ3_XXS", "", 256, 98, true, true},
    DTypeInfo{DType::kIQ1_S, "IQ1_S", "", 256, 50, true, true},
    DTypeInfo{DType::kIQ4_NL, "IQ4_NL", "", 32, 18, true, true},
    DTypeInfo{DType::kIQ3_S, "IQ3_S", "", 256, 110, true, true},
    DTypeInfo{DType::kIQ2_S, "IQ2_S", "", 256, 82, true, true},
    DTypeInfo{DType::kIQ4_XS, "IQ4_XS", "", 256, 136, true, true},
    DTypeInfo{DType::kI8, "I8", "I8", 1, 1, false, true},
    DTypeInfo{DType::kI16, "I16", "I16", 1, 2, false, true},
    DTypeInfo{DType::kI32, "I32", "I32", 1, 4, false, true},
    DTypeInfo{DType::kI64, "I64", "I64", 1, 8, false, true},
    DTypeInfo{DType::kF64, "F64", "F64", 1, 8, false, true},
    DTypeInfo{DType::kIQ1_M, "IQ1_M", "", 256, 56, true, true},
    DTypeInfo{DType::kBF16, "BF16", "BF16", 1, 2, false, true},
    DTypeInfo{DType::kTQ1_0, "TQ1_0", "", 256, 54, true, true},
    DTypeInfo{DType::kTQ2_0, "TQ2_0", "", 256, 66, true, true},
    DTypeInfo{DType::kMXFP4, "MXFP4", "", 32, 17, true, true},
    DTypeInfo{DType::kBool, "BOOL", "BOOL", 1, 1, false, false},
    DTypeInfo{DType::kU8, "U8", "U8", 1, 1, false, false},
    DTypeInfo{DType::kU16, "U16", "U16", 1, 2, false, false},
    DTypeInfo{DType::kU32, "U32", "U32", 1, 4, false, false},
    DTypeInfo{DType::kU64, "U64", "U64", 1, 8, false, false},
    DTypeInfo{DType::kF8_E4M3, "F8_E4M3", "F8_E4M3", 1, 1, false, false},
    DTypeInfo{DType::kF8_E5M2, "F8_E5M2", "F8_E5M2", 1, 1, false, false},
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::span<const DTypeInfo> all_dtypes() {
  return kTable;
}

const DTypeInfo& dtype_info(DType type) {
  for (const DTypeInfo& info : kTable) {
    if (info.type == type) return info;
  }
  LOOM_ASSERT(false && "DType value outside the table");
  return kTable[0];
}

std::optional<DType> dtype_from_ggml_id(uint32_t id) {
  for (const DTypeInfo& info : kTable) {
    if (info.gguf && static_cast<uint32_t>(info.type) == id) return info.type;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  for (const DTypeInfo& info : kTable) {
    if (!info.safetensors_name.empty() && info.safetensors_name == name) return info.type;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeInfo& info : kTable) {
    if (iequals(info.name, name)) return info.type;
  }
  return std::nullopt;
}

std::optional<uint64_t> row_bytes(DType type, uint64_t n_elements) {
  const DTypeInfo& info = dtype_info(type);
  if (n_elements % info.block_size != 0) return std::nullopt;
  return checked_mul(n_elements / info.block_size, info.block_bytes);
}

std::optional<uint64_t> tensor_bytes(DType type, uint64_t inner, uint64_t outer_elements) {
  auto row = row_bytes(type, inner);
  if (!row) return std::nullopt;
  return checked_mul(*row, outer_elements);
}

}  // namespace loom
