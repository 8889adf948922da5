// The backend conformance suite: every op of the Backend interface, for every element type it
// takes, against float64 references on awkward shapes (1, 3, 17 and 4097 rows; head sizes 64,
// 80, 128 and 256; GQA ratios 1, 4 and 8; sliding windows, soft-capping, rope styles and
// scalings, KV caches of f32, f16, bf16 and q8_0). The suite is parameterized by device name
// (available_devices()), so that a new backend is proven by building it; tests only move data
// through the public upload/download, as model code does.
//
// Tolerances: float32 rounding (1e-5 of the magnitude of the terms summed) for float paths;
// matmuls with quantized weights may also round activations to 8 bits per 32-value block, a
// bound of sum |w| * amax / 254 per block (kernels_test.cpp states where the CPU does so).
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

// --- Memory ---------------------------------------------------------------------------------

TEST_P(Conformance, UploadDownloadRoundTripsAndChecksBounds) {
  auto be = make();
  const HostMatrix h = random_matrix(17, 5, 1);
  Activations t = to_device(*be, h);
  EXPECT_EQ(t.rows(), 17);
  EXPECT_EQ(t.cols(), 5);
  EXPECT_EQ(to_host(*be, t).v, h.v);
  std::vector<float> part(3 * 5);
  be->download(t, 14, 3, part);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), h.row(14)));
  EXPECT_THROW(be->download(t, 15, 3, part), Error);  // past the last row
  EXPECT_THROW(be->upload(h.v, 3, 5, t), Error);      // 85 values are not [3, 5]
  // A smaller upload reuses the memory and takes the new shape.
  be->upload(std::span<const float>(h.v).first(6), 2, 3, t);
  EXPECT_EQ(t.rows(), 2);
  EXPECT_EQ(t.cols(), 3);
  EXPECT_EQ(be->download_all(t), std::vector<float>(h.v.begin(), h.v.begin() + 6));
  EXPECT_STREQ(Activations().location(), "");
  EXPECT_NE(std::string(t.location()), "");
}

// --- Embedding --------------------------------------------------------------------------------

TEST_P(Conformance, EmbedDequantizesTheRowsAskedFor) {
  auto be = make();
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_K}) {
    const int64_t cols = 256;
    const Weights table = make_weights(type, 11, cols, 5);
    const std::vector<int32_t> ids = {10, 0, 3, 3};
    Activations out;
    be->embed(table.view, ids, out);
    const HostMatrix h = to_host(*be, out);
    ASSERT_EQ(h.rows, 4);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_TRUE(std::equal(h.row(static_cast<int64_t>(i)), h.row(static_cast<int64_t>(i)) + cols,
                             table.values.row(ids[i])))
          << dtype_name(type) << " id " << ids[i];
    }
  }
}

// --- Norms --------------------------------------------------------------------------------------

TEST_P(Conformance, RmsNormPerRowAndPerGroup) {
  auto be = make();
  for (int64_t rows : {1, 3, 17, 4097}) {
    for (int64_t group : {7, 64, 129}) {
      const int64_t groups = rows > 17 ? 1 : 3;
      const HostMatrix x = random_matrix(rows, group * groups, static_cast<uint32_t>(rows + group));
      const std::vector<float> wv = random_matrix(1, group, 4).v;
      Activations xd = to_device(*be, x), yd;
      be->rms_norm(xd, f32_view(wv), 1e-5f, 1.0f, group, yd);
      const HostMatrix y = to_host(*be, yd);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          const float* xr = x.row(r) + g * group;
          double ss = 0;
          for (int64_t i = 0; i < group; ++i) ss += double(xr[i]) * xr[i];
          const double inv = 1.0 / std::sqrt(ss / double(group) + 1e-5);
          for (int64_t i = 0; i < group; ++i) {
            const double ref = xr[i] * inv * (wv[i] + 1.0);
            ASSERT_NEAR(y.row(r)[g * group + i], ref, 1e-5 * std::fabs(ref) + 1e-6)
                << "rows " << rows << " group " << group;
          }
        }
      }
      // In place (y = x) gives the same values.
      be->rms_norm(xd, f32_view(wv), 1e-5f, 1.0f, group, xd);
      EXPECT_EQ(be->download_all(xd), y.v);
    }
  }
}

