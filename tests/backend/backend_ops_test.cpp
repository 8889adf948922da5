// The CPU backend's ops (matmul in its decode and prefill paths, RMSNorm, attention) against
// naive float64 references on odd sizes, through the Backend interface with 2 threads so that
// the split over output rows is exercised. Tolerances as in kernels_test.cpp: float32 rounding
// (1e-5 of the magnitude) for float paths, plus the 8-bit activation bound where decode meets
// quantized weights.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels/kernels.h"
#include "quant/quant.h"

namespace loom {
namespace {

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

void fill(Activations& a, int64_t rows, int64_t cols, uint32_t seed) {
  a.resize(rows, cols);
  const std::vector<float> v = random_floats(rows * cols, seed);
  std::copy(v.begin(), v.end(), a.data());
}

class Matmul : public ::testing::TestWithParam<DType> {};

TEST_P(Matmul, DecodeAndPrefillMatchReference) {
  const DType type = GetParam();
  const int64_t block = dtype_info(type).block_size;
  // k spans several 256-wide prefill panels and is not a multiple of 16; m is not a multiple
  // of the 32-row panel (nor of the 16-row packed groups, so Q4_0/Q4_K take the file-layout
  // paths here; kernels_test covers the packed ones); n = 13 is one 12-row tile and a tail;
  // n = 17 and 45 take the activation-major form (padded to 32 and 48 columns).
  const int64_t k = block == 1 ? 1001 : block == 32 ? 37 * 32 : 3 * 256;
  const int64_t m = 131;
  const std::vector<float> wf = random_floats(m * k, 1);
  const uint64_t rb = *row_bytes(type, k);
  std::vector<uint8_t> wq(rb * m);
  std::vector<float> wd(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r) {
    quantize_row(type, wf.data() + r * k, wq.data() + r * rb, k);
    dequantize_row(type, wq.data() + r * rb, wd.data() + r * k, k);
  }
  const std::vector<float> bias = random_floats(m, 2);
  const TensorView w{type, {m, k}, wq.data(), rb * m};
  const TensorView b{DType::kF32, {m}, bias.data(), m * sizeof(float)};
  const bool quantized_act =
      type == DType::kQ4_0 || type == DType::kQ8_0 || type == DType::kQ4_K || type == DType::kQ6_K;
  auto backend = make_cpu_backend(2);
  for (int64_t n : {1, 2, 3, 5, 13, 17, 45}) {
    Activations x, y;
    fill(x, n, k, static_cast<uint32_t>(10 + n));
    const bool with_bias = n == 3 || n == 45;
    backend->matmul(x, w, with_bias ? &b : nullptr, y);
    ASSERT_EQ(y.rows(), n);
    ASSERT_EQ(y.cols(), m);
    for (int64_t i = 0; i < n; ++i) {
      // Decode (n < 4) quantizes activations for quantized weights, and so does the int8
      // prefill where the CPU has it.
      const bool act8 = quantized_act && (n < 4 || cpu::kernels::int8_gemm_supported(type));
      for (int64_t j = 0; j < m; ++j) {
        double ref = with_bias ? bias[j] : 0.0, abs = 0, act_err = 0;
        for (int64_t b0 = 0; b0 < k; b0 += 32) {
          double amax = 0;
          for (int64_t t = b0; t < std::min(k, b0 + 32); ++t) {
            amax = std::max(amax, std::fabs(double(x.row(i)[t])));
          }
          for (int64_t t = b0; t < std::min(k, b0 + 32); ++t) {
            const double p = double(wd[j * k + t]) * x.row(i)[t];
            ref += p;
            abs += std::fabs(p);
            act_err += std::fabs(double(wd[j * k + t])) * amax / 254.0;
          }
        }
        const double tol = (act8 ? act_err : 0.0) + 1e-5 * abs + 1e-5;
        ASSERT_NEAR(y.row(i)[j], ref, tol)
            << dtype_name(type) << " n=" << n << " i=" << i << " j=" << j;
      }
    }
  }
}

// The server's batch-invariant backend: a row's output is the same bits whether it is alone,
// in a small batch (weight-major panels) or in a large one (activation-major form).
TEST_P(Matmul, BatchInvariantBackendGivesEveryRowTheSameBits) {
  const DType type = GetParam();
  const int64_t block = dtype_info(type).block_size;
  const int64_t k = block == 1 ? 520 : block == 32 ? 17 * 32 : 2 * 256, m = 77;
  const std::vector<float> wf = random_floats(m * k, 3);
  const uint64_t rb = *row_bytes(type, k);
  std::vector<uint8_t> wq(rb * m);
  for (int64_t r = 0; r < m; ++r) quantize_row(type, wf.data() + r * k, wq.data() + r * rb, k);
  const TensorView w{type, {m, k}, wq.data(), rb * m};
  auto backend = make_cpu_backend(2, /*batch_invariant=*/true);
  Activations big, y_big;
  fill(big, 40, k, 7);
  backend->matmul(big, w, nullptr, y_big);
  for (int64_t n : {1, 3, 13, 17}) {
    Activations x, y;
    x.resize(n, k);
    const int64_t first = 40 - n;  // the last n rows of the big batch
    for (int64_t i = 0; i < n; ++i) std::copy_n(big.row(first + i), k, x.row(i));
    backend->matmul(x, w, nullptr, y);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        ASSERT_EQ(y.row(i)[j], y_big.row(first + i)[j])
            << dtype_name(type) << " n=" << n << " i=" << i << " j=" << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Matmul,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0,
                                           DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kQ5_0),
                         [](const auto& tp) { return std::string(dtype_name(tp.param)); });

TEST(RmsNorm, OddGroupsMatchReference) {
  auto backend = make_cpu_backend(2);
  for (int64_t group : {7, 40, 129}) {
    const int64_t groups = 3, rows = 5;
    Activations x, y;
    fill(x, rows, group * groups, 3);
    const std::vector<float> wv = random_floats(group, 4);
    const TensorView w{DType::kF32, {group}, wv.data(), group * sizeof(float)};
    backend->rms_norm(x, w, 1e-5f, 1.0f, group, y);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const float* xr = x.row(r) + g * group;
        double ss = 0;
        for (int64_t i = 0; i < group; ++i) ss += double(xr[i]) * xr[i];
        const double inv = 1.0 / std::sqrt(ss / double(group) + 1e-5);
        for (int64_t i = 0; i < group; ++i) {
          const double ref = xr[i] * inv * (wv[i] + 1.0);
          EXPECT_NEAR(y.row(r)[g * group + i], ref, 1e-5 * std::fabs(ref) + 1e-6);
        }
      }
    }
  }
}

