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
#include "backend/host_matrix.h"
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
      test::HostMatrix xh(n, k);
      for (float& f : xh.v) f = normal(rng);
      Activations x = test::to_device(*backend, xh), y;
      backend->matmul(x, wv, nullptr, y);
      const test::HostMatrix yh = test::to_host(*backend, y);
      for (int64_t i = 0; i < n; ++i) {
        Activations xi = backend->make_tensor({xh.row(i), static_cast<size_t>(k)}, 1, k), yi;
        backend->matmul(xi, wv, nullptr, yi);
        const test::HostMatrix yih = test::to_host(*backend, yi);
        EXPECT_EQ(std::memcmp(yih.row(0), yh.row(i), m * sizeof(float)), 0)
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
  test::HostMatrix xh(8, k);
  for (float& f : xh.v) f = normal(rng);
  Activations x = test::to_device(*fast, xh), yd, y1d;
  fast->matmul(x, wv, nullptr, yd);
  Activations x1 = fast->make_tensor({xh.row(0), static_cast<size_t>(k)}, 1, k);
  fast->matmul(x1, wv, nullptr, y1d);
  const test::HostMatrix y = test::to_host(*fast, yd), y1 = test::to_host(*fast, y1d);
  double max_rel = 0;
  for (int64_t j = 0; j < m; ++j) {
    max_rel = std::max(max_rel, std::abs(double(y1.row(0)[j]) - y.row(0)[j]) /
                                    std::max(1e-6, std::abs(double(y.row(0)[j]))));
  }
  EXPECT_LT(max_rel, 1e-4);  // the same maths, summed in another order
}

}  // namespace
}  // namespace loom
