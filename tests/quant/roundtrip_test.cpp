// Round-trip quality: quantize then dequantize Gaussian rows (7 rows, an odd count, of 1536
// elements, each row converted on its own) and compare the relative RMS error
// rms(x' - x) / rms(x) with the range expected for the format. The bounds are about 10% above
// what loom (and, its bytes being identical, llama.cpp's reference quantizers) measure here:
//   F32 0          F16 2.07e-4    BF16 1.67e-3   Q8_0 5.33e-3   Q8_K 6.73e-3   Q6_K 1.75e-2
//   Q5_1 3.80e-2   Q5_0 4.24e-2   Q5_K 3.59e-2   Q4_1 7.72e-2   Q4_0 8.58e-2   Q4_K 7.10e-2
//   Q3_K 0.151     Q2_K 0.297
// As a sanity check, uniform rounding with step s gives s / sqrt(12): for Q4_0 the step is about
// 2 * 2.1 sigma (the largest of 32 Gaussians) / 15 levels, i.e. 0.08 sigma.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "quant/quant.h"

namespace loom {
namespace {

struct Expectation {
  DType type;
  double max_rel_rms;
};

constexpr Expectation kExpected[] = {
    {DType::kF32, 0.0},     {DType::kF16, 2.3e-4},  {DType::kBF16, 1.9e-3},
    {DType::kQ8_0, 5.9e-3}, {DType::kQ8_K, 7.4e-3}, {DType::kQ6_K, 1.93e-2},
    {DType::kQ5_1, 4.2e-2}, {DType::kQ5_0, 4.7e-2}, {DType::kQ5_K, 3.95e-2},
    {DType::kQ4_1, 8.5e-2}, {DType::kQ4_0, 9.5e-2}, {DType::kQ4_K, 7.8e-2},
    {DType::kQ3_K, 0.166},  {DType::kQ2_K, 0.327},
};

class RoundTrip : public ::testing::TestWithParam<Expectation> {};

TEST_P(RoundTrip, RelativeRmsErrorWithinRange) {
  const Expectation& e = GetParam();
  constexpr int kRows = 7;
  constexpr int64_t kCols = 1536;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kRows * kCols);
  for (float& v : x) v = normal(rng);

  const uint64_t row_size = *row_bytes(e.type, kCols);
  std::vector<uint8_t> q(row_size * kRows);
  std::vector<float> y(x.size());
  for (int r = 0; r < kRows; ++r) {
    quantize_row(e.type, x.data() + r * kCols, q.data() + r * row_size, kCols);
    dequantize_row(e.type, q.data() + r * row_size, y.data() + r * kCols, kCols);
  }
  double err2 = 0, sig2 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err2 += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
    sig2 += double(x[i]) * x[i];
  }
  const double rel = std::sqrt(err2 / sig2);
  std::printf("%-5s relative RMS error %.3g\n", std::string(dtype_name(e.type)).c_str(), rel);
  EXPECT_LE(rel, e.max_rel_rms) << dtype_name(e.type);
  // Far better than expected is suspicious too (e.g. a format silently stored as F32).
  if (e.max_rel_rms > 0) {
    EXPECT_GE(rel, e.max_rel_rms / 2) << dtype_name(e.type);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip, ::testing::ValuesIn(kExpected),
                         [](const auto& p) { return std::string(dtype_name(p.param.type)); });

}  // namespace
}  // namespace loom
