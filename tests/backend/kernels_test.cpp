// Every CPU kernel against the float32 reference (dequantize_row + a double-precision dot) on
// random inputs whose sizes are not multiples of the vector width, for the scalar path and —
// where the CPU has it — the AVX-512 path.
//
// Tolerances:
// - float-family weights (F32/F16/BF16) and the prefill micro-kernel: the weights convert
//   exactly, so only float32 summation differs: |got - ref| <= 1e-5 * sum|w*x| + 1e-6.
// - quantized weights in decode meet 8-bit activations: each activation moves by at most half a
//   step, d_b / 2 with d_b = max|x| / 127 over its block of 32, so |got - ref| is bounded by
//   sum_i |w_i| * d_b(i) / 2 (plus float32 rounding, 1e-5 * sum|w*x|).
// - dequantization to float32 for prefill panels is bit-exact with dequantize_row.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/kernels/kernels.h"
#include "quant/half.h"
#include "quant/quant.h"

namespace loom::cpu::kernels {
namespace {

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

// The first 64-byte aligned float of v (callers size v 16 floats over what they use).
float* aligned(std::vector<float>& v) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
}

std::vector<uint8_t> quantize(DType type, const std::vector<float>& w, int64_t rows, int64_t k) {
  const uint64_t rb = *row_bytes(type, k);
  std::vector<uint8_t> q(rb * rows);
  for (int64_t r = 0; r < rows; ++r) quantize_row(type, w.data() + r * k, q.data() + r * rb, k);
  return q;
}

std::vector<float> dequantize(DType type, const uint8_t* q, int64_t k) {
  std::vector<float> out(static_cast<size_t>(k));
  dequantize_row(type, q, out.data(), k);
  return out;
}

struct Ref {
  double dot = 0, abs = 0, act_err = 0;
};
// Reference dot of the dequantized weights with x, its magnitude, and the bound of the 8-bit
// activation error.
Ref reference(const std::vector<float>& w, const float* x, int64_t k) {
  Ref r;
  for (int64_t b = 0; b < k; b += 32) {
    double amax = 0;
    for (int64_t i = b; i < std::min(k, b + 32); ++i)
      amax = std::max(amax, std::fabs(double(x[i])));
    for (int64_t i = b; i < std::min(k, b + 32); ++i) {
      r.dot += double(w[i]) * x[i];
      r.abs += std::fabs(double(w[i]) * x[i]);
      r.act_err += std::fabs(double(w[i])) * amax / 127.0 / 2.0;
    }
  }
  return r;
}

// The AVX2 tier's functions are called directly wherever the CPU has AVX2 (they are what a CPU
// without AVX-512 runs); LOOM_KERNELS=avx2 also runs the whole suite through them (ctest).
bool cpu_has_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

struct QCase {
  DType type;
  QDotFn scalar_fn, avx_fn;
  DequantFn avx_dequant;
  QDotFn avx2_fn;
};

class QuantDot : public ::testing::TestWithParam<QCase> {};

TEST_P(QuantDot, MatchesFloatReferenceWithinActivationRounding) {
  const QCase c = GetParam();
  const int64_t block = dtype_info(c.type).block_size;
  // Odd numbers of blocks: 37 blocks of 32 (1184), or 3 super-blocks of 256 (768).
  const int64_t k = block == 32 ? 37 * 32 : 3 * 256;
  const int64_t rows = 5;
  const std::vector<float> w = random_floats(rows * k, 1);
  const std::vector<uint8_t> q = quantize(c.type, w, rows, k);
  const uint64_t rb = *row_bytes(c.type, k);
  std::vector<uint8_t> buf(static_cast<size_t>(qact_bytes(k)) + 64);
  void* aligned =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
  for (uint32_t seed = 0; seed < 4; ++seed) {
    // Activations with outliers, as real hidden states have.
    std::vector<float> x = random_floats(k, 100 + seed);
    x[seed * 7] = 20.0f;
    const QAct a = quantize_act(x.data(), k, aligned);
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<float> wd = dequantize(c.type, q.data() + r * rb, k);
      const Ref ref = reference(wd, x.data(), k);
      const double tol = ref.act_err + 1e-5 * ref.abs + 1e-6;
      const float s = c.scalar_fn(q.data() + r * rb, a, k);
      EXPECT_NEAR(s, ref.dot, tol) << dtype_name(c.type) << " scalar row " << r;
      if (use_avx512()) {
        const float v = c.avx_fn(q.data() + r * rb, a, k);
        EXPECT_NEAR(v, ref.dot, tol) << dtype_name(c.type) << " avx512 row " << r;
        // Both paths compute the same integer block sums; only float rounding differs.
        EXPECT_NEAR(v, s, 1e-5 * ref.abs + 1e-6) << dtype_name(c.type) << " row " << r;
      }
      if (cpu_has_avx2()) {
        const float v = c.avx2_fn(q.data() + r * rb, a, k);
        EXPECT_NEAR(v, ref.dot, tol) << dtype_name(c.type) << " avx2 row " << r;
        EXPECT_NEAR(v, s, 1e-5 * ref.abs + 1e-6) << dtype_name(c.type) << " avx2 row " << r;
      }
    }
  }
  if (use_avx512()) {
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> fast(static_cast<size_t>(k));
      c.avx_dequant(q.data() + r * rb, fast.data(), k);
      EXPECT_EQ(fast, dequantize(c.type, q.data() + r * rb, k)) << dtype_name(c.type);
    }
  }
  if (cpu_has_avx2() && (c.type == DType::kQ4_0 || c.type == DType::kQ8_0)) {
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> fast(static_cast<size_t>(k));
      (c.type == DType::kQ4_0 ? avx2::dequant_q4_0 : avx2::dequant_q8_0)(q.data() + r * rb,
                                                                         fast.data(), k);
      EXPECT_EQ(fast, dequantize(c.type, q.data() + r * rb, k)) << dtype_name(c.type) << " avx2";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, QuantDot,
                         ::testing::Values(QCase{DType::kQ4_0, scalar::dot_q4_0, avx512::dot_q4_0,
                                                 avx512::dequant_q4_0, avx2::dot_q4_0},
                                           QCase{DType::kQ8_0, scalar::dot_q8_0, avx512::dot_q8_0,
                                                 avx512::dequant_q8_0, avx2::dot_q8_0},
                                           QCase{DType::kQ4_K, scalar::dot_q4_k, avx512::dot_q4_k,
                                                 avx512::dequant_q4_k, avx2::dot_q4_k},
                                           QCase{DType::kQ6_K, scalar::dot_q6_k, avx512::dot_q6_k,
                                                 avx512::dequant_q6_k, avx2::dot_q6_k}),
                         [](const auto& tp) { return std::string(dtype_name(tp.param.type)); });

