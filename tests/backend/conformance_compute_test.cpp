// The backend conformance suite, part 2: matmul for every weight type and batch size, paged
// attention and the encoder ops (see conformance_test.cpp for the suite's promises and
// tolerances).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/conformance_util.h"
#include "core/error.h"
#include "quant/quant.h"

namespace loom::conformance {
namespace {

// --- Matmul ---------------------------------------------------------------------------------

class MatmulConformance : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(MatmulConformance, EveryBatchSizeMatchesReference) {
  const auto [device, type] = GetParam();
  const int64_t block = dtype_info(type).block_size;
  // k spans several 256-wide panels and is not a multiple of 16; m = 131 is not a multiple of
  // any row tile (so Q4_0/Q4_K take the file-layout paths), m = 144 is (a matrix prepared by
  // the backend, as models do, may be repacked: the CPU's packed Q4_0/Q4_K); n covers decode,
  // the 12-row tile and its tail, and the activation-major form.
  const int64_t k = block == 1 ? 1001 : block == 32 ? 37 * 32 : 3 * 256;
  for (const auto& [m, prepared] :
       {std::pair<int64_t, bool>{131, false}, {131, true}, {144, false}, {144, true}}) {
    auto be = make_backend({device, 2, false});
    const Weights w = make_weights(type, m, k, 1);
    const TensorView wv =
        prepared ? be->prepare_weight(w.view, Backend::WeightUse::kMatrix) : w.view;
    const std::vector<float> bias = random_matrix(1, m, 2).v;
    const TensorView b = f32_view(bias);
    for (int64_t n : {1, 2, 3, 5, 13, 17, 45}) {
      const HostMatrix xh = random_matrix(n, k, static_cast<uint32_t>(10 + n));
      const bool with_bias = n != 1 && n != 2;  // every strategy with and without a bias
      Activations x = to_device(*be, xh), yd;
      be->matmul(x, wv, with_bias ? &b : nullptr, yd);
      ASSERT_EQ(yd.rows(), n);
      ASSERT_EQ(yd.cols(), m);
      const HostMatrix y = to_host(*be, yd);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < m; ++j) {
          double ref = with_bias ? bias[j] : 0.0, abs = 0, act_err = 0;
          for (int64_t b0 = 0; b0 < k; b0 += 32) {
            double amax = 0;
            for (int64_t t = b0; t < std::min(k, b0 + 32); ++t) {
              amax = std::max(amax, std::fabs(double(xh.row(i)[t])));
            }
            for (int64_t t = b0; t < std::min(k, b0 + 32); ++t) {
              const double p = double(w.values.row(j)[t]) * xh.row(i)[t];
              ref += p;
              abs += std::fabs(p);
              act_err += std::fabs(double(w.values.row(j)[t])) * amax / 254.0;
            }
          }
          const double tol = (quantized(type) ? act_err : 0.0) + 1e-5 * abs + 1e-5;
          ASSERT_NEAR(y.row(i)[j], ref, tol)
              << dtype_name(type) << " m=" << m << " prepared=" << prepared << " n=" << n
              << " i=" << i << " j=" << j;
        }
      }
    }
  }
}

// A backend that declares batch invariance gives a row the same bits alone, in a small batch
// and in a large one.
TEST_P(MatmulConformance, DeclaredBatchInvarianceHoldsBitForBit) {
  const auto [device, type] = GetParam();
  auto be = make_backend({device, 2, /*batch_invariant=*/true});
  if (!be->batch_invariant()) GTEST_SKIP() << device << " does not declare batch invariance";
  const int64_t block = dtype_info(type).block_size;
  const int64_t k = block == 1 ? 520 : block == 32 ? 17 * 32 : 2 * 256;
  for (const int64_t m : {77, 80}) {  // 80: prepared, the CPU packs Q4_0/Q4_K
    const Weights w = make_weights(type, m, k, 3);
    const TensorView wv = be->prepare_weight(w.view, Backend::WeightUse::kMatrix);
    const HostMatrix big = random_matrix(40, k, 7);
    Activations xb = to_device(*be, big), yb;
    be->matmul(xb, wv, nullptr, yb);
    const HostMatrix y_big = to_host(*be, yb);
    for (int64_t n : {1, 2, 3, 4, 5, 13, 17}) {
      const int64_t first = 40 - n;  // the last n rows of the big batch
      Activations x = be->make_tensor({big.row(first), static_cast<size_t>(n * k)}, n, k), yd;
      be->matmul(x, wv, nullptr, yd);
      const HostMatrix y = to_host(*be, yd);
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < m; ++j) {
          ASSERT_EQ(y.row(i)[j], y_big.row(first + i)[j])
              << dtype_name(type) << " m=" << m << " n=" << n << " i=" << i << " j=" << j;
        }
      }
    }
  }
}