// Two sequences (a prompt chunk of 5 tokens after 6 cached ones, and a single decode token),
// grouped-query heads, a head size that is not a multiple of 16, blocks of 4 positions.
TEST(Attention, PagedGqaMatchesReference) {
  const int64_t n_heads = 6, n_kv = 2, hd = 20, bs = 4;
  AttentionParams p{n_heads, n_kv, hd, 1.0f / std::sqrt(float(hd)), 0.0f, 0};
  KvCache cache(1, n_kv, hd, bs, 16);
  auto backend = make_cpu_backend(2);
  const std::vector<int32_t> table0 = {3, 0, 7}, table1 = {5, 9};
  // Full histories, so the reference can attend over them.
  const int64_t len0 = 11, len1 = 6;
  Activations kall0, vall0, kall1, vall1;
  fill(kall0, len0, n_kv * hd, 20);
  fill(vall0, len0, n_kv * hd, 21);
  fill(kall1, len1, n_kv * hd, 22);
  fill(vall1, len1, n_kv * hd, 23);
  // First step: sequence 0 positions 0..5, sequence 1 positions 0..4.
  auto run = [&](int64_t s0, int64_t n0, int64_t s1, int64_t n1, Activations& q, Activations& out) {
    Activations k, v;
    k.resize(n0 + n1, n_kv * hd);
    v.resize(n0 + n1, n_kv * hd);
    for (int64_t t = 0; t < n0; ++t) {
      std::copy_n(kall0.row(s0 + t), n_kv * hd, k.row(t));
      std::copy_n(vall0.row(s0 + t), n_kv * hd, v.row(t));
    }
    for (int64_t t = 0; t < n1; ++t) {
      std::copy_n(kall1.row(s1 + t), n_kv * hd, k.row(n0 + t));
      std::copy_n(vall1.row(s1 + t), n_kv * hd, v.row(n0 + t));
    }
    fill(q, n0 + n1, n_heads * hd, static_cast<uint32_t>(30 + s0));
    const SeqSlice seqs[2] = {{0, n0, s0, table0}, {n0, n1, s1, table1}};
    backend->attention(q, k, v, cache, 0, seqs, p, out);
  };
  Activations q, out;
  run(0, 6, 0, 5, q, out);
  run(6, 5, 5, 1, q, out);
  for (int64_t r = 0; r < 6; ++r) {
    const bool first = r < 5;
    const Activations& ks = first ? kall0 : kall1;
    const Activations& vs = first ? vall0 : vall1;
    const int64_t pos = first ? 6 + r : 5;
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t kvh = h / (n_heads / n_kv);
      std::vector<double> sc(static_cast<size_t>(pos + 1));
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j <= pos; ++j) {
        double d = 0;
        for (int64_t t = 0; t < hd; ++t)
          d += double(q.row(r)[h * hd + t]) * ks.row(j)[kvh * hd + t];
        sc[j] = d * p.scale;
        mx = std::max(mx, sc[j]);
      }
      for (double& s : sc) sum += (s = std::exp(s - mx));
      for (int64_t t = 0; t < hd; ++t) {
        double o = 0;
        for (int64_t j = 0; j <= pos; ++j) o += sc[j] / sum * vs.row(j)[kvh * hd + t];
        EXPECT_NEAR(out.row(r)[h * hd + t], o, 1e-5) << "row " << r << " head " << h;
      }
    }
  }
}

}  // namespace
}  // namespace loom

