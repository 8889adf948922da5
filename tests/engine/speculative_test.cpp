// Speculative decoding: greedy output identical to plain decoding on every reference model,
// with every drafter (prompt lookup, a draft model, a drafter that is often wrong), and
// sampling that keeps the target's distribution (Sampler::verify alone, and end to end).
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "engine/generator.h"
#include "io/model_spec.h"
#include "io/test_util.h"
#include "model/model.h"
#include "sample/sampler.h"

namespace loom {
namespace {

// Proposes a fixed script (the plain output), with every `wrong`-th proposal off by one.
class ScriptDrafter final : public Drafter {
 public:
  ScriptDrafter(std::vector<int32_t> script, size_t n_prompt, int wrong, int32_t vocab)
      : script_(std::move(script)), n_prompt_(n_prompt), wrong_(wrong), vocab_(vocab) {}
  void propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) override {
    for (size_t i = context.size() - n_prompt_; i < script_.size() && k > 0; ++i, --k) {
      const bool bad = wrong_ > 0 && ++count_ % wrong_ == 0;
      out.push_back(bad ? (script_[i] + 1) % vocab_ : script_[i]);
    }
  }

 private:
  std::vector<int32_t> script_;
  size_t n_prompt_;
  int wrong_;
  int32_t vocab_;
  int count_ = 0;
};

std::vector<int32_t> reference_prompt(const std::string& dir) {
  const auto j = nlohmann::json::parse(test::read_file(dir + "/reference.json"));
  return j["prompt_ids"].get<std::vector<int32_t>>();
}

// The reference model `f32` converted to `type` (a GGUF in the test's temp folder).
ModelSpec converted(const ModelSpec& f32, DType type, const std::string& tag) {
  const std::string path =
      test::temp_path(tag + "-" + std::string(dtype_name(type)) + ".gguf").string();
  ConvertOptions co;
  co.type = type;
  convert_to_gguf(f32, path, co);
  return load_model_spec(path);
}

GenerationOptions greedy(int64_t n) {
  GenerationOptions o;
  o.max_tokens = n;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  return o;
}

// Both backend modes: batch-invariant (loom serve) and the default (loom run), where one-row
// steps take faster kernels than batches and the checking pass must take them too.
class SpeculativeModes : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Backend, SpeculativeModes, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "invariant" : "default"; });

TEST_P(SpeculativeModes, GreedyOutputIsIdenticalOnEveryReferenceModel) {
  auto backend = make_cpu_backend(2, /*batch_invariant=*/GetParam());
  for (const char* name :
       {"gemma2-tiny", "gemma3-tiny", "gpt2-tiny", "llama-tiny", "llama-tiny-llama2vocab",
        "llama3-ropescaled-tiny", "mistral-tiny", "mixtral-tiny", "phi3-tiny", "qwen2-tiny",
        "qwen3-tiny", "qwen3-tiny-qwen3vocab", "qwen3moe-tiny"}) {
    SCOPED_TRACE(name);
    const std::string dir = test::data_dir() + "/ref/models/" + name;
    const ModelSpec spec = load_model_spec(dir);
    auto model = load_causal_lm(spec, *backend);
    const std::vector<int32_t> prompt = reference_prompt(dir);
    const int64_t ctx = std::min<int64_t>(model->info().context_length, 128);
    const int64_t n = std::min<int64_t>(48, ctx - static_cast<int64_t>(prompt.size()) - 1);
    Generator gen(*model, nullptr, ctx);
    const GenerationResult plain = gen.generate(prompt, greedy(n), nullptr);
    ASSERT_EQ(static_cast<int64_t>(plain.ids.size()), n);

    NgramDrafter ngram;
    ModelDrafter self(*model, ctx);  // the target as its own draft: everything is accepted
    ScriptDrafter often_wrong(plain.ids, prompt.size(), 3,
                              static_cast<int32_t>(model->info().vocab_size));
    const std::pair<const char*, Drafter*> drafters[] = {
        {"ngram", &ngram}, {"self", &self}, {"often wrong", &often_wrong}};
    for (const auto& [what, drafter] : drafters) {
      SCOPED_TRACE(what);
      for (int32_t max_draft : {1, 3, 8}) {
        GenerationOptions o = greedy(n);
        o.speculative.drafter = drafter;
        o.speculative.max_draft = max_draft;
        const GenerationResult r = gen.generate(prompt, o, nullptr);
        EXPECT_EQ(r.ids, plain.ids) << "max_draft " << max_draft;
        EXPECT_LE(r.draft_accepted, r.drafted);
        if (drafter == &self) {
          EXPECT_GT(r.drafted, 0);
          EXPECT_EQ(r.draft_accepted, r.drafted);
        }
        if (drafter == &often_wrong) {
          EXPECT_LT(r.draft_accepted, r.drafted);
        }
      }
    }
  }
}