// The packed 16-row kernels: every (weight row, activation row) within the activation
// rounding bound of the float reference and within float rounding of the file-layout scalar dot;
// and a row's result bit-identical whatever the number of activation rows computed with it
// (the server's batch invariance rests on this).
class PackedGemm : public ::testing::TestWithParam<DType> {};

TEST_P(PackedGemm, MatchesReferenceAndIsBatchInvariant) {
  const DType type = GetParam();
  if (!use_avx512()) GTEST_SKIP() << "packed kernels need AVX-512 VNNI";
  const int64_t block = dtype_info(type).block_size;
  const int64_t k = block == 32 ? 37 * 32 : 3 * 256;  // odd numbers of blocks
  const int64_t m = 3 * kPackRows;
  ASSERT_TRUE(packable(type, m, k));
  ASSERT_FALSE(packable(type, m + 1, k));
  const std::vector<float> w = random_floats(m * k, 11);
  const std::vector<uint8_t> q = quantize(type, w, m, k);
  const uint64_t rb = *row_bytes(type, k);
  std::vector<uint8_t> packed(q.size());
  for (int64_t g = 0; g < m / kPackRows; ++g) {
    pack_rows16(type, q.data() + g * kPackRows * rb, rb, k, packed.data() + g * kPackRows * rb);
  }
  // 21 activation rows: one full tile of 16 and a tail of 5.
  const int64_t n = 21;
  const int64_t qb = qact_bytes(k);
  std::vector<uint8_t> buf(static_cast<size_t>(n * qb) + 64);
  auto* base =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
  std::vector<std::vector<float>> xs;
  std::vector<QAct> acts;
  for (int64_t c = 0; c < n; ++c) {
    xs.push_back(random_floats(k, 200 + static_cast<uint32_t>(c)));
    xs.back()[(c * 13) % k] = 15.0f;
    acts.push_back(quantize_act(xs.back().data(), k, base + c * qb));
  }
  std::vector<float> y(static_cast<size_t>(n * m));
  for (int64_t g = 0; g < m / kPackRows; ++g) {
    packed_gemm(type, packed.data() + g * kPackRows * rb, k, acts.data(), n,
                y.data() + g * kPackRows, m);
  }
  const QDotFn file_dot = type == DType::kQ4_0   ? scalar::dot_q4_0
                          : type == DType::kQ4_K ? scalar::dot_q4_k
                          : type == DType::kQ6_K ? scalar::dot_q6_k
                                                 : scalar::dot_q8_0;
  for (int64_t r = 0; r < m; ++r) {
    const std::vector<float> wd = dequantize(type, q.data() + r * rb, k);
    for (int64_t c = 0; c < n; ++c) {
      const Ref ref = reference(wd, xs[c].data(), k);
      const float got = y[c * m + r];
      EXPECT_NEAR(got, ref.dot, ref.act_err + 1e-5 * ref.abs + 1e-6) << "row " << r << " col " << c;
      EXPECT_NEAR(got, file_dot(q.data() + r * rb, acts[c], k), 1e-5 * ref.abs + 1e-6)
          << "row " << r << " col " << c;
    }
  }
  // Each activation row alone, and rows 3..9 as a batch of 7: the same bits.
  for (int64_t c = 0; c < n; ++c) {
    std::vector<float> one(static_cast<size_t>(m));
    for (int64_t g = 0; g < m / kPackRows; ++g) {
      packed_gemm(type, packed.data() + g * kPackRows * rb, k, &acts[c], 1,
                  one.data() + g * kPackRows, m);
    }
    for (int64_t r = 0; r < m; ++r) ASSERT_EQ(one[r], y[c * m + r]) << "row " << r << " col " << c;
  }
  std::vector<float> seven(static_cast<size_t>(7 * m));
  for (int64_t g = 0; g < m / kPackRows; ++g) {
    packed_gemm(type, packed.data() + g * kPackRows * rb, k, acts.data() + 3, 7,
                seven.data() + g * kPackRows, m);
  }
  for (int64_t c = 0; c < 7; ++c) {
    for (int64_t r = 0; r < m; ++r) ASSERT_EQ(seven[c * m + r], y[(c + 3) * m + r]);
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, PackedGemm,
                         ::testing::Values(DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kQ8_0),
                         [](const auto& tp) { return std::string(dtype_name(tp.param)); });

TEST(ActQuant, RoundTripWithinHalfAStep) {
  const int64_t k = 7 * 32;
  std::vector<float> x = random_floats(k, 7);
  x[3] = 0.0f;
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block: d = 0, q = 0
  std::vector<uint8_t> buf(static_cast<size_t>(qact_bytes(k)) + 64);
  void* aligned =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
  const QAct a = quantize_act(x.data(), k, aligned);
  for (int64_t b = 0; b < k / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    EXPECT_FLOAT_EQ(a.d[b], amax / 127.0f);
    for (int h = 0; h < 2; ++h) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += a.qs[b * 32 + h * 16 + i];
      EXPECT_FLOAT_EQ(a.s16[2 * b + h], a.d[b] * static_cast<float>(sum));
    }
    for (int i = 0; i < 32; ++i) {
      EXPECT_NEAR(a.qs[b * 32 + i] * a.d[b], x[b * 32 + i], a.d[b] / 2 * 1.0001f + 1e-12f);
    }
  }
}

