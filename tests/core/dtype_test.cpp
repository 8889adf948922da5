#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace loom {
namespace {

TEST(DType, GgmlIdsRoundTrip) {
  for (const DTypeInfo& info : all_dtypes()) {
    if (!info.gguf) continue;
    auto back = dtype_from_ggml_id(static_cast<uint32_t>(info.type));
    ASSERT_TRUE(back.has_value()) << info.name;
    EXPECT_EQ(*back, info.type);
    EXPECT_EQ(dtype_from_name(info.name), info.type);
  }
}

TEST(DType, RemovedGgmlIdsAreUnknown) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u, 0xFFFFFFFFu}) {
    EXPECT_FALSE(dtype_from_ggml_id(id).has_value()) << id;
  }
}

TEST(DType, BlockLayoutsMatchGgml) {
  // Spot checks against ggml's block structs.
  EXPECT_EQ(dtype_info(DType::kQ4_0).block_bytes, 2u + 16u);
  EXPECT_EQ(dtype_info(DType::kQ8_0).block_bytes, 2u + 32u);
  EXPECT_EQ(dtype_info(DType::kQ4_K).block_bytes, 2u * 2u + 12u + 128u);
  EXPECT_EQ(dtype_info(DType::kQ6_K).block_bytes, 128u + 64u + 16u + 2u);
  EXPECT_EQ(dtype_info(DType::kQ2_K).block_bytes, 16u + 64u + 2u * 2u);
  EXPECT_EQ(dtype_info(DType::kQ3_K).block_bytes, 32u + 64u + 12u + 2u);
  EXPECT_EQ(dtype_info(DType::kQ5_K).block_bytes, 2u * 2u + 12u + 32u + 128u);
}

TEST(DType, SafetensorsNames) {
  EXPECT_EQ(dtype_from_safetensors_name("BF16"), DType::kBF16);
  EXPECT_EQ(dtype_from_safetensors_name("F8_E4M3"), DType::kF8_E4M3);
  EXPECT_EQ(dtype_from_safetensors_name("U8"), DType::kU8);
  EXPECT_FALSE(dtype_from_safetensors_name("Q4_0").has_value());
  EXPECT_FALSE(dtype_from_safetensors_name("bf16").has_value());  // case matters there
}

TEST(DType, RowBytesChecksBlocksAndOverflow) {
  EXPECT_EQ(row_bytes(DType::kF16, 7), 14u);
  EXPECT_EQ(row_bytes(DType::kQ4_0, 64), 36u);
  EXPECT_FALSE(row_bytes(DType::kQ4_0, 33).has_value());
  EXPECT_FALSE(row_bytes(DType::kF32, std::numeric_limits<uint64_t>::max() / 2).has_value());
  EXPECT_FALSE(tensor_bytes(DType::kF32, 1u << 20, uint64_t{1} << 50).has_value());
  EXPECT_EQ(tensor_bytes(DType::kQ8_0, 32, 3), 102u);
}

}  // namespace
}  // namespace loom