// Quantized and half-precision weights, whose one-row kernels differ most from the batched
// ones in the default mode.
TEST_P(SpeculativeModes, GreedyOutputIsIdenticalForEveryWeightType) {
  auto backend = make_cpu_backend(2, /*batch_invariant=*/GetParam());
  const std::string dir = test::data_dir() + "/ref/models/qwen3-tiny-qwen3vocab";
  const ModelSpec f32 = load_model_spec(dir);
  const std::vector<int32_t> prompt = reference_prompt(dir);
  for (DType type :
       {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const ModelSpec spec = converted(f32, type, "spec");
    auto model = load_causal_lm(spec, *backend);
    Generator gen(*model, nullptr, 128);
    const GenerationResult plain = gen.generate(prompt, greedy(64), nullptr);
    ModelDrafter self(*model, 128);
    ScriptDrafter often_wrong(plain.ids, prompt.size(), 4,
                              static_cast<int32_t>(model->info().vocab_size));
    for (Drafter* d : std::initializer_list<Drafter*>{&self, &often_wrong}) {
      for (int32_t max_draft : {2, 7, 15}) {
        GenerationOptions o = greedy(64);
        o.speculative.drafter = d;
        o.speculative.max_draft = max_draft;
        EXPECT_EQ(gen.generate(prompt, o, nullptr).ids, plain.ids) << max_draft;
      }
    }
  }
}

// What exactness rests on: with set_single_row_kernels_up_to(n), the logits of a pass of up
// to n rows are bit for bit those of one-token steps, for every weight type (the default mode
// otherwise takes batched kernels from 4 rows on, whose sums round differently).
TEST(Speculative, CheckingPassRowsEqualOneTokenSteps) {
  auto backend = make_cpu_backend(2, /*batch_invariant=*/false);
  const std::string dir = test::data_dir() + "/ref/models/qwen3-tiny-qwen3vocab";
  const ModelSpec f32 = load_model_spec(dir);
  const std::vector<int32_t> ids{9707, 11, 1879, 0, 1207, 374, 264, 1273, 13, 576, 3974, 30, 7, 8};
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                     DType::kQ4_K, DType::kQ6_K}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const ModelSpec spec = converted(f32, type, "rows");
    auto model = load_causal_lm(spec, *backend);
    Generator gen(*model, nullptr, 64);
    const int64_t vocab = model->info().vocab_size;
    std::vector<float> steps;
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* row = gen.forward(std::span<const int32_t>(&ids[i], 1), static_cast<int64_t>(i));
      steps.insert(steps.end(), row, row + vocab);
    }
    backend->set_single_row_kernels_up_to(static_cast<int64_t>(ids.size()));
    const std::vector<float> pass = gen.all_logits(ids);
    backend->set_single_row_kernels_up_to(0);
    ASSERT_EQ(pass.size(), steps.size());
    EXPECT_EQ(std::memcmp(pass.data(), steps.data(), pass.size() * sizeof(float)), 0);
  }
}

TEST(Speculative, StopsExactlyWhereThePlainRunStops) {
  // max_tokens and stop conditions are checked token by token, drafts included.
  auto backend = make_cpu_backend(2, /*batch_invariant=*/true);
  const std::string dir = test::data_dir() + "/ref/models/llama-tiny-llama2vocab";
  const ModelSpec spec = load_model_spec(dir);  // the model's weights live in its mapping
  auto model = load_causal_lm(spec, *backend);
  const std::vector<int32_t> prompt = reference_prompt(dir);
  Generator gen(*model, nullptr, 128);
  ModelDrafter self(*model, 128);
  for (int64_t n : {1, 2, 5, 17}) {
    GenerationOptions o = greedy(n);
    const GenerationResult plain = gen.generate(prompt, o, nullptr);
    o.speculative.drafter = &self;
    const GenerationResult r = gen.generate(prompt, o, nullptr);
    EXPECT_EQ(r.ids, plain.ids) << n;
    EXPECT_EQ(r.finish_reason, "length");
  }
  // Up to the end of the context.
  GenerationOptions o = greedy(1000);
  const GenerationResult plain = gen.generate(prompt, o, nullptr);
  o.speculative.drafter = &self;
  const GenerationResult r = gen.generate(prompt, o, nullptr);
  EXPECT_EQ(r.ids, plain.ids);
  EXPECT_EQ(static_cast<int64_t>(prompt.size() + r.ids.size()), 128);
}