struct FCase {
  DType type;
  FDotFn scalar_fn, avx_fn, avx2_fn;
};
class FloatDot : public ::testing::TestWithParam<FCase> {};

TEST_P(FloatDot, MatchesFloatReference) {
  const FCase c = GetParam();
  for (int64_t k : {1, 15, 17, 1001, 2053}) {
    const std::vector<float> w = random_floats(k, 3);
    const std::vector<uint8_t> q = quantize(c.type, w, 1, k);
    const std::vector<float> wd = dequantize(c.type, q.data(), k);
    const std::vector<float> x = random_floats(k, 4);
    const Ref ref = reference(wd, x.data(), k);
    const double tol = 1e-5 * ref.abs + 1e-6;
    EXPECT_NEAR(c.scalar_fn(q.data(), x.data(), k), ref.dot, tol)
        << dtype_name(c.type) << " k=" << k;
    if (use_avx512()) {
      EXPECT_NEAR(c.avx_fn(q.data(), x.data(), k), ref.dot, tol)
          << dtype_name(c.type) << " k=" << k;
    }
    if (cpu_has_avx2()) {
      EXPECT_NEAR(c.avx2_fn(q.data(), x.data(), k), ref.dot, tol)
          << dtype_name(c.type) << " avx2 k=" << k;
    }
  }
  if (cpu_has_avx2() && c.type != DType::kF32) {
    for (int64_t k : {1, 7, 1001}) {
      const std::vector<uint8_t> q = quantize(c.type, random_floats(k, 6), 1, k);
      std::vector<float> fast(static_cast<size_t>(k));
      (c.type == DType::kF16 ? avx2::dequant_f16 : avx2::dequant_bf16)(q.data(), fast.data(), k);
      EXPECT_EQ(fast, dequantize(c.type, q.data(), k)) << "avx2 k=" << k;
    }
  }
  if (use_avx512() && c.type != DType::kF32) {
    const int64_t k = 1001;
    const std::vector<uint8_t> q = quantize(c.type, random_floats(k, 5), 1, k);
    std::vector<float> fast(static_cast<size_t>(k));
    (c.type == DType::kF16 ? avx512::dequant_f16 : avx512::dequant_bf16)(q.data(), fast.data(), k);
    EXPECT_EQ(fast, dequantize(c.type, q.data(), k));
  }
}

