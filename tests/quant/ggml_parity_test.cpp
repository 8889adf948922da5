// Parity with ggml's reference C code (ggml/src/ggml-quants.c), on data that ggml produced.
//
// tests/data/quant/ was generated once by compiling ggml-quants.c (ggml-org/ggml d99724f, the
// code llama.cpp vendors) with `gcc -O2 -ffp-contract=off` and a small throwaway driver; neither
// is kept in this repository. For each format FMT:
//   FMT.blocks       8 * 256 elements' worth of random blocks (random bytes; the fp16 scale
//                    fields set to random finite values so that the outputs are finite)
//   FMT.dequant.f32  ggml's dequantize_row_FMT of those blocks (little-endian floats)
//   FMT.quant        ggml's quantize_row_FMT_ref of input.f32
// input.f32 holds 8 super-blocks (2048 floats) of different shapes: Gaussian, small uniform,
// all positive, all zero, Gaussian with outliers, two constants, all negative, tiny (1e-4).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/quant.h"

namespace loom {
namespace {

std::vector<uint8_t> read_data(const std::string& name) {
  std::ifstream in(std::string(LOOM_TEST_DATA_DIR) + "/quant/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<float> as_floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

struct Format {
  DType type;
  const char* file;
};

constexpr Format kFormats[] = {
    {DType::kQ4_0, "q4_0"}, {DType::kQ4_1, "q4_1"}, {DType::kQ5_0, "q5_0"}, {DType::kQ5_1, "q5_1"},
    {DType::kQ8_0, "q8_0"}, {DType::kQ2_K, "q2_K"}, {DType::kQ3_K, "q3_K"}, {DType::kQ4_K, "q4_K"},
    {DType::kQ5_K, "q5_K"}, {DType::kQ6_K, "q6_K"}, {DType::kQ8_K, "q8_K"},
};
constexpr int64_t kN = 2048;

class GgmlParity : public ::testing::TestWithParam<Format> {};

TEST_P(GgmlParity, DequantizeIsBitExact) {
  const Format& f = GetParam();
  const auto blocks = read_data(std::string(f.file) + ".blocks");
  const auto want = as_floats(read_data(std::string(f.file) + ".dequant.f32"));
  ASSERT_EQ(blocks.size(), *row_bytes(f.type, kN));
  ASSERT_EQ(want.size(), static_cast<size_t>(kN));
  std::vector<float> got(kN);
  dequantize_row(f.type, blocks.data(), got.data(), kN);
  int mismatches = 0;
  for (int64_t i = 0; i < kN; ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    if (a != b && ++mismatches <= 5) {
      ADD_FAILURE() << f.file << " element " << i << ": loom " << got[i] << " ggml " << want[i];
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(GgmlParity, QuantizeGivesGgmlBytes) {
  const Format& f = GetParam();
  const auto input = as_floats(read_data("input.f32"));
  const auto want = read_data(std::string(f.file) + ".quant");
  ASSERT_EQ(input.size(), static_cast<size_t>(kN));
  const uint64_t bytes = *row_bytes(f.type, kN);
  ASSERT_EQ(want.size(), bytes);
  std::vector<uint8_t> got(bytes, 0xAB);  // every byte must be written
  quantize_row(f.type, input.data(), got.data(), kN);
  const uint32_t block_bytes = dtype_info(f.type).block_bytes;
  for (uint64_t b = 0; b < bytes / block_bytes; ++b) {
    const uint64_t off = b * block_bytes;
    EXPECT_EQ(std::memcmp(got.data() + off, want.data() + off, block_bytes), 0)
        << f.file << " block " << b << " differs from ggml's";
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, GgmlParity, ::testing::ValuesIn(kFormats),
                         [](const auto& p) { return std::string(p.param.file); });

}  // namespace
}  // namespace loom