// Sampler::verify draws exactly from the chain's distribution, whatever the draft: one the
// chain likes, one it rarely picks, one it excludes (outside top_k).
TEST(Speculative, VerifyKeepsTheDistribution) {
  const std::vector<float> logits{1.0f, 2.5f, 0.3f, 2.0f, -1.0f, 0.9f, 1.7f, -3.0f};
  sample::SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 6;
  p.seed = 5;
  sample::Sampler reference(p, 8);
  reference.sample(logits);
  std::vector<double> want(8, 0.0);
  for (const auto& c : reference.candidates().entries()) want[static_cast<size_t>(c.id)] = c.prob;
  for (int32_t draft : {1, 5, 7}) {
    SCOPED_TRACE(draft);
    sample::Sampler s(p, 8);
    std::vector<double> got(8, 0.0);
    const int n = 200000;
    int accepted = 0;
    for (int i = 0; i < n; ++i) {
      const auto v = s.verify(logits, draft);
      got[static_cast<size_t>(v.token)] += 1.0 / n;
      accepted += v.accepted ? 1 : 0;
      EXPECT_EQ(v.accepted, v.token == draft);
    }
    for (size_t t = 0; t < 8; ++t) {
      const double sigma = std::sqrt(want[t] * (1 - want[t]) / n);
      EXPECT_NEAR(got[t], want[t], 5 * sigma + 1e-9) << "token " << t;
    }
    EXPECT_NEAR(static_cast<double>(accepted) / n, want[static_cast<size_t>(draft)], 0.01);
  }
  // Greedy: the argmax, accepted only when it is the draft.
  sample::SamplingParams g;
  g.temperature = 0.0f;
  sample::Sampler gs(g, 8);
  EXPECT_EQ(gs.verify(logits, 1).token, 1);
  EXPECT_TRUE(gs.verify(logits, 1).accepted);
  EXPECT_FALSE(gs.verify(logits, 3).accepted);
  EXPECT_EQ(gs.verify(logits, 3).token, 1);
}

// End to end under sampling: over many seeds, the second and third tokens (decided by
// verification against drafts) follow the same distribution with and without speculation.
TEST(Speculative, SamplingKeepsTheTargetsDistribution) {
  auto backend = make_cpu_backend(2, /*batch_invariant=*/true);
  const std::string dir = test::data_dir() + "/ref/models/llama-tiny-llama2vocab";
  const ModelSpec spec = load_model_spec(dir);  // the model's weights live in its mapping
  auto model = load_causal_lm(spec, *backend);
  const std::vector<int32_t> prompt = reference_prompt(dir);
  Generator gen(*model, nullptr, 64);
  GenerationOptions o;
  o.max_tokens = 3;
  o.ignore_eos = true;
  o.sampling.temperature = 1.0f;
  o.sampling.top_k = 6;
  const std::vector<int32_t> greedy_ids = gen.generate(prompt, greedy(3), nullptr).ids;
  const int runs = 1500;
  std::map<std::pair<int32_t, int32_t>, int> plain_counts, spec_counts;
  int64_t drafted = 0, accepted = 0;
  for (int seed = 0; seed < runs; ++seed) {
    o.sampling.seed = static_cast<uint64_t>(seed);
    o.speculative.drafter = nullptr;
    const auto a = gen.generate(prompt, o, nullptr).ids;
    ++plain_counts[{a[1], a[2]}];
    // Drafts: the greedy continuation, so they are often but not always right.
    ScriptDrafter drafter(greedy_ids, prompt.size(), 0,
                          static_cast<int32_t>(model->info().vocab_size));
    o.speculative.drafter = &drafter;
    o.sampling.seed = static_cast<uint64_t>(seed + 1000000);
    const auto r = gen.generate(prompt, o, nullptr);
    ++spec_counts[{r.ids[1], r.ids[2]}];
    drafted += r.drafted;
    accepted += r.draft_accepted;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, drafted);
  // Two-sample chi-square over the (token 2, token 3) pairs seen at least 10 times in all.
  double chi2 = 0;
  int bins = 0;
  std::map<std::pair<int32_t, int32_t>, int> total = plain_counts;
  for (const auto& [k, c] : spec_counts) total[k] += c;
  for (const auto& [k, c] : total) {
    if (c < 10) continue;
    const double a = plain_counts[k], b = spec_counts[k];
    chi2 += (a - b) * (a - b) / (a + b);
    ++bins;
  }
  ASSERT_GE(bins, 4);
  // The 0.1% critical value of chi-square with bins - 1 degrees of freedom is below
  // bins + 4 sqrt(2 bins) + 10 for these sizes.
  EXPECT_LT(chi2, bins + 4 * std::sqrt(2.0 * bins) + 10) << bins << " bins";
}

}  // namespace
}  // namespace loom