// The several-row dot (speculative checking passes) is, row for row, bit for bit the one-row
// dot of its tier, for every row count and awkward lengths.
TEST_P(FloatDot, RowsDotIsTheOneRowDotBitForBit) {
  const FCase c = GetParam();
  const Kernels kern = find_kernels(c.type);
  if (kern.fdot_rows == nullptr) GTEST_SKIP() << "no several-row dot on this tier";
  for (int64_t k : {1, 15, 16, 63, 64, 65, 1001, 4097}) {
    const std::vector<uint8_t> q = quantize(c.type, random_floats(k, 7), 1, k);
    std::vector<std::vector<float>> xs;
    for (int r = 0; r < 16; ++r) xs.push_back(random_floats(k, 100 + static_cast<unsigned>(r)));
    std::vector<const float*> ptrs;
    for (const auto& x : xs) ptrs.push_back(x.data());
    for (int rows = 1; rows <= 16; ++rows) {
      std::vector<float> out(static_cast<size_t>(rows));
      kern.fdot_rows(q.data(), ptrs.data(), rows, k, out.data());
      for (int r = 0; r < rows; ++r) {
        const float one = kern.fdot(q.data(), ptrs[static_cast<size_t>(r)], k);
        EXPECT_EQ(std::bit_cast<uint32_t>(out[static_cast<size_t>(r)]),
                  std::bit_cast<uint32_t>(one))
            << dtype_name(c.type) << " k=" << k << " rows=" << rows << " row " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, FloatDot,
    ::testing::Values(FCase{DType::kF32, scalar::dot_f32w, avx512::dot_f32w, avx2::dot_f32w},
                      FCase{DType::kF16, scalar::dot_f16, avx512::dot_f16, avx2::dot_f16},
                      FCase{DType::kBF16, scalar::dot_bf16, avx512::dot_bf16, avx2::dot_bf16}),
    [](const auto& tp) { return std::string(dtype_name(tp.param.type)); });

TEST(GemmPanel32, AllShapesMatchReference) {
  const int64_t kc = 203, ld = 211, ldx = 205, ldy = 37;
  const std::vector<float> w = random_floats(kPanel32 * ld, 8);
  const std::vector<float> x = random_floats(13 * ldx, 9);
  std::vector<float> wt_buf(static_cast<size_t>(kc * kPanel32) + 16);
  float* wt =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(wt_buf.data()) + 63) & ~uintptr_t{63});
  for (int rows : {1, 5, 16, 17, 31, 32}) {
    pack_panel32(DType::kF32, w.data(), ld, rows, kc, wt);
    for (int64_t kk = 0; kk < kc; ++kk) {
      for (int r = 0; r < kPanel32; ++r) {
        ASSERT_EQ(wt[kk * kPanel32 + r], r < rows ? w[r * ld + kk] : 0.0f) << kk << "," << r;
      }
    }
    for (int64_t n : {1, 2, 11, 12, 13}) {
      for (bool acc : {false, true}) {
        std::vector<float> y(static_cast<size_t>(13 * ldy), 0.5f);
        gemm_panel32(wt, kc, x.data(), ldx, n, y.data(), ldy, rows, acc);
        for (int64_t c = 0; c < 13; ++c) {
          for (int r = 0; r < static_cast<int>(ldy); ++r) {
            if (c >= n || r >= rows) {
              ASSERT_EQ(y[c * ldy + r], 0.5f) << "wrote outside the panel";
              continue;
            }
            double ref = acc ? 0.5 : 0.0, abs = 0;
            for (int64_t i = 0; i < kc; ++i) {
              ref += double(w[r * ld + i]) * x[c * ldx + i];
              abs += std::fabs(double(w[r * ld + i]) * x[c * ldx + i]);
            }
            ASSERT_NEAR(y[c * ldy + r], ref, 1e-5 * abs + 1e-6)
                << rows << "x" << n << " r=" << r << " c=" << c;
          }
        }
      }
    }
  }
}

// F16/BF16 rows go straight from their bits to the transposed float panel: bit-exact with
// dequantize_row, for every row count and a k that is not a multiple of 16, at an offset
// column (the panels after the first start mid-row).
TEST(GemmPanel32, HalfTypesConvertExactly) {
  const int64_t k = 203 + 37, k0 = 37, kc = 203;
  for (DType type : {DType::kF16, DType::kBF16}) {
    const std::vector<uint8_t> q = quantize(type, random_floats(kPanel32 * k, 12), kPanel32, k);
    const uint64_t rb = *row_bytes(type, k);
    std::vector<float> wt_buf(static_cast<size_t>(kc * kPanel32) + 16);
    float* wt = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(wt_buf.data()) + 63) &
                                         ~uintptr_t{63});
    for (int rows : {1, 15, 16, 17, 32}) {
      pack_panel32(type, q.data() + 2 * k0, k, rows, kc, wt);
      for (int r = 0; r < kPanel32; ++r) {
        const std::vector<float> ref =
            r < rows ? dequantize(type, q.data() + r * rb, k) : std::vector<float>(k, 0.0f);
        for (int64_t kk = 0; kk < kc; ++kk) {
          ASSERT_EQ(wt[kk * kPanel32 + r], ref[k0 + kk])
              << dtype_name(type) << " rows=" << rows << " r=" << r << " kk=" << kk;
        }
      }
    }
  }
}

