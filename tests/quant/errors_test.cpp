// Bad input: row lengths that are not a multiple of the block size, and types loom_quant does
// not handle, throw loom::Error with the right category and a message naming the type.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "quant/blocks.h"
#include "quant/quant.h"

namespace loom {
namespace {

constexpr DType kSupported[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0,
                                DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                                DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                                DType::kQ6_K, DType::kQ8_K};

template <typename F>
void expect_error(F&& f, ErrorCode code, const std::string& words) {
  try {
    f();
    ADD_FAILURE() << "no error; expected " << words;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(QuantErrors, SupportedTypes) {
  for (const DTypeInfo& info : all_dtypes()) {
    bool listed = false;
    for (DType t : kSupported) listed |= t == info.type;
    EXPECT_EQ(can_dequantize(info.type), listed) << info.name;
    EXPECT_EQ(can_quantize(info.type), listed) << info.name;
  }
}

TEST(QuantErrors, BlockStructsMatchDTypeTable) {
  using namespace quant_detail;
  EXPECT_EQ(sizeof(BlockQ4_0), dtype_info(DType::kQ4_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_1), dtype_info(DType::kQ4_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_0), dtype_info(DType::kQ5_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_1), dtype_info(DType::kQ5_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_0), dtype_info(DType::kQ8_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ2_K), dtype_info(DType::kQ2_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ3_K), dtype_info(DType::kQ3_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_K), dtype_info(DType::kQ4_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_K), dtype_info(DType::kQ5_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ6_K), dtype_info(DType::kQ6_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_K), dtype_info(DType::kQ8_K).block_bytes);
}

TEST(QuantErrors, RowNotAMultipleOfTheBlock) {
  std::vector<float> f(1024);
  std::vector<uint8_t> b(4096);
  expect_error([&] { dequantize_row(DType::kQ4_0, b.data(), f.data(), 33); },
               ErrorCode::kInvalidArgument, "Q4_0 row of 33 elements");
  expect_error([&] { quantize_row(DType::kQ4_K, f.data(), b.data(), 255); },
               ErrorCode::kInvalidArgument, "Q4_K row of 255 elements");
  expect_error([&] { quantize_row(DType::kQ8_0, f.data(), b.data(), -32); },
               ErrorCode::kInvalidArgument, "Q8_0 row of -32 elements");
  expect_error([&] { dequantize_row(DType::kQ6_K, nullptr, f.data(), 256); },
               ErrorCode::kInvalidArgument, "null buffer");
  // Zero elements is a valid, empty row.
  dequantize_row(DType::kQ6_K, nullptr, nullptr, 0);
  quantize_row(DType::kQ2_K, nullptr, nullptr, 0);
}

TEST(QuantErrors, UnsupportedTypesNameTheType) {
  std::vector<float> f(256);
  std::vector<uint8_t> b(4096);
  expect_error([&] { dequantize_row(DType::kIQ2_XXS, b.data(), f.data(), 256); },
               ErrorCode::kUnsupported, "IQ2_XXS");
  expect_error([&] { quantize_row(DType::kTQ1_0, f.data(), b.data(), 256); },
               ErrorCode::kUnsupported, "TQ1_0");
  expect_error([&] { dequantize_row(DType::kMXFP4, b.data(), f.data(), 32); },
               ErrorCode::kUnsupported, "MXFP4");
  expect_error([&] { dequantize_row(static_cast<DType>(4), b.data(), f.data(), 32); },
               ErrorCode::kUnsupported, "id 4");
}

// NaN/Inf weights are not an error (ggml accepts them too), but must not reach undefined
// behaviour (run under the sanitizer build) or write outside the row.
TEST(QuantErrors, NonFiniteInputStaysInBounds) {
  std::vector<float> x(512, 0.5f);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  x[300] = -std::numeric_limits<float>::infinity();
  for (DType t : kSupported) {
    const size_t bytes = *row_bytes(t, 512);
    std::vector<uint8_t> q(bytes + 16, 0xCD);
    quantize_row(t, x.data(), q.data(), 512);
    for (size_t i = bytes; i < q.size(); ++i) ASSERT_EQ(q[i], 0xCD) << dtype_name(t);
    std::vector<float> y(512 + 4, 7.0f);
    dequantize_row(t, q.data(), y.data(), 512);
    for (size_t i = 512; i < y.size(); ++i) ASSERT_EQ(y[i], 7.0f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace loom