namespace loom {
namespace {

// matmul_many (one pass over q/k/v or gate/up) gives exactly what separate matmuls give, with
// and without biases, for packed and for other weight types.
TEST(MatmulMany, EqualsSeparateMatmulsBitForBit) {
  for (DType type : {DType::kQ4_0, DType::kQ4_K, DType::kF16}) {
    const int64_t k = 512;
    const std::vector<int64_t> ms = {48, 16, 32};
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<std::vector<float>> biases;
    std::vector<TensorView> ws, bs;
    for (size_t i = 0; i < ms.size(); ++i) {
      const std::vector<float> wf = random_floats(ms[i] * k, static_cast<uint32_t>(20 + i));
      const uint64_t rb = *row_bytes(type, k);
      bytes.emplace_back(rb * ms[i]);
      for (int64_t r = 0; r < ms[i]; ++r) {
        quantize_row(type, wf.data() + r * k, bytes.back().data() + r * rb, k);
      }
      biases.push_back(random_floats(ms[i], static_cast<uint32_t>(30 + i)));
    }
    for (size_t i = 0; i < ms.size(); ++i) {
      ws.push_back({type, {ms[i], k}, bytes[i].data(), bytes[i].size()});
      bs.push_back({DType::kF32, {ms[i]}, biases[i].data(), biases[i].size() * sizeof(float)});
    }
    auto backend = make_cpu_backend(2);
    for (int64_t n : {1, 5}) {
      Activations x;
      fill(x, n, k, static_cast<uint32_t>(40 + n));
      Activations one[3], many[3];
      for (size_t i = 0; i < 3; ++i) backend->matmul(x, ws[i], i == 1 ? nullptr : &bs[i], one[i]);
      const Backend::MatmulTarget targets[] = {
          {&ws[0], &bs[0], &many[0]}, {&ws[1], nullptr, &many[1]}, {&ws[2], &bs[2], &many[2]}};
      backend->matmul_many(x, targets);
      for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(many[i].rows(), n);
        ASSERT_EQ(many[i].cols(), ms[i]);
        for (int64_t j = 0; j < n * ms[i]; ++j) {
          ASSERT_EQ(many[i].data()[j], one[i].data()[j]) << dtype_name(type) << " target " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace loom