TEST(TransposeF32, OddShapes) {
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{1, 1}, {5, 37}, {16, 16}, {48, 131}, {33, 7}}) {
    const int64_t lds = cols + 3, ldd = rows + 5;
    const std::vector<float> src = random_floats(rows * lds, 13);
    std::vector<float> dst(static_cast<size_t>(cols * ldd), 0.25f);
    transpose_f32(src.data(), lds, rows, cols, dst.data(), ldd);
    for (int64_t j = 0; j < cols; ++j) {
      for (int64_t i = 0; i < ldd; ++i) {
        ASSERT_EQ(dst[j * ldd + i], i < rows ? src[i * lds + j] : 0.25f) << i << "," << j;
      }
    }
    if (cpu_has_avx2()) {
      std::vector<float> d2(static_cast<size_t>(cols * ldd), 0.25f);
      avx2::transpose(src.data(), lds, rows, cols, d2.data(), ldd);
      ASSERT_EQ(d2, dst) << "avx2 " << rows << "x" << cols;
    }
  }
}

// The activation-major form against the double-precision reference, and bit for bit against
// the weight-major panel form over the same kc panels: the matmul picks one or the other by
// batch size, so a row's output must not depend on which.
TEST(GemmXt, MatchesReferenceAndPanelFormBitForBit) {
  const int64_t k = 203, kc = 101, ldw = 211, ldx = 205;
  const std::vector<float> w = random_floats(kXtRows * ldw, 14), x = random_floats(48 * ldx, 15);
  for (int64_t n : {16, 32, 48}) {
    const int64_t ldxt = n;
    std::vector<float> xt_buf(static_cast<size_t>(k * ldxt) + 16);
    float* xt = aligned(xt_buf);
    transpose_f32(x.data(), ldx, n, k, xt, ldxt);
    for (int rows : {1, 5, 11, 12}) {
      const int64_t ldyt = n;
      std::vector<float> yt_buf(static_cast<size_t>(rows * ldyt) + 16);
      float* yt = aligned(yt_buf);
      for (int64_t k0 = 0; k0 < k; k0 += kc) {
        gemm_xt(w.data() + k0, ldw, rows, std::min(kc, k - k0), xt + k0 * ldxt, ldxt, n, yt, ldyt,
                k0 > 0);
      }
      // The panel form, same panels.
      std::vector<float> wt_buf(static_cast<size_t>(kc * kPanel32) + 16);
      float* wt = aligned(wt_buf);
      std::vector<float> y(static_cast<size_t>(n * kPanel32));
      for (int64_t k0 = 0; k0 < k; k0 += kc) {
        const int64_t c = std::min(kc, k - k0);
        pack_panel32(DType::kF32, w.data() + k0, ldw, rows, c, wt);
        gemm_panel32(wt, c, x.data() + k0, ldx, n, y.data(), kPanel32, rows, k0 > 0);
      }
      for (int r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < n; ++c) {
          double ref = 0, abs = 0;
          for (int64_t i = 0; i < k; ++i) {
            ref += double(w[r * ldw + i]) * x[c * ldx + i];
            abs += std::fabs(double(w[r * ldw + i]) * x[c * ldx + i]);
          }
          ASSERT_NEAR(yt[r * ldyt + c], ref, 1e-5 * abs + 1e-6) << rows << " r=" << r << " c=" << c;
          // The AVX2 tier never uses the panel form (its matmul takes gemm_xt for every n), so
          // the two need not agree there.
          if (!use_avx2()) {
            ASSERT_EQ(yt[r * ldyt + c], y[c * kPanel32 + r])
                << "n=" << n << " r=" << r << " c=" << c;
          }
        }
      }
    }
  }
}