TEST_P(Conformance, LayerNormWithAndWithoutBias) {
  auto be = make();
  for (int64_t rows : {1, 3, 17, 4097}) {
    for (int64_t d : {5, 64, 80}) {
      // An offset mean, as real hidden states have: the variance must not cancel badly.
      HostMatrix x = random_matrix(rows, d, static_cast<uint32_t>(rows * d));
      for (float& f : x.v) f += 3.0f;
      const std::vector<float> wv = random_matrix(1, d, 8).v, bv = random_matrix(1, d, 9).v;
      for (bool with_bias : {false, true}) {
        Activations xd = to_device(*be, x), yd;
        const TensorView bias = f32_view(bv);
        be->layer_norm(xd, f32_view(wv), with_bias ? &bias : nullptr, 1e-5f, yd);
        const HostMatrix y = to_host(*be, yd);
        for (int64_t r = 0; r < rows; ++r) {
          double mean = 0, var = 0;
          for (int64_t i = 0; i < d; ++i) mean += x.row(r)[i];
          mean /= double(d);
          for (int64_t i = 0; i < d; ++i) var += (x.row(r)[i] - mean) * (x.row(r)[i] - mean);
          var /= double(d);
          for (int64_t i = 0; i < d; ++i) {
            const double ref =
                (x.row(r)[i] - mean) / std::sqrt(var + 1e-5) * wv[i] + (with_bias ? bv[i] : 0.0);
            ASSERT_NEAR(y.row(r)[i], ref, 2e-5 * (std::fabs(ref) + 1.0))
                << "rows " << rows << " d " << d << " bias " << with_bias;
          }
        }
      }
    }
  }
}

// --- Rotary embedding ---------------------------------------------------------------------

TEST_P(Conformance, RopeStylesPartialDimsAndScaledPositions) {
  auto be = make();
  for (int64_t hd : {64, 80, 128, 256}) {
    for (RopeStyle style : {RopeStyle::kNeox, RopeStyle::kInterleaved}) {
      for (int64_t dims : {hd, hd / 2}) {
        RopeTable table;
        table.style = style;
        table.dims = dims;
        // A scaled table, as llama3 scaling makes: some frequencies divided, some kept.
        for (int64_t i = 0; i < dims / 2; ++i) {
          const float f = 1.0f / std::pow(10000.0f, float(2 * i) / float(dims));
          table.inv_freq.push_back(i % 3 == 0 ? f / 8.0f : f);
        }
        table.position_scale = dims == hd ? 1.0f : 4.0f;
        const int64_t rows = 17, heads = 3;
        const HostMatrix x = random_matrix(rows, heads * hd, static_cast<uint32_t>(hd + dims));
        std::vector<int32_t> positions;
        for (int64_t r = 0; r < rows; ++r)
          positions.push_back(static_cast<int32_t>(r * 731 % 9000));
        Activations xd = to_device(*be, x);
        be->begin_step({positions, 1, {}});
        be->rope(xd, heads, hd, table);
        const HostMatrix y = to_host(*be, xd);
        const int64_t half = dims / 2;
        for (int64_t r = 0; r < rows; ++r) {
          // As HF: the angle is the float32 product of the scaled position and the frequency.
          const float pos = static_cast<float>(positions[r]) / table.position_scale;
          for (int64_t h = 0; h < heads; ++h) {
            const float* xv = x.row(r) + h * hd;
            const float* yv = y.row(r) + h * hd;
            std::vector<double> ref(xv, xv + hd);
            for (int64_t i = 0; i < half; ++i) {
              const double angle = static_cast<double>(pos * table.inv_freq[i]);
              const int64_t a = style == RopeStyle::kNeox ? i : 2 * i;
              const int64_t b = style == RopeStyle::kNeox ? i + half : 2 * i + 1;
              ref[a] = xv[a] * std::cos(angle) - xv[b] * std::sin(angle);
              ref[b] = xv[b] * std::cos(angle) + xv[a] * std::sin(angle);
            }
            for (int64_t i = 0; i < hd; ++i) {
              ASSERT_NEAR(yv[i], ref[i], 1e-5 * (std::fabs(ref[i]) + 1.0))
                  << "hd " << hd << " dims " << dims << " style " << int(style) << " row " << r
                  << " dim " << i;
            }
          }
        }
      }
    }
  }
}

