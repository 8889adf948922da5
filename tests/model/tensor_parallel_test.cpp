// Tensor parallelism in one process: a model split over two shards (two CPU backends, the
// all-reduce done in memory by a local group, each rank on its own thread) gives the unsplit
// model's logits within 1e-5 at every position, for the llama family's variants (GQA, q/k/v
// biases, per-head q/k norms, fused qkv and gate_up, sliding windows); and splits that cannot
// be made are refused with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "backend/communicator.h"
#include "convert/convert.h"
#include "core/error.h"
#include "engine/generator.h"
#include "io/model_spec.h"
#include "model/model.h"
#include "reference_util.h"

namespace loom {
namespace {

constexpr double kTolerance = 1e-5;

std::vector<float> unsplit_logits(const std::string& path, const std::vector<int32_t>& seq) {
  const ModelSpec spec = load_model_spec(path);
  auto be = make_cpu_backend(1);
  auto model = load_causal_lm(spec, *be);
  Generator gen(*model, nullptr, static_cast<int64_t>(seq.size()) + 4);
  return gen.all_logits(seq, /*chunk=*/5);
}

// Every rank's logits, each rank on its own thread with its own backend and shard.
std::vector<std::vector<float>> split_logits(const std::string& path,
                                             const std::vector<int32_t>& seq, int world) {
  const ModelSpec spec = load_model_spec(path);
  const auto group = make_local_group(world);
  std::vector<std::vector<float>> out(static_cast<size_t>(world));
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> ranks;
  for (int r = 0; r < world; ++r) {
    ranks.emplace_back([&, r] {
      try {
        auto be = make_backend({"cpu", 1, false, group[static_cast<size_t>(r)]});
        auto model = load_causal_lm(spec, *be, {r, world});
        Generator gen(*model, nullptr, static_cast<int64_t>(seq.size()) + 4);
        out[static_cast<size_t>(r)] = gen.all_logits(seq, /*chunk=*/5);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return out;
}

class TensorParallel : public ::testing::TestWithParam<const char*> {};

TEST_P(TensorParallel, TwoShardsGiveTheUnsplitLogits) {
  const std::string path = test::ref_model_dir(GetParam());
  const std::vector<int32_t> seq = test::load_reference(GetParam()).ids("sequence_ids");
  const std::vector<float> whole = unsplit_logits(path, seq);
  const std::vector<std::vector<float>> parts = split_logits(path, seq, 2);
  ASSERT_EQ(parts[0].size(), whole.size());
  // The all-reduce adds in rank order on every rank: the ranks hold the same bits.
  EXPECT_EQ(parts[0], parts[1]);
  double worst = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    const double d = std::fabs(double(parts[0][i]) - whole[i]);
    worst = std::max(worst, d / std::max(1.0, std::fabs(double(whole[i]))));
  }
  EXPECT_LE(worst, kTolerance);
  std::printf("%s: 2 shards vs whole, worst |difference| %.3g\n", GetParam(), worst);
}

INSTANTIATE_TEST_SUITE_P(LlamaFamily, TensorParallel,
                         ::testing::Values("llama-tiny", "mistral-tiny", "qwen2-tiny", "qwen3-tiny",
                                           "phi3-tiny"),
                         [](const auto& p) {
                           std::string s = p.param;
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

void expect_refused(const std::string& path, int world, ErrorCode code, const char* reason) {
  const ModelSpec spec = load_model_spec(path);
  const auto group = make_local_group(world);
  auto be = make_backend({"cpu", 1, false, group[0]});
  try {
    load_causal_lm(spec, *be, {0, world});
    FAIL() << path << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

TEST(TensorParallelErrors, SplitsThatCannotBeMadeAreRefusedWithTheReason) {
  // 2 KV heads over 4 ranks.
  expect_refused(test::ref_model_dir("llama-tiny"), 4, ErrorCode::kUnsupported, "KV heads");
  expect_refused(test::ref_model_dir("mixtral-tiny"), 2, ErrorCode::kUnsupported,
                 "mixture-of-experts");
  expect_refused(test::ref_model_dir("gpt2-tiny"), 2, ErrorCode::kUnsupported, "split");
  // A shard that does not match the backend's group.
  const ModelSpec spec = load_model_spec(test::ref_model_dir("llama-tiny"));
  auto alone = make_cpu_backend(1);
  try {
    load_causal_lm(spec, *alone, {1, 2});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  // Q8_0 blocks are 32 wide: the MLP's 160 features split in two are 80, not on a block.
  const auto dir = std::filesystem::temp_directory_path() / "loom_tp_q8";
  std::filesystem::create_directories(dir);
  const std::string q8 = (dir / "llama-tiny-q8_0.gguf").string();
  ConvertOptions opt;
  opt.type = DType::kQ8_0;
  opt.threads = 1;
  convert_to_gguf(spec, q8, opt);
  expect_refused(q8, 2, ErrorCode::kUnsupported, "blocks of 32");
  std::filesystem::remove_all(dir);
}

TEST(TensorParallelErrors, LocalGroupCollectives) {
  const auto group = make_local_group(3);
  std::vector<std::vector<float>> sums(3), gathered(3);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 3; ++r) {
    ranks.emplace_back([&, r] {
      std::vector<float> v = {float(r), 10.0f * float(r) + 0.1f};
      group[r]->all_reduce_sum(v);
      sums[r] = v;
      std::vector<float> in = {float(r), -float(r)}, out(6);
      group[r]->all_gather(in, out);
      gathered[r] = out;
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(sums[r], (std::vector<float>{3.0f, (0.1f + 10.1f) + 20.1f}));
    EXPECT_EQ(gathered[r], (std::vector<float>{0, 0, 1, -1, 2, -2}));
  }
  // One rank alone: the collectives are no-ops.
  auto be = make_cpu_backend(1);
  EXPECT_EQ(be->world(), 1);
  Activations x = be->make_tensor(std::vector<float>{1, 2}, 1, 2), y;
  be->all_reduce(x);
  be->all_gather(x, y);
  EXPECT_EQ(be->download_all(y), (std::vector<float>{1, 2}));
}

}  // namespace
}  // namespace loom