// The AVX2 quantizer gives the same bytes and sums as quantize_act (the same arithmetic).
TEST(Avx2Tier, QuantizerMatchesQuantizeAct) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  const int64_t k = 37 * 32;
  std::vector<float> x = random_floats(k, 21);
  x[5] = -30.0f;
  for (int i = 64; i < 96; ++i) x[i] = 0.0f;  // an all-zero block
  std::vector<uint8_t> buf(static_cast<size_t>(qact_bytes(k)) + 64);
  const QAct a = quantize_act(
      x.data(), k,
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63}));
  std::vector<int8_t> qs(k);
  std::vector<float> d(k / 32), s16(k / 16);
  std::vector<int32_t> isum(k / 32);
  avx2::quantize_row(x.data(), k, qs.data(), d.data(), s16.data(), isum.data());
  for (int64_t i = 0; i < k; ++i) ASSERT_EQ(qs[i], a.qs[i]) << i;
  for (int64_t b = 0; b < k / 32; ++b) {
    ASSERT_EQ(d[b], a.d[b]) << b;
    ASSERT_EQ(isum[b], a.isum[b]) << b;
    ASSERT_EQ(s16[2 * b], a.s16[2 * b]) << b;
    ASSERT_EQ(s16[2 * b + 1], a.s16[2 * b + 1]) << b;
  }
}

// Regression (fuzz_model_load): a NaN or infinite activation was converted to int (UB) and its
// block sum overflowed the packed Q4_0 kernel's correction term. Every tier now marks the block
// NaN: qs 0, isum 0, d NaN, so dot products with it are NaN, and the finite blocks are as before.
TEST(QuantizeAct, NonFiniteBlocksAreNanNotUndefined) {
  const int64_t k = 4 * 32;
  std::vector<float> x = random_floats(k, 5);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  x[100] = -std::numeric_limits<float>::infinity();
  std::vector<uint8_t> buf(static_cast<size_t>(qact_bytes(k)) + 64);
  void* base =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
  const QAct a = quantize_act(x.data(), k, base);
  for (int64_t b : {0, 1, 3}) {
    EXPECT_TRUE(std::isnan(a.d[b])) << b;
    EXPECT_EQ(a.isum[b], 0) << b;
    for (int i = 0; i < 32; ++i) EXPECT_EQ(a.qs[b * 32 + i], 0) << b;
  }
  EXPECT_TRUE(std::isfinite(a.d[2]));
  if (cpu_has_avx2()) {
    std::vector<int8_t> qs(k);
    std::vector<float> d(k / 32), s16(k / 16);
    std::vector<int32_t> isum(k / 32);
    avx2::quantize_row(x.data(), k, qs.data(), d.data(), s16.data(), isum.data());
    for (int64_t b = 0; b < k / 32; ++b) {
      EXPECT_EQ(std::isnan(d[b]), std::isnan(a.d[b])) << b;
      EXPECT_EQ(isum[b], a.isum[b]) << b;
    }
  }
}