// M-RoPE (Qwen2-VL): rotary pairs take their angle from the position axis their section names;
// with one axis in the step, every pair takes it (text-only input).
TEST_P(Conformance, MultiAxisRopeSections) {
  auto be = make();
  const int64_t hd = 128, heads = 2, rows = 5, half = 64;
  RopeTable table;
  table.dims = hd;
  for (int64_t i = 0; i < half; ++i)
    table.inv_freq.push_back(std::pow(10000.0f, -float(2 * i) / hd));
  table.sections = {16, 24, 24};
  const HostMatrix x = random_matrix(rows, heads * hd, 77);
  std::vector<int32_t> pos(3 * rows);
  for (int64_t r = 0; r < rows; ++r) {
    pos[r] = static_cast<int32_t>(10 + r);                // time
    pos[rows + r] = static_cast<int32_t>(r / 2);          // height
    pos[2 * rows + r] = static_cast<int32_t>(r % 2 + 7);  // width
  }
  Activations xd = to_device(*be, x);
  be->begin_step({pos, 3, {}});
  be->rope(xd, heads, hd, table);
  const HostMatrix y = to_host(*be, xd);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < half; ++i) {
        const int64_t axis = i < 16 ? 0 : i < 40 ? 1 : 2;
        const double angle =
            static_cast<double>(static_cast<float>(pos[axis * rows + r]) * table.inv_freq[i]);
        const float* xv = x.row(r) + h * hd;
        const double a = xv[i] * std::cos(angle) - xv[i + half] * std::sin(angle);
        const double b = xv[i + half] * std::cos(angle) + xv[i] * std::sin(angle);
        ASSERT_NEAR(y.row(r)[h * hd + i], a, 1e-5 * (std::fabs(a) + 1.0))
            << "row " << r << " pair " << i;
        ASSERT_NEAR(y.row(r)[h * hd + i + half], b, 1e-5 * (std::fabs(b) + 1.0));
      }
    }
  }
  // One axis: the sections are ignored and every pair turns by the one position, as plain RoPE.
  Activations x1 = to_device(*be, x), x2 = to_device(*be, x);
  const std::vector<int32_t> one(pos.begin(), pos.begin() + rows);
  be->begin_step({one, 1, {}});
  be->rope(x1, heads, hd, table);
  RopeTable plain = table;
  plain.sections.clear();
  be->rope(x2, heads, hd, plain);
  EXPECT_EQ(be->download_all(x1), be->download_all(x2));
}

TEST_P(Conformance, ScatterRowsReplacesTheRowsGiven) {
  auto be = make();
  const HostMatrix dst = random_matrix(6, 9, 78), src = random_matrix(2, 9, 79);
  Activations d = to_device(*be, dst), s = to_device(*be, src);
  const std::vector<int32_t> rows = {4, 1};
  be->scatter_rows(s, rows, d);
  const HostMatrix got = to_host(*be, d);
  for (int64_t r = 0; r < 6; ++r) {
    const float* want = r == 4 ? src.row(0) : r == 1 ? src.row(1) : dst.row(r);
    EXPECT_TRUE(std::equal(want, want + 9, got.row(r))) << "row " << r;
  }
}

// --- Element-wise -------------------------------------------------------------------------------