// matmul_many (one pass over q/k/v or gate/up) gives exactly what separate matmuls give.
TEST_P(MatmulConformance, ManyEqualsSeparateMatmulsBitForBit) {
  const auto [device, type] = GetParam();
  auto be = make_backend({device, 2, false});
  const int64_t k = dtype_info(type).block_size == 32 ? 16 * 32 : 512;
  const std::vector<int64_t> ms = {48, 16, 32};
  std::vector<Weights> ws;
  std::vector<std::vector<float>> biases;
  for (size_t i = 0; i < ms.size(); ++i) {
    ws.push_back(make_weights(type, ms[i], k, static_cast<uint32_t>(20 + i)));
    biases.push_back(random_matrix(1, ms[i], static_cast<uint32_t>(30 + i)).v);
  }
  const TensorView b0 = f32_view(biases[0]), b2 = f32_view(biases[2]);
  // As the file stores them, and as prepared for the backend (the CPU packs Q4_0/Q4_K).
  for (const bool prepared : {false, true}) {
    std::vector<TensorView> views;
    for (const Weights& w : ws) {
      views.push_back(prepared ? be->prepare_weight(w.view, Backend::WeightUse::kMatrix) : w.view);
    }
    for (int64_t n : {1, 5, 17}) {
      Activations x = to_device(*be, random_matrix(n, k, static_cast<uint32_t>(40 + n)));
      Activations one[3], many[3];
      const TensorView* bias[3] = {&b0, nullptr, &b2};
      for (size_t i = 0; i < 3; ++i) be->matmul(x, views[i], bias[i], one[i]);
      const Backend::MatmulTarget targets[] = {
          {&views[0], &b0, &many[0]}, {&views[1], nullptr, &many[1]}, {&views[2], &b2, &many[2]}};
      be->matmul_many(x, targets);
      for (size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(many[i].rows(), n);
        ASSERT_EQ(many[i].cols(), ms[i]);
        EXPECT_EQ(be->download_all(many[i]), be->download_all(one[i]))
            << dtype_name(type) << " target " << i << " n=" << n << " prepared=" << prepared;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Backends, MatmulConformance,
    ::testing::Combine(::testing::ValuesIn(available_devices()),
                       ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0,
                                         DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                                         DType::kQ4_K, DType::kQ5_K, DType::kQ6_K)),
    [](const auto& p) {
      std::string s = std::get<0>(p.param) + "_" + std::string(dtype_name(std::get<1>(p.param)));
      std::replace(s.begin(), s.end(), ':', '_');
      return s;
    });

// --- Attention over the paged KV cache -------------------------------------------------------

struct AttnCase {
  int64_t hd, n_kv, group;
  DType kv;
  int64_t window;
  float softcap;
};

// Float64 causal attention of query row q over keys/values [0, pos] (as stored: rounded to the
// cache type), for head h.
std::vector<double> attend_ref(const float* q, const HostMatrix& ks, const HostMatrix& vs,
                               int64_t pos, int64_t h, const AttnCase& c, float scale) {
  const int64_t kvh = h / c.group,
                first = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
  std::vector<double> sc;
  double mx = -INFINITY;
  for (int64_t j = first; j <= pos; ++j) {
    double d = 0;
    for (int64_t t = 0; t < c.hd; ++t) d += double(q[h * c.hd + t]) * ks.row(j)[kvh * c.hd + t];
    d *= scale;
    if (c.softcap > 0) d = c.softcap * std::tanh(d / c.softcap);
    sc.push_back(d);
    mx = std::max(mx, d);
  }
  double sum = 0;
  for (double& s : sc) sum += (s = std::exp(s - mx));
  std::vector<double> o(static_cast<size_t>(c.hd), 0.0);
  for (int64_t j = first; j <= pos; ++j) {
    for (int64_t t = 0; t < c.hd; ++t) o[t] += sc[j - first] / sum * vs.row(j)[kvh * c.hd + t];
  }
  return o;
}

HostMatrix rounded_to(DType type, const HostMatrix& m) {
  HostMatrix out(m.rows, m.cols);
  std::vector<uint8_t> buf(*row_bytes(type, m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    quantize_row(type, m.row(r), buf.data(), m.cols);
    dequantize_row(type, buf.data(), out.row(r), m.cols);
  }
  return out;
}

// Two sequences through two steps: a prompt chunk after cached positions and a decode token,
// in blocks of 4 positions through scattered block tables.
TEST_P(Conformance, PagedAttentionHeadSizesGqaWindowsSoftcapAndKvTypes) {
  auto be = make();
  std::vector<AttnCase> cases;
  for (int64_t hd : {64, 80, 128, 256}) {
    for (int64_t group : {1, 4, 8}) {
      for (DType kv : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
        if (kv == DType::kQ8_0 && hd % 32 != 0) continue;
        cases.push_back({hd, group == 8 ? 1 : 2, group, kv, 0, 0.0f});
      }
    }
    cases.push_back({hd, 2, 4, DType::kF32, 5, 0.0f});    // sliding window
    cases.push_back({hd, 2, 1, DType::kF16, 0, 20.0f});   // gemma2 soft-capping
    cases.push_back({hd, 1, 8, DType::kBF16, 3, 50.0f});  // both
  }
  const int64_t bs = 4;
  const std::vector<int32_t> table0 = {3, 0, 7, 12, 1}, table1 = {5, 9, 2};
  for (const AttnCase& c : cases) {
    SCOPED_TRACE("hd " + std::to_string(c.hd) + " kv heads " + std::to_string(c.n_kv) + " group " +
                 std::to_string(c.group) + " " + std::string(dtype_name(c.kv)) + " window " +
                 std::to_string(c.window) + " softcap " + std::to_string(c.softcap));
    const int64_t n_heads = c.n_kv * c.group, kv_dim = c.n_kv * c.hd;
    const AttentionParams p{n_heads,   c.n_kv,  c.hd, 1.0f / std::sqrt(float(c.hd)),
                            c.softcap, c.window};
    const std::unique_ptr<KvCache> cache = be->make_kv_cache(1, c.n_kv, c.hd, bs, 16, c.kv);
    // Full histories (17 and 9 positions).
    const int64_t len0 = 17, len1 = 9;
    const auto seed = static_cast<uint32_t>(c.hd * 100 + c.group * 10 + c.window);
    const HostMatrix k0 = random_matrix(len0, kv_dim, seed),
                     v0 = random_matrix(len0, kv_dim, seed + 1);
    const HostMatrix k1 = random_matrix(len1, kv_dim, seed + 2),
                     v1 = random_matrix(len1, kv_dim, seed + 3);
    const HostMatrix k0r = rounded_to(c.kv, k0), v0r = rounded_to(c.kv, v0);
    const HostMatrix k1r = rounded_to(c.kv, k1), v1r = rounded_to(c.kv, v1);
    // Step 1: sequence 0 positions 0..13, sequence 1 positions 0..7. Step 2: sequence 0
    // positions 14..16 (3 rows), sequence 1 position 8 (one decode row).
    const int64_t steps[2][4] = {{0, 14, 0, 8}, {14, 3, 8, 1}};
    for (const auto& st : steps) {
      const int64_t s0 = st[0], n0 = st[1], s1 = st[2], n1 = st[3];
      HostMatrix kh(n0 + n1, kv_dim), vh(n0 + n1, kv_dim);
      for (int64_t t = 0; t < n0; ++t) {
        std::copy_n(k0.row(s0 + t), kv_dim, kh.row(t));
        std::copy_n(v0.row(s0 + t), kv_dim, vh.row(t));
      }
      for (int64_t t = 0; t < n1; ++t) {
        std::copy_n(k1.row(s1 + t), kv_dim, kh.row(n0 + t));
        std::copy_n(v1.row(s1 + t), kv_dim, vh.row(n0 + t));
      }
      const HostMatrix qh =
          random_matrix(n0 + n1, n_heads * c.hd, seed + 10 + static_cast<uint32_t>(s0));
      Activations q = to_device(*be, qh), k = to_device(*be, kh), v = to_device(*be, vh), out;
      const SeqSlice seqs[2] = {{0, n0, s0, table0}, {n0, n1, s1, table1}};
      be->begin_step({std::span<const int32_t>(), 1, seqs});
      be->attention(q, k, v, *cache, 0, p, out);
      const HostMatrix o = to_host(*be, out);
      ASSERT_EQ(o.rows, n0 + n1);
      for (int64_t r = 0; r < n0 + n1; ++r) {
        const bool first = r < n0;
        const int64_t pos = first ? s0 + r : s1 + (r - n0);
        for (int64_t h = 0; h < n_heads; ++h) {
          const std::vector<double> ref =
              attend_ref(qh.row(r), first ? k0r : k1r, first ? v0r : v1r, pos, h, c, p.scale);
          for (int64_t t = 0; t < c.hd; ++t) {
            ASSERT_NEAR(o.row(r)[h * c.hd + t], ref[t], 2e-5 * (std::fabs(ref[t]) + 1.0))
                << "row " << r << " head " << h << " dim " << t;
          }
        }
      }
    }
  }
}

TEST_P(Conformance, KvCacheRefusesTypesItCannotHold) {
  auto be = make();
  EXPECT_THROW(be->make_kv_cache(2, 2, 80, 16, 4, DType::kQ8_0), Error);  // 80 % 32 != 0
  EXPECT_THROW(be->make_kv_cache(2, 2, 64, 16, 4, DType::kQ4_K), Error);
  const std::unique_ptr<KvCache> c = be->make_kv_cache(3, 2, 64, 16, 5, DType::kF16);
  EXPECT_EQ(c->bytes(), 3ull * 2 * 16 * 5 * 2 * 64 * 2);
  EXPECT_EQ(c->bytes(), KvCache::bytes_per_token(3, 2, 64, DType::kF16) * 16 * 5);
}

// --- Encoder ops --------------------------------------------------------------------------------

TEST_P(Conformance, EncoderAttentionMasksGroupsAndProbes) {
  auto be = make();
  for (int64_t hd : {64, 80}) {
    for (int64_t group : {1, 4}) {
      const int64_t n_kv = 2, n_heads = n_kv * group, n_seqs = 3, kv_len = 7;
      for (int64_t q_len : {kv_len, int64_t{1}}) {  // self-attention; siglip's probe
        const HostMatrix qh = random_matrix(n_seqs * q_len, n_heads * hd, 51);
        const HostMatrix kh = random_matrix(n_seqs * kv_len, n_kv * hd, 52);
        const HostMatrix vh = random_matrix(n_seqs * kv_len, n_kv * hd, 53);
        std::vector<int32_t> mask(static_cast<size_t>(n_seqs * kv_len), 1);
        mask[5] = mask[6] = 0;  // sequence 0: two padding keys
        mask[kv_len + 0] = 0;   // sequence 1: the first key
        const AttentionParams p{n_heads, n_kv, hd, 1.0f / std::sqrt(float(hd)), 0.0f, 0};
        Activations q = to_device(*be, qh), k = to_device(*be, kh), v = to_device(*be, vh), out;
        be->encoder_attention(q, k, v, n_seqs, mask, p, out);
        const HostMatrix o = to_host(*be, out);
        for (int64_t r = 0; r < n_seqs * q_len; ++r) {
          const int64_t s = r / q_len;
          for (int64_t h = 0; h < n_heads; ++h) {
            const int64_t kvh = h / group;
            std::vector<double> sc;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < kv_len; ++j) {
              double d = 0;
              for (int64_t t = 0; t < hd; ++t) {
                d += double(qh.row(r)[h * hd + t]) * kh.row(s * kv_len + j)[kvh * hd + t];
              }
              sc.push_back(mask[s * kv_len + j] ? d * p.scale : -INFINITY);
              mx = std::max(mx, sc.back());
            }
            for (double& x : sc) sum += (x = std::exp(x - mx));
            for (int64_t t = 0; t < hd; ++t) {
              double ref = 0;
              for (int64_t j = 0; j < kv_len; ++j)
                ref += sc[j] / sum * vh.row(s * kv_len + j)[kvh * hd + t];
              ASSERT_NEAR(o.row(r)[h * hd + t], ref, 2e-5 * (std::fabs(ref) + 1.0))
                  << "hd " << hd << " group " << group << " q_len " << q_len << " row " << r;
            }
          }
        }
      }
    }
  }
}

TEST_P(Conformance, ImagePatchesAreConvWeightOrderedRows) {
  auto be = make();
  const int64_t c = 3, size = 12, patch = 4, grid = size / patch, n_images = 2;
  const HostMatrix px = random_matrix(n_images, c * size * size, 61);
  Activations images = to_device(*be, px), out;
  be->image_patches(images, c, size, patch, out);
  const HostMatrix o = to_host(*be, out);
  ASSERT_EQ(o.rows, n_images * grid * grid);
  ASSERT_EQ(o.cols, c * patch * patch);
  for (int64_t i = 0; i < n_images; ++i) {
    for (int64_t gy = 0; gy < grid; ++gy) {
      for (int64_t gx = 0; gx < grid; ++gx) {
        for (int64_t ch = 0; ch < c; ++ch) {
          for (int64_t y = 0; y < patch; ++y) {
            for (int64_t x = 0; x < patch; ++x) {
              const float want =
                  px.row(i)[ch * size * size + (gy * patch + y) * size + gx * patch + x];
              ASSERT_EQ(o.row(i * grid * grid + gy * grid + gx)[(ch * patch + y) * patch + x],
                        want);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace loom::conformance