// attend_group over F16, BF16 and Q8_0 rows equals attend_group over the same rows dequantized
// to float32, bit for bit: the typed loads widen exactly, and the arithmetic is the float
// path's. Awkward run splits, group sizes and head sizes (the 64/128 register paths and the
// generic one); the AVX2 tier's run of this test covers the scalar path.
TEST(TypedKvAttention, EqualsFloatAttentionOverDequantizedRows) {
  for (DType type : {DType::kF16, DType::kBF16, DType::kQ8_0}) {
    for (int64_t hd : {32, 64, 96, 128}) {
      for (int nq : {1, 2, 3, 8}) {
        const int64_t n_kv_heads = 2, kv_dim = n_kv_heads * hd, n_keys = 37;
        const int64_t row = static_cast<int64_t>(*row_bytes(type, kv_dim));
        std::vector<uint8_t> kq(n_keys * row), vq(n_keys * row);
        std::vector<float> kf(n_keys * kv_dim), vf(n_keys * kv_dim);
        const std::vector<float> ks = random_floats(n_keys * kv_dim, 31 + hd),
                                 vs = random_floats(n_keys * kv_dim, 47 + nq);
        for (int64_t t = 0; t < n_keys; ++t) {
          store_kv_row(ks.data() + t * kv_dim, kv_dim, type, kq.data() + t * row);
          store_kv_row(vs.data() + t * kv_dim, kv_dim, type, vq.data() + t * row);
          dequantize_row(type, kq.data() + t * row, kf.data() + t * kv_dim, kv_dim);
          dequantize_row(type, vq.data() + t * row, vf.data() + t * kv_dim, kv_dim);
        }
        const std::vector<float> q = random_floats(nq * hd, 7);
        const int64_t head = 1;  // the second KV head: offsets inside the row
        const int64_t head_bytes = row / n_kv_heads;
        auto runs_of = [&](const uint8_t* k, const uint8_t* v, int64_t stride) {
          std::vector<KvRun> runs;
          for (int64_t j = 0; j < n_keys;) {
            const int64_t n = std::min<int64_t>(n_keys - j, j == 0 ? 5 : 16);
            runs.push_back({k + j * stride + head * (stride / n_kv_heads),
                            v + j * stride + head * (stride / n_kv_heads), n});
            j += n;
          }
          return runs;
        };
        const auto typed = runs_of(kq.data(), vq.data(), row);
        const auto flt = runs_of(reinterpret_cast<const uint8_t*>(kf.data()),
                                 reinterpret_cast<const uint8_t*>(vf.data()), kv_dim * 4);
        ASSERT_EQ(head_bytes * n_kv_heads, row);
        std::vector<float> s1(nq * n_keys), s2(nq * n_keys), o1(nq * hd), o2(nq * hd);
        attend_group(q.data(), nq, hd, typed.data(), static_cast<int>(typed.size()), row, type,
                     0.125f, 0.0f, s1.data(), o1.data());
        attend_group(q.data(), nq, hd, flt.data(), static_cast<int>(flt.size()), kv_dim * 4,
                     DType::kF32, 0.125f, 0.0f, s2.data(), o2.data());
        for (int64_t i = 0; i < nq * hd; ++i) {
          ASSERT_EQ(o1[i], o2[i]) << dtype_name(type) << " hd " << hd << " nq " << nq << " @" << i;
        }
      }
    }
  }
}

// store_kv_row's vector conversions give the scalar fp32_to_fp16 / fp32_to_bf16 bits, for
// ordinary values, ties, overflow, denormals, infinities and NaNs, at an awkward length.
TEST(TypedKvAttention, StoreRowMatchesScalarConversions) {
  std::vector<float> x = random_floats(1003, 77, 1000.0f);
  const float specials[] = {0.0f,
                            -0.0f,
                            65504.0f,
                            65520.0f,
                            70000.0f,
                            -1e30f,
                            5.96e-8f,
                            2.98e-8f,
                            1e-40f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            1.0009765625f,
                            3.0e38f};
  for (size_t i = 0; i < std::size(specials); ++i) x[i * 37] = specials[i];
  x[1002] = std::bit_cast<float>(0x7F800001u);  // a signalling NaN
  std::vector<uint16_t> h(x.size()), b(x.size());
  store_kv_row(x.data(), static_cast<int64_t>(x.size()), DType::kF16,
               reinterpret_cast<uint8_t*>(h.data()));
  store_kv_row(x.data(), static_cast<int64_t>(x.size()), DType::kBF16,
               reinterpret_cast<uint8_t*>(b.data()));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(h[i], fp32_to_fp16(x[i])) << i << " " << x[i];
    ASSERT_EQ(b[i], fp32_to_bf16(x[i])) << i << " " << x[i];
  }
}

