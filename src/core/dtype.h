// DType — every element type a model file can hold, GGUF's block-quantized types included.
// Values 0..39 are ggml's type ids (GGUF stores them as-is); safetensors-only types take ids from
// 1000 up. A dtype is described by its block: `block_size` elements stored in `block_bytes`
// bytes (1 and sizeof(element) for plain types; e.g. 32 and 18 for Q4_0).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace loom {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kMXFP4 = 39,
  // Types that only safetensors files carry.
  kBool = 1000,
  kU8 = 1001,
  kU16 = 1002,
  kU32 = 1003,
  kU64 = 1004,
  kF8_E4M3 = 1005,
  kF8_E5M2 = 1006,
};

struct DTypeInfo {
  DType type;
  std::string_view name;              // ggml's spelling, e.g. "Q4_K", "BF16"
  std::string_view safetensors_name;  // "" when safetensors has no such dtype
  uint32_t block_size;                // elements per block
  uint32_t block_bytes;               // bytes per block
  bool quantized;                     // block-quantized (block_size > 1)
  bool gguf;                          // may appear in a GGUF file
};

// The table of all known dtypes, in id order.
std::span<const DTypeInfo> all_dtypes();

const DTypeInfo& dtype_info(DType type);
inline std::string_view dtype_name(DType type) {
  return dtype_info(type).name;
}

// Lookups; nullopt when unknown (removed ggml ids such as 4, 5, 31..33 are unknown).
std::optional<DType> dtype_from_ggml_id(uint32_t id);
std::optional<DType> dtype_from_safetensors_name(std::string_view name);
std::optional<DType> dtype_from_name(std::string_view name);  // ggml spelling, case-insensitive

// Bytes taken by `n_elements` elements in a row; nullopt if n_elements is not a multiple of the
// block size or the size overflows 64 bits.
std::optional<uint64_t> row_bytes(DType type, uint64_t n_elements);

// Bytes of a whole tensor of that shape (any dimension order: the block runs along `inner`,
// the contiguous dimension). nullopt on overflow or a bad block multiple.
std::optional<uint64_t> tensor_bytes(DType type, uint64_t inner, uint64_t outer_elements);

}  // namespace loom
