// gemma2, gemma3, phi3, gpt2, mixtral and qwen3moe against transformers (float32 compute from
// the bf16 weights): logits at every position within 1e-4 relative L2 and the greedy tokens
// reproduced, from the HF folder and from the GGUF files `loom convert` writes (f32/f16/bf16).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "convert/convert.h"
#include "engine/generator.h"
#include "io/model_spec.h"
#include "model/model.h"
#include "reference_util.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;  // issue 7: relative L2 at every position

const char* const kModels[] = {"gemma2-tiny", "gemma3-tiny",  "phi3-tiny",
                               "gpt2-tiny",   "mixtral-tiny", "qwen3moe-tiny"};

std::string test_name(std::string s) {
  for (char& c : s) {
    if (c == '-') c = '_';
  }
  return s;
}

// Logits at every position (prefilled in uneven chunks, so chunk boundaries, the KV cache and
// the sliding window across blocks are exercised) and the greedy continuation of the prompt.
void check_model(const std::string& path, const test::Reference& ref, const std::string& label) {
  ModelSpec spec = load_model_spec(path);
  auto backend = make_cpu_backend(2);
  auto model = load_causal_lm(spec, *backend);
  const int64_t vocab = model->info().vocab_size;
  const std::vector<int32_t> seq = ref.ids("sequence_ids");
  Generator gen(*model, nullptr, static_cast<int64_t>(seq.size()) + 4);
  const std::vector<float> logits = gen.all_logits(seq, /*chunk=*/5);
  const double worst = test::expect_logits_match(ref, logits, vocab, kTolerance);
  std::printf("%s: worst relative L2 %.3g\n", label.c_str(), worst);

  GenerationOptions opt;
  opt.max_tokens = static_cast<int64_t>(ref.ids("greedy_ids").size());
  opt.sampling.temperature = 0.0f;
  opt.ignore_eos = true;  // the reference takes 16 argmax steps whatever they are
  GenerationResult r = gen.generate(ref.ids("prompt_ids"), opt, nullptr);
  EXPECT_EQ(r.ids, ref.ids("greedy_ids"));
}

class MoreFamilies : public ::testing::TestWithParam<const char*> {};

TEST_P(MoreFamilies, HfFolder) {
  const std::string name = GetParam();
  check_model(test::ref_model_dir(name), test::load_reference(name), name);
}

INSTANTIATE_TEST_SUITE_P(Models, MoreFamilies, ::testing::ValuesIn(kModels),
                         [](const auto& param_info) { return test_name(param_info.param); });

class MoreFamiliesGguf : public ::testing::TestWithParam<std::tuple<const char*, DType>> {};

TEST_P(MoreFamiliesGguf, MatchesReference) {
  const auto [model, type] = GetParam();
  const std::string label = std::string(model) + "-" + std::string(dtype_name(type));
  const fs::path out = fs::temp_directory_path() / "loom-tests" / (label + ".gguf");
  fs::create_directories(out.parent_path());
  ConvertOptions opt;
  opt.type = type;
  opt.threads = 2;
  convert_to_gguf(load_model_spec(test::ref_model_dir(model)), out.string(), opt);
  check_model(out.string(), test::load_reference(model), label);
}

INSTANTIATE_TEST_SUITE_P(Models, MoreFamiliesGguf,
                         ::testing::Combine(::testing::ValuesIn(kModels),
                                            ::testing::Values(DType::kF32, DType::kF16,
                                                              DType::kBF16)),
                         [](const auto& param_info) {
                           return test_name(std::string(std::get<0>(param_info.param)) + "_" +
                                            std::string(dtype_name(std::get<1>(param_info.param))));
                         });

}  // namespace
}  // namespace loom