TEST(Avx2Tier, GemmXtMatchesReference) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  const int64_t k = 203, kc = 101, ldw = 211, ldx = 205;
  const std::vector<float> w = random_floats(kXtRows * ldw, 22), x = random_floats(48 * ldx, 23);
  for (int64_t n : {16, 48}) {
    std::vector<float> xt_buf(static_cast<size_t>(k * n) + 16);
    float* xt = aligned(xt_buf);
    transpose_f32(x.data(), ldx, n, k, xt, n);
    for (int rows : {1, 5, 6, 7, 12}) {
      std::vector<float> yt_buf(static_cast<size_t>(rows * n) + 16);
      float* yt = aligned(yt_buf);
      for (int64_t k0 = 0; k0 < k; k0 += kc)
        avx2::gemm_xt(w.data() + k0, ldw, rows, std::min(kc, k - k0), xt + k0 * n, n, n, yt, n,
                      k0 > 0);
      for (int r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < n; ++c) {
          double ref = 0, abs = 0;
          for (int64_t i = 0; i < k; ++i) {
            ref += double(w[r * ldw + i]) * x[c * ldx + i];
            abs += std::fabs(double(w[r * ldw + i]) * x[c * ldx + i]);
          }
          ASSERT_NEAR(yt[r * n + c], ref, 1e-5 * abs + 1e-6) << rows << " r=" << r << " c=" << c;
        }
      }
    }
  }
}

TEST(DenseHelpers, DotAxpySumSquares) {
  for (int64_t n : {1, 7, 16, 33, 129}) {
    const std::vector<float> a = random_floats(n, 10), b = random_floats(n, 11);
    double dot = 0, abs = 0, ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      dot += double(a[i]) * b[i];
      abs += std::fabs(double(a[i]) * b[i]);
      ss += double(a[i]) * a[i];
    }
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), dot, 1e-5 * abs + 1e-6);
    EXPECT_NEAR(sum_squares_f32(a.data(), n), ss, 1e-5 * ss + 1e-6);
    std::vector<float> y = b;
    axpy_f32(0.75f, a.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], b[i] + 0.75 * a[i], 1e-6);
  }
}

}  // namespace
}  // namespace loom::cpu::kernels

namespace loom::cpu::kernels {
namespace {

// The vector e^x behind SwiGLU and softmax: within 2 ulp of expf over the whole float range,
// 0 for -inf and far negatives, inf past the top, NaN kept; odd lengths for the masked tail.
TEST(VectorExp, SoftmaxAndSiluMatchLibm) {
  std::vector<float> x;
  for (float v = -110.0f; v < 95.0f; v += 0.0371f) x.push_back(v);
  x.push_back(-INFINITY);
  x.push_back(0.0f);
  const int64_t n = static_cast<int64_t>(x.size());  // not a multiple of 16
  std::vector<float> e = x;
  const float sum = exp_shift_sum(e.data(), n, 0.0f);
  double ref_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float ref = std::exp(x[i]);
    ref_sum += ref;
    if (std::isinf(ref) || ref == 0.0f) {
      EXPECT_EQ(e[i], ref) << x[i];
    } else if (ref < 1.2e-38f) {
      EXPECT_NEAR(e[i], ref, 3e-45f) << x[i];  // denormals: within 2 steps of 1.4e-45
    } else {
      EXPECT_NEAR(e[i], ref, 2.5f * (std::nextafter(ref, INFINITY) - ref)) << x[i];
    }
  }
  if (std::isinf(ref_sum)) {
    EXPECT_TRUE(std::isinf(sum));
  }
  std::vector<float> finite(x.begin(), x.begin() + 2000), u = random_floats(2000, 5);
  std::vector<float> f = finite;
  const float s2 = exp_shift_sum(f.data(), 2000, 3.0f);
  double r2 = 0;
  for (float v : finite) r2 += std::exp(double(v) - 3.0);
  EXPECT_NEAR(s2, r2, 1e-5 * r2);
  std::vector<float> g = random_floats(1003, 6, 4.0f), up = random_floats(1003, 7), o(1003);
  silu_mul(g.data(), up.data(), o.data(), 1003);
  for (int i = 0; i < 1003; ++i) {
    const double ref = g[i] / (1.0 + std::exp(-double(g[i]))) * up[i];
    EXPECT_NEAR(o[i], ref, 1e-6 * std::fabs(ref) + 1e-7) << g[i];
  }
  float nan_in[3] = {NAN, 1.0f, -1.0f};
  exp_shift_sum(nan_in, 3, 0.0f);
  EXPECT_TRUE(std::isnan(nan_in[0]));
}

}  // namespace
}  // namespace loom::cpu::kernels
