// Continuous batching promises that a request's tokens do not depend on what else runs in its
// step. That holds only if the backend computes each row of a matmul the same way whether the
// batch has one row (decode) or many (prefill chunks, other users): checked here bit for bit,
// for every weight type, at widths where the SIMD kernels take over. The server runs its backend
// in batch-invariant mode; the default mode's decode kernels sum in another order, which the
// second test shows is why the mode exists.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "backend/backend.h"
#include "backend/cpu/kernels/kernels.h"
#include "quant/quant.h"

namespace loom {
namespace {

TEST(BatchInvariance, MatmulRowsDoNotDependOnTheBatch) {
  const int64_t k = 1024, m = 80;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(m * k));
  for (float& v : wf) v = normal(rng) * 0.05f;
  auto backend = make_cpu_backend(2, /*batch_invariant=*/true);
  for (DType type :
       {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1,
        DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const uint64_t rb = *row_bytes(type, k);
    std::vector<uint8_t> w(rb * m);
    for (int64_t r = 0; r < m; ++r) quantize_row(type, wf.data() + r * k, w.data() + r * rb, k);
    TensorView wv{type, {m, k}, w.data(), w.size()};
    for (int64_t n : {2, 5, 16, 33}) {
      Activations x(n, k), y;
      for (int64_t i = 0; i < n * k; ++i) x.data()[i] = normal(rng);
      backend->matmul(x, wv, nullptr, y);
      for (int64_t i = 0; i < n; ++i) {
        Activations xi(1, k), yi;
        std::memcpy(xi.row(0), x.row(i), k * sizeof(float));
        backend->matmul(xi, wv, nullptr, yi);
        EXPECT_EQ(std::memcmp(yi.row(0), y.row(i), m * sizeof(float)), 0)
            << "row " << i << " of a batch of " << n << " differs from the row alone";
      }
    }
  }
}

// The default (fast) mode: the decode kernels (batches of under 4 rows) sum in another order
// than the prefill kernels, so a row alone and in a batch may differ, but only in rounding.
TEST(BatchInvariance, DefaultModeDecodeAndPrefillKernelsAgreeClosely) {
  if (!cpu::kernels::int8_gemm_supported(DType::kQ8_0)) {
    GTEST_SKIP() << "this CPU tier's prefill keeps float activations where decode rounds them to "
                    "8 bits; backend_ops_test bounds each against the reference";
  }
  const int64_t k = 1024, m = 64;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(m * k));
  for (float& v : wf) v = normal(rng) * 0.05f;
  const uint64_t rb = *row_bytes(DType::kQ8_0, k);
  std::vector<uint8_t> w(rb * m);
  for (int64_t r = 0; r < m; ++r)
    quantize_row(DType::kQ8_0, wf.data() + r * k, w.data() + r * rb, k);
  TensorView wv{DType::kQ8_0, {m, k}, w.data(), w.size()};
  auto fast = make_cpu_backend(2);
  Activations x(8, k), y, y1;
  for (int64_t i = 0; i < 8 * k; ++i) x.data()[i] = normal(rng);
  fast->matmul(x, wv, nullptr, y);
  Activations x1(1, k);
  std::memcpy(x1.row(0), x.row(0), k * sizeof(float));
  fast->matmul(x1, wv, nullptr, y1);
  double max_rel = 0;
  for (int64_t j = 0; j < m; ++j) {
    max_rel = std::max(max_rel, std::abs(double(y1.row(0)[j]) - y.row(0)[j]) /
                                    std::max(1e-6, std::abs(double(y.row(0)[j]))));
  }
  EXPECT_LT(max_rel, 1e-4);  // the same maths, summed in another order
}

}  // namespace
}  // namespace loom