TEST_P(Conformance, ElementwiseOpsMatchTheirFormulas) {
  auto be = make();
  for (int64_t rows : {1, 3, 17, 4097}) {
    const int64_t cols = 19;
    const HostMatrix a = random_matrix(rows, cols, 71, 3.0f), b = random_matrix(rows, cols, 72);
    auto check = [&](const char* what, const Activations& t, auto formula) {
      const HostMatrix h = to_host(*be, t);
      ASSERT_EQ(h.rows, rows) << what;
      for (int64_t i = 0; i < rows * cols; ++i) {
        const double ref = formula(double(a.v[i]), double(b.v[i]));
        ASSERT_NEAR(h.v[i], ref, 2e-6 * (std::fabs(ref) + 1.0)) << what << " rows " << rows;
      }
    };
    const double k = std::sqrt(2.0 / std::numbers::pi);
    auto gelu_tanh = [k](double x) {
      return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
    };
    Activations ad = to_device(*be, a), bd = to_device(*be, b), out;
    be->swiglu(ad, bd, out);
    check("swiglu", out, [](double x, double y) { return x / (1 + std::exp(-x)) * y; });
    be->geglu(ad, bd, out);
    check("geglu", out, [&](double x, double y) { return gelu_tanh(x) * y; });
    Activations t = to_device(*be, a);
    be->gelu_tanh(t);
    check("gelu_tanh", t, [&](double x, double) { return gelu_tanh(x); });
    t = to_device(*be, a);
    be->gelu_erf(t);
    check("gelu_erf", t,
          [](double x, double) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
    t = to_device(*be, a);
    be->quick_gelu(t);
    check("quick_gelu", t, [](double x, double) { return x / (1 + std::exp(-1.702 * x)); });
    t = to_device(*be, a);
    be->add(t, bd);
    check("add", t, [](double x, double y) { return double(float(x) + float(y)); });
    t = to_device(*be, a);
    be->scale(t, 0.37f);
    check("scale", t, [](double x, double) { return double(float(x) * 0.37f); });
    t = to_device(*be, a);
    be->softcap(t, 2.5f);
    check("softcap", t, [](double x, double) { return 2.5 * std::tanh(x / 2.5); });
    // swiglu may write out = gate.
    t = to_device(*be, a);
    be->swiglu(t, bd, t);
    check("swiglu in place", t, [](double x, double y) { return x / (1 + std::exp(-x)) * y; });
  }
}

// --- Mixture-of-experts helpers -------------------------------------------------------------

TEST_P(Conformance, RouteTopkSoftmaxTiesAndRenormalisation) {
  auto be = make();
  HostMatrix lh(2, 4);
  const float rows[2][4] = {{1.0f, 3.0f, 2.0f, 3.0f}, {0.0f, 0.0f, 0.0f, 5.0f}};
  for (int r = 0; r < 2; ++r) std::copy_n(rows[r], 4, lh.row(r));
  Activations logits = to_device(*be, lh);
  std::vector<int32_t> experts(4);
  std::vector<float> weights(4);
  be->route_topk(logits, 2, /*renormalize=*/false, experts, weights);
  // Row 0: the tie between experts 1 and 3 goes to the lower id first, as torch.topk.
  EXPECT_EQ(experts, (std::vector<int32_t>{1, 3, 3, 0}));
  const double z0 = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(weights[0], std::exp(3.0) / z0, 1e-6);
  EXPECT_NEAR(weights[1], std::exp(3.0) / z0, 1e-6);
  const double z1 = 3.0 + std::exp(5.0);
  EXPECT_NEAR(weights[2], std::exp(5.0) / z1, 1e-6);
  EXPECT_NEAR(weights[3], 1.0 / z1, 1e-6);
  be->route_topk(logits, 2, /*renormalize=*/true, experts, weights);
  EXPECT_NEAR(weights[0], 0.5, 1e-6);
  EXPECT_NEAR(weights[2] + weights[3], 1.0, 1e-6);
  EXPECT_NEAR(weights[2], std::exp(5.0) / (std::exp(5.0) + 1.0), 1e-6);
  // Random rows, 64 experts, top 8: the ranking and weights of a float64 softmax.
  const HostMatrix rh = random_matrix(17, 64, 81, 2.0f);
  Activations r = to_device(*be, rh);
  experts.resize(17 * 8);
  weights.resize(17 * 8);
  be->route_topk(r, 8, false, experts, weights);
  for (int64_t i = 0; i < 17; ++i) {
    std::vector<double> p(rh.row(i), rh.row(i) + 64);
    const double m = *std::max_element(p.begin(), p.end());
    double z = 0;
    for (double& x : p) z += (x = std::exp(x - m));
    std::vector<int> order(64);
    for (int e = 0; e < 64; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    for (int j = 0; j < 8; ++j) {
      EXPECT_EQ(experts[i * 8 + j], order[j]) << "row " << i << " rank " << j;
      EXPECT_NEAR(weights[i * 8 + j], p[order[j]] / z, 1e-6);
    }
  }
}

TEST_P(Conformance, GatherRowsAndScaledScatterAdd) {
  auto be = make();
  HostMatrix src(3, 2), acc(3, 2);
  for (int r = 0; r < 3; ++r) {
    src.row(r)[0] = static_cast<float>(r);
    src.row(r)[1] = static_cast<float>(10 * r);
    acc.row(r)[0] = acc.row(r)[1] = 1.0f;
  }
  const std::vector<int32_t> rows = {2, 0, 2};
  Activations s = to_device(*be, src), picked, a = to_device(*be, acc);
  be->gather_rows(s, rows, picked);
  const HostMatrix ph = to_host(*be, picked);
  ASSERT_EQ(ph.rows, 3);
  EXPECT_EQ(ph.row(0)[1], 20.0f);
  EXPECT_EQ(ph.row(1)[1], 0.0f);
  const std::vector<float> w = {0.5f, 2.0f, 0.25f};
  be->add_rows_scaled(a, picked, rows, w);
  const HostMatrix ah = to_host(*be, a);
  // Repeated rows are applied in order.
  EXPECT_EQ(ah.row(2)[1], (1.0f + 0.5f * 20.0f) + 0.25f * 20.0f);
  EXPECT_EQ(ah.row(0)[0], 1.0f + 2.0f * 0.0f);
  EXPECT_EQ(ah.row(1)[0], 1.0f);
}

// The grouped MoE MLP: softmax router, top-k (optionally renormalised), each chosen expert's
// gated MLP weighted and added, for SwiGLU and GeGLU experts, rows routed unevenly.
TEST_P(Conformance, MoeFfnMatchesReference) {
  auto be = make();
  const int64_t n = 17, hidden = 64, ffn = 48, n_experts = 5;
  const Weights router = make_weights(DType::kF32, n_experts, hidden, 91);
  std::vector<Weights> gate, up, down;
  std::vector<GatedMlp> experts;
  for (int64_t e = 0; e < n_experts; ++e) {
    gate.push_back(make_weights(DType::kF16, ffn, hidden, 100 + e, 0.2f));
    up.push_back(make_weights(DType::kF16, ffn, hidden, 200 + e, 0.2f));
    down.push_back(make_weights(DType::kF16, hidden, ffn, 300 + e, 0.2f));
  }
  for (int64_t e = 0; e < n_experts; ++e)
    experts.push_back({gate[e].view, up[e].view, down[e].view});
  const HostMatrix h = random_matrix(n, hidden, 92);
  const HostMatrix acc0 = random_matrix(n, hidden, 93);
  for (GatedActivation act : {GatedActivation::kSilu, GatedActivation::kGeluTanh}) {
    for (bool renorm : {false, true}) {
      const int64_t k = 2;
      Activations hd = to_device(*be, h), acc = to_device(*be, acc0);
      be->moe_ffn(hd, router.view, experts, {k, renorm, act}, acc);
      const HostMatrix got = to_host(*be, acc);
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> logit(n_experts), p(n_experts);
        for (int64_t e = 0; e < n_experts; ++e) {
          for (int64_t t = 0; t < hidden; ++t)
            logit[e] += double(router.values.row(e)[t]) * h.row(i)[t];
        }
        const double m = *std::max_element(logit.begin(), logit.end());
        double z = 0;
        for (int64_t e = 0; e < n_experts; ++e) z += (p[e] = std::exp(logit[e] - m));
        std::vector<int> order(n_experts);
        for (int e = 0; e < n_experts; ++e) order[e] = e;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
        const double top = p[order[0]] + p[order[1]];
        std::vector<double> ref(acc0.row(i), acc0.row(i) + hidden);
        for (int j = 0; j < k; ++j) {
          const int e = order[j];
          const double w = renorm ? p[e] / top : p[e] / z;
          std::vector<double> mid(ffn);
          for (int64_t f = 0; f < ffn; ++f) {
            double g = 0, u = 0;
            for (int64_t t = 0; t < hidden; ++t) {
              g += double(gate[e].values.row(f)[t]) * h.row(i)[t];
              u += double(up[e].values.row(f)[t]) * h.row(i)[t];
            }
            const double a = act == GatedActivation::kSilu
                                 ? g / (1 + std::exp(-g))
                                 : 0.5 * g *
                                       (1 + std::tanh(std::sqrt(2 / std::numbers::pi) *
                                                      (g + 0.044715 * g * g * g)));
            mid[f] = a * u;
          }
          for (int64_t o = 0; o < hidden; ++o) {
            double d = 0;
            for (int64_t f = 0; f < ffn; ++f) d += double(down[e].values.row(o)[f]) * mid[f];
            ref[o] += w * d;
          }
        }
        for (int64_t o = 0; o < hidden; ++o) {
          ASSERT_NEAR(got.row(i)[o], ref[o], 2e-5 * (std::fabs(ref[o]) + 1.0))
              << "row " << i << " out " << o << " renorm " << renorm << " act " << int(act);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(available_devices()),
                         device_name);

// --- The registry -------------------------------------------------------------------------------

TEST(BackendRegistry, NamesDevicesAndRefusesUnknownOnes) {
  auto cpu = make_backend({"cpu", 1, false});
  EXPECT_EQ(cpu->name(), "cpu");
  EXPECT_FALSE(cpu->batch_invariant());
  EXPECT_TRUE(make_backend({"cpu", 1, true})->batch_invariant());
  try {
    make_backend({"tpu", 1, false});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("tpu"), std::string::npos) << e.what();
  }
  try {
    make_backend({"cuda:x", 1, false});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  const std::vector<std::string> devices = available_devices();
  if (std::find(devices.begin(), devices.end(), "cuda") == devices.end()) {
    try {
      make_backend({"cuda:0", 1, false});
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
      EXPECT_NE(std::string(e.what()).find("without CUDA"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace loom::conformance
