// Half and bfloat16 conversions: exhaustive over all 65536 halves, ties, NaN, Inf, subnormals,
// agreement with ggml's converters (tests/data/quant/half.*, see ggml_parity_test.cpp) and, where
// the CPU has F16C, with the hardware conversion.
#include "quant/half.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace loom {
namespace {

uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}
float from_bits(uint32_t b) {
  return std::bit_cast<float>(b);
}

bool is_half_nan(uint16_t h) {
  return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
}

TEST(Half, EveryHalfRoundTrips) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = fp16_to_fp32(h);
    if (is_half_nan(h)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << i;
      // A signalling NaN comes back quiet; the payload and sign are kept.
      EXPECT_EQ(fp32_to_fp16(f), h | 0x200) << std::hex << i;
    } else {
      EXPECT_EQ(fp32_to_fp16(f), h) << std::hex << i;
    }
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(bits(fp16_to_fp32(0x8000)), 0x80000000u);      // -0 keeps its sign
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(bits(fp16_to_fp32(0x7E01)), 0x7FC02000u);  // NaN payload kept
}

TEST(Half, RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(fp32_to_fp16(from_bits(0x3F801000)), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(from_bits(0x3F801001)), 0x3C01);  // just above the tie
  EXPECT_EQ(fp32_to_fp16(from_bits(0x3F803000)), 0x3C02);  // 1 + 3 * 2^-11: up to even
  EXPECT_EQ(fp32_to_fp16(from_bits(0x3F7FFFFF)), 0x3C00);  // rounding carries into the exponent
  // Overflow: 65520 is halfway between 65504 and 65536 (Inf); it rounds up.
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  // Subnormals: units of 2^-24, ties to even.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 1 unit
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 units: tie, to even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -25)), 0x0002);     // 2.5 units: tie, to even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // up into the smallest normal
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -26)), 0x8000);    // underflow keeps the sign
  EXPECT_EQ(fp32_to_fp16(from_bits(0x00000001)), 0x0000);     // float subnormal
  // NaN stays NaN with its sign.
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(is_half_nan(fp32_to_fp16(from_bits(0x7F800001))));  // payload only in low bits
  EXPECT_EQ(fp32_to_fp16(from_bits(0xFFC00000)), 0xFE00);
}

TEST(BFloat16, Conversions) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = bf16_to_fp32(h);
    EXPECT_EQ(bits(f), i << 16);
    if (!std::isnan(f)) {
      EXPECT_EQ(fp32_to_bf16(f), h) << std::hex << i;
    }
  }
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie: to even (up)
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808001)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // FLT_MAX rounds to Inf
  EXPECT_EQ(fp32_to_bf16(from_bits(0xFF800000)), 0xFF80);  // -Inf
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7F800001)), 0x7FC0);  // sNaN: quiet, not Inf
  EXPECT_EQ(fp32_to_bf16(from_bits(0xFFFFFFFF)), 0xFFFF);  // a NaN never rounds over into Inf
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00000001)), 0x0000);  // subnormals are not flushed...
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00010000)), 0x0001);  // ...and stay subnormal
}

std::vector<uint8_t> read_data(const std::string& name) {
  std::ifstream in(std::string(LOOM_TEST_DATA_DIR) + "/quant/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), {}};
}

// ggml's GGML_FP32_TO_FP16 / GGML_FP32_TO_BF16 (generic C versions) on 27 edge values and 4069
// random bit patterns. ggml writes every NaN as 0x7E00 | sign, so only non-NaN inputs must agree
// for F16; BF16 must agree everywhere.
TEST(Half, MatchesGgmlConverters) {
  const auto in = read_data("half.in_bits");
  const auto f16 = read_data("half.f16");
  const auto b16 = read_data("half.bf16");
  ASSERT_EQ(in.size(), 4096u * 4);
  ASSERT_EQ(f16.size(), 4096u * 2);
  ASSERT_EQ(b16.size(), 4096u * 2);
  for (size_t i = 0; i < 4096; ++i) {
    uint32_t b;
    uint16_t want_h, want_b;
    std::memcpy(&b, in.data() + 4 * i, 4);
    std::memcpy(&want_h, f16.data() + 2 * i, 2);
    std::memcpy(&want_b, b16.data() + 2 * i, 2);
    const float f = from_bits(b);
    if (!std::isnan(f)) {
      EXPECT_EQ(fp32_to_fp16(f), want_h) << std::hex << b;
    } else {
      EXPECT_EQ(fp32_to_fp16(f) & 0xFE00, want_h) << std::hex << b;  // sign and quiet NaN
    }
    EXPECT_EQ(fp32_to_bf16(f), want_b) << std::hex << b;
  }
}

#if defined(__F16C__)
TEST(Half, MatchesF16CHardware) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    EXPECT_EQ(bits(fp16_to_fp32(h)), bits(_cvtsh_ss(h))) << std::hex << i;
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any;
  // Random bit patterns, plus patterns concentrated near the half range (exponents 100..145).
  for (int i = 0; i < 2000000; ++i) {
    uint32_t b = any(rng);
    if (i % 2) b = (b & 0x807FFFFFu) | ((100u + (b >> 8) % 46u) << 23);
    const float f = from_bits(b);
    // _mm_cvtps_ph rather than _cvtss_sh, whose clang macro uses a C99 compound literal.
    const __m128i hw = _mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT);
    ASSERT_EQ(fp32_to_fp16(f), static_cast<uint16_t>(_mm_extract_epi16(hw, 0))) << std::hex << b;
  }
}
#endif

}  // namespace
}  // namespace loom
