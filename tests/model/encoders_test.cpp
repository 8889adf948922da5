// Encoders against transformers (float32 from the bf16 weights): bert-tiny's last_hidden_state
// and mean pooling for two inputs (one padded), and the clip / siglip vision towers'
// last_hidden_state and pooler_output from the reference pixel_values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "backend/backend.h"
#include "backend/host_matrix.h"
#include "core/error.h"
#include "io/model_spec.h"
#include "model/encoder.h"
#include "reference_util.h"

namespace loom {
namespace {

using test::load_reference;
using test::ref_model_dir;
using test::relative_l2;

std::vector<int32_t> i32s(const test::Reference& ref, const char* name, int64_t n) {
  const int32_t* p = ref.i32(name);
  EXPECT_NE(p, nullptr) << name;
  return p == nullptr ? std::vector<int32_t>(n) : std::vector<int32_t>(p, p + n);
}

TEST(BertEncoder, MatchesTransformersWithPadding) {
  const ModelSpec spec = load_model_spec(ref_model_dir("bert-tiny"));
  auto be = make_cpu_backend(2);
  auto enc = load_encoder(spec, *be);
  const test::Reference ref = load_reference("bert-tiny");
  ASSERT_EQ(enc->info().hidden_size, 64);
  TextBatch b;
  b.n_seqs = 2;
  b.seq_len = 8;
  b.ids = i32s(ref, "input_ids", 16);
  b.mask = i32s(ref, "attention_mask", 16);
  ASSERT_NE(std::count(b.mask.begin(), b.mask.end(), 0), 0) << "one input is padded";
  Activations hd;
  enc->encode(b, hd);
  ASSERT_EQ(hd.rows(), 16);
  ASSERT_EQ(hd.cols(), 64);
  const test::HostMatrix h = test::to_host(*be, hd);
  const float* want = ref.f32("last_hidden_state");
  const float* want_mean = ref.f32("mean_pooled");
  ASSERT_NE(want, nullptr);
  ASSERT_NE(want_mean, nullptr);
  const auto mean = pool_hidden(h.v, h.cols, b, Pooling::kMean);
  for (int s = 0; s < 2; ++s) {
    // Every row, the padded ones included (their queries still see the unpadded keys).
    const double e = relative_l2(h.row(s * 8), want + s * 8 * 64, 8 * 64);
    EXPECT_LT(e, 1e-4) << "input " << s;
    const double em = relative_l2(mean[s].data(), want_mean + s * 64, 64);
    EXPECT_LT(em, 1e-4) << "mean pooled, input " << s;
    std::printf("bert-tiny input %d: last_hidden_state rel %.3g, mean_pooled rel %.3g\n", s, e, em);
  }
  // Padding must not change an input's unpadded rows: the padded input alone, unpadded.
  const int64_t real = std::count(b.mask.begin() + 8, b.mask.end(), 1);
  const int s = real < 8 ? 1 : 0;
  const int64_t n = std::count(b.mask.begin() + s * 8, b.mask.begin() + s * 8 + 8, 1);
  TextBatch alone = TextBatch::from_sequences(
      {std::vector<int32_t>(b.ids.begin() + s * 8, b.ids.begin() + s * 8 + n)}, 0);
  Activations h1d;
  enc->encode(alone, h1d);
  const test::HostMatrix h1 = test::to_host(*be, h1d);
  EXPECT_LT(relative_l2(h1.row(0), want + s * 8 * 64, n * 64), 1e-4);
}

TEST(BertEncoder, PoolingAndNormalize) {
  const std::vector<float> h = {1, 2, 3, 4, 5, 6, 100, 100};
  TextBatch b;
  b.n_seqs = 1;
  b.seq_len = 4;
  b.ids = {1, 2, 3, 0};
  b.mask = {1, 1, 1, 0};
  auto mean = pool_hidden(h, 2, b, Pooling::kMean);
  EXPECT_FLOAT_EQ(mean[0][0], 3.0f);
  EXPECT_FLOAT_EQ(mean[0][1], 4.0f);
  auto cls = pool_hidden(h, 2, b, Pooling::kCls);
  EXPECT_FLOAT_EQ(cls[0][1], 2.0f);
  std::vector<float> x = {3, 4};
  l2_normalize(x);
  EXPECT_FLOAT_EQ(x[0], 0.6f);
  EXPECT_FLOAT_EQ(x[1], 0.8f);
}

TEST(BertEncoder, RejectsOutOfRangeIds) {
  const ModelSpec spec = load_model_spec(ref_model_dir("bert-tiny"));
  auto be = make_cpu_backend(1);
  auto enc = load_encoder(spec, *be);
  Activations h;
  try {
    enc->encode(TextBatch::from_sequences({{1, 5000}}, 0), h);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
    EXPECT_NE(std::string(e.what()).find("5000"), std::string::npos) << e.what();
  }
  try {
    enc->encode(TextBatch::from_sequences({std::vector<int32_t>(65, 1)}, 0), h);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
  }
}

void check_vision(const char* model, int64_t tokens) {
  SCOPED_TRACE(model);
  const ModelSpec spec = load_model_spec(ref_model_dir(model));
  auto be = make_cpu_backend(2);
  auto enc = load_encoder(spec, *be);
  const test::Reference ref = load_reference(model);
  ASSERT_TRUE(enc->info().vision);
  ASSERT_EQ(enc->info().tokens_per_image, tokens);
  const float* px = ref.f32("pixel_values");
  ASSERT_NE(px, nullptr);
  Activations hd, pd;
  enc->encode_images(std::span<const float>(px, 3 * 32 * 32), 1, hd, pd);
  ASSERT_EQ(hd.rows(), tokens);
  ASSERT_EQ(pd.rows(), 1);
  const test::HostMatrix h = test::to_host(*be, hd), pooled = test::to_host(*be, pd);
  const double e = relative_l2(h.data(), ref.f32("last_hidden_state"), tokens * 64);
  const double ep = relative_l2(pooled.data(), ref.f32("pooler_output"), 64);
  EXPECT_LT(e, 1e-4) << "last_hidden_state";
  EXPECT_LT(ep, 1e-4) << "pooler_output";
  std::printf("%s: last_hidden_state rel %.3g, pooler_output rel %.3g\n", model, e, ep);
  // Two images in one batch give the same rows as one.
  std::vector<float> two(px, px + 3 * 32 * 32);
  two.insert(two.end(), px, px + 3 * 32 * 32);
  Activations h2d, p2d;
  enc->encode_images(two, 2, h2d, p2d);
  const test::HostMatrix h2 = test::to_host(*be, h2d), p2 = test::to_host(*be, p2d);
  EXPECT_LT(relative_l2(h2.row(tokens), h.data(), tokens * 64), 1e-6);
  EXPECT_LT(relative_l2(p2.row(1), pooled.data(), 64), 1e-6);
}

TEST(VisionEncoder, ClipMatchesTransformers) {
  check_vision("clip-vision-tiny", 17);
}
TEST(VisionEncoder, SiglipMatchesTransformers) {
  check_vision("siglip-vision-tiny", 16);
}

}  // namespace
}  // namespace loom
