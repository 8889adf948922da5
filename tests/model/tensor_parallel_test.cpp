// Tensor parallelism in one process: a model split over two shards (two CPU backends, the
// all-reduce done in memory by a local group, each rank on its own thread) gives the unsplit
// model's logits within 1e-5 at every position, for the llama family's variants (GQA, q/k/v
// biases, per-head q/k norms, fused qkv and gate_up, sliding windows); and splits that cannot
// be made are refused with the reason.
#include <gtest/gtest.h>
#include <unistd.h>

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

// Every rank's logits, each rank on its own thread with its own backend and shard: `stages`
// pipeline stages of `world` tensor-parallel ranks each.
std::vector<std::vector<float>> split_logits(const std::string& path,
                                             const std::vector<int32_t>& seq, int world,
                                             int stages = 1) {
  const ModelSpec spec = load_model_spec(path);
  const int all = world * stages;
  const auto pipe = make_local_group(all);
  std::vector<std::vector<std::shared_ptr<Communicator>>> stage_groups;
  for (int s = 0; s < stages; ++s) stage_groups.push_back(make_local_group(world));
  std::vector<std::vector<float>> out(static_cast<size_t>(all));
  std::vector<std::string> errors(static_cast<size_t>(all));
  std::vector<std::thread> ranks;
  for (int r = 0; r < all; ++r) {
    ranks.emplace_back([&, r] {
      try {
        const int s = r / world, t = r % world;
        auto be = make_backend({"cpu", 1, false, stage_groups[s][t]});
        // Micro-batches of 2 rows: the chunks of 5 are cut mid-sequence.
        ShardSpec shard{t, world, s, stages, stages > 1 ? pipe[r].get() : nullptr, 2};
        auto model = load_causal_lm(spec, *be, shard);
        Generator gen(*model, nullptr, static_cast<int64_t>(seq.size()) + 4);
        out[static_cast<size_t>(r)] = gen.all_logits(seq, /*chunk=*/5);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < all; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return out;
}

// Relative L2 of the split logits against the whole model's; and every rank holds the same bits
// (the all-reduce adds in rank order everywhere, the logits are gathered).
void expect_split_equals_whole(const std::string& path, const std::vector<int32_t>& seq, int world,
                               const std::string& name, int stages = 1) {
  const std::vector<float> whole = unsplit_logits(path, seq);
  const std::vector<std::vector<float>> parts = split_logits(path, seq, world, stages);
  ASSERT_EQ(parts[0].size(), whole.size());
  for (size_t r = 1; r < parts.size(); ++r) EXPECT_EQ(parts[0], parts[r]) << "rank " << r;
  double num = 0, den = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    const double d = double(parts[0][i]) - whole[i];
    num += d * d;
    den += double(whole[i]) * whole[i];
  }
  const double rel = std::sqrt(num / std::max(den, 1e-30));
  EXPECT_LE(rel, kTolerance);
  std::printf("%s: %d shards x %d stages vs whole, relative L2 %.3g\n", name.c_str(), world, stages,
              rel);
}

// A reference model converted to Q8_0 in a temporary folder, removed with it.
struct Q8File {
  explicit Q8File(const std::string& model)
      : dir(std::filesystem::temp_directory_path() /
            ("loom_tp_q8_" + model + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir);
    path = (dir / (model + "-q8_0.gguf")).string();
    ConvertOptions opt;
    opt.type = DType::kQ8_0;
    opt.threads = 1;
    convert_to_gguf(load_model_spec(test::ref_model_dir(model)), path, opt);
  }
  ~Q8File() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  std::string path;
};

// A test name from a model name (gtest allows no '-') and a suffix.
std::string test_name(std::string model, const std::string& suffix) {
  for (char& c : model) c = c == '-' ? '_' : c;
  return model + suffix;
}

// (model, ranks): 4 heads and 2 KV heads, so 3 ranks split the KV heads unevenly (one rank has
// a whole group, two share the other, its KV head replicated) and 4 ranks hold one query head
// each; phi3's 4 KV heads split 3 ways unevenly. The MLP's 160 features split 53/53/54.
class TensorParallel : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(TensorParallel, ShardsGiveTheUnsplitLogits) {
  const auto [model, world] = GetParam();
  const std::vector<int32_t> seq = test::load_reference(model).ids("sequence_ids");
  expect_split_equals_whole(test::ref_model_dir(model), seq, world, model);
}

INSTANTIATE_TEST_SUITE_P(
    Decoders, TensorParallel,
    ::testing::Combine(::testing::Values("llama-tiny", "mistral-tiny", "qwen2-tiny", "qwen3-tiny",
                                         "phi3-tiny", "mixtral-tiny", "qwen3moe-tiny",
                                         "gemma2-tiny", "gemma3-tiny", "gpt2-tiny"),
                       ::testing::Values(2, 3, 4)),
    [](const auto& p) {
      return test_name(std::get<0>(p.param), "_" + std::to_string(std::get<1>(p.param)) + "_ranks");
    });

// Pipeline stages (layers split; 2 or 3 stages of a 2-layer model are refused below), alone and
// with tensor-parallel ranks in each stage.
class PipelineParallel : public ::testing::TestWithParam<std::tuple<const char*, int>> {};

TEST_P(PipelineParallel, StagesGiveTheUnsplitLogits) {
  const auto [model, world] = GetParam();
  const std::vector<int32_t> seq = test::load_reference(model).ids("sequence_ids");
  expect_split_equals_whole(test::ref_model_dir(model), seq, world, model, /*stages=*/2);
}

INSTANTIATE_TEST_SUITE_P(
    Decoders, PipelineParallel,
    ::testing::Combine(::testing::Values("llama-tiny", "qwen3-tiny", "phi3-tiny", "qwen3moe-tiny",
                                         "gemma2-tiny", "gemma3-tiny", "gpt2-tiny"),
                       ::testing::Values(1, 2)),
    [](const auto& p) {
      return test_name(std::get<0>(p.param),
                       "_2_stages_of_" + std::to_string(std::get<1>(p.param)));
    });

// A quantized file: the MLP splits on Q8_0's blocks of 32 (160 features: 64 + 96), the heads'
// output columns (16 wide) are refused below when they fall inside a block.
TEST(TensorParallelQuantized, Q8_0SplitsOnItsBlocks) {
  const Q8File q8("qwen3-tiny");
  const std::vector<int32_t> seq = test::load_reference("qwen3-tiny").ids("sequence_ids");
  expect_split_equals_whole(q8.path, seq, 2, "qwen3-tiny Q8_0");
}

void expect_refused(const std::string& path, int world, ErrorCode code, const char* reason,
                    int rank = 0) {
  const ModelSpec spec = load_model_spec(path);
  const auto group = make_local_group(world);
  auto be = make_backend({"cpu", 1, false, group[static_cast<size_t>(rank)]});
  try {
    load_causal_lm(spec, *be, {rank, world});
    FAIL() << path << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

TEST(TensorParallelErrors, SplitsThatCannotBeMadeAreRefusedWithTheReason) {
  // 4 heads (2 KV heads) over 5 ranks: the second KV head's 2 query heads go to 3 ranks.
  expect_refused(test::ref_model_dir("llama-tiny"), 5, ErrorCode::kUnsupported,
                 "rank 2 would have no head", 2);
  // A shard that does not match the backend's group.
  const ModelSpec spec = load_model_spec(test::ref_model_dir("llama-tiny"));
  auto alone = make_cpu_backend(1);
  try {
    load_causal_lm(spec, *alone, {1, 2});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  // Q8_0 blocks are 32 wide: llama-tiny's heads are 16 wide, so 3 ranks' attention output
  // columns (32 | 16 | 16) fall inside a block.
  const Q8File q8("llama-tiny");
  expect_refused(q8.path, 3, ErrorCode::kUnsupported, "blocks of 32", 1);
}

TEST(TensorParallelErrors, SplitEvenlyCoversEverythingInOrderOnBlocks) {
  for (int64_t n : {0, 1, 5, 160, 161, 1000, 32000}) {
    for (int world : {1, 2, 3, 4, 7}) {
      for (int64_t align : {1, 32, 256}) {
        int64_t next = 0, lo = n, hi = 0;
        for (int r = 0; r < world; ++r) {
          const Part p = split_evenly(n, world, r, align);
          EXPECT_EQ(p.first, next) << n << " " << world << " " << align << " rank " << r;
          if (p.first + p.count < n) {
            EXPECT_EQ((p.first + p.count) % align, 0);
          }
          next = p.first + p.count;
          lo = std::min(lo, p.count);
          hi = std::max(hi, p.count);
        }
        EXPECT_EQ(next, n);
        // As even as the blocks allow: parts differ by at most one block (the last may be cut).
        if (n >= align * world) {
          EXPECT_LE(hi - lo, align) << n << " " << world << " " << align;
        }
      }
    }
  }
  // 160 features in Q8_0 blocks over 3 ranks: 32 | 64 | 64.
  EXPECT_EQ(split_evenly(160, 3, 0, 32).count, 32);
  EXPECT_EQ(split_evenly(160, 3, 2, 32).first, 96);
}

TEST(TensorParallelErrors, LocalGroupCollectives) {
  const auto group = make_local_group(3);
  std::vector<std::vector<float>> sums(3), gathered(3);
  std::vector<uint64_t> seeds(3);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 3; ++r) {
    ranks.emplace_back([&, r] {
      std::vector<float> v = {float(r), 10.0f * float(r) + 0.1f};
      group[r]->all_reduce_sum(v);
      sums[r] = v;
      std::vector<float> in = {float(r), -float(r)}, out(6);
      group[r]->all_gather(in, out);
      gathered[r] = out;
      uint64_t seed = r == 1 ? 0x1234 : 0;
      group[r]->broadcast(std::as_writable_bytes(std::span<uint64_t>(&seed, 1)), 1);
      seeds[r] = seed;
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(sums[r], (std::vector<float>{3.0f, (0.1f + 10.1f) + 20.1f}));
    EXPECT_EQ(gathered[r], (std::vector<float>{0, 0, 1, -1, 2, -2}));
    EXPECT_EQ(seeds[r], 0x1234u);
  }
  // One rank alone: the collectives are no-ops.
  auto be = make_cpu_backend(1);
  EXPECT_EQ(be->world(), 1);
  Activations x = be->make_tensor(std::vector<float>{1, 2}, 1, 2), y;
  be->all_reduce(x);
  be->all_gather(x, 2, y);
  EXPECT_EQ(be->download_all(y), (std::vector<float>{1, 2}));
}

}  // namespace
}  // namespace loom
