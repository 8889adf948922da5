// Per-token cost of Sampler::sample at Qwen2's vocabulary size (Google Benchmark; not a test).
//   sample_bench [--benchmark_filter=...]
// The logits are a fixed pseudo-random, peaked vector, roughly the shape of a model's output.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "sample/sampler.h"

namespace {

using loom::sample::Sampler;
using loom::sample::SamplingParams;

constexpr int32_t kVocab = 151936;

const std::vector<float>& logits() {
  static const std::vector<float> values = [] {
    std::vector<float> out(kVocab);
    uint32_t x = 88172645u;
    for (float& l : out) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      // Mostly low logits with a heavy upper tail, like a language model's.
      const double u = (x % 1000000) / 1000000.0;
      l = static_cast<float>(-4.0 + 12.0 * std::pow(u, 8.0));
    }
    return out;
  }();
  return values;
}

void run(benchmark::State& state, const SamplingParams& params) {
  Sampler sampler(params, kVocab);
  int32_t token = 0;
  for (auto _ : state) {
    token = sampler.sample(logits());
    sampler.accept(token);
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Greedy(benchmark::State& state) {
  SamplingParams p;
  p.temperature = 0.0f;
  run(state, p);
}
BENCHMARK(BM_Greedy);

void BM_PlainDistribution(benchmark::State& state) {
  SamplingParams p;
  p.seed = 1;
  run(state, p);
}
BENCHMARK(BM_PlainDistribution);

// llama.cpp's defaults: top_k 40, top_p 0.95, min_p 0.05, temperature 0.8.
void BM_LlamaCppDefaults(benchmark::State& state) {
  SamplingParams p;
  p.seed = 1;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.temperature = 0.8f;
  run(state, p);
}
BENCHMARK(BM_LlamaCppDefaults);

// Top-p over the whole vocabulary (no top_k first): the chunked partial sort's case.
void BM_TopPOnly(benchmark::State& state) {
  SamplingParams p;
  p.seed = 1;
  p.top_p = 0.9f;
  run(state, p);
}
BENCHMARK(BM_TopPOnly);

void BM_PenaltiesAndBias(benchmark::State& state) {
  SamplingParams p;
  p.seed = 1;
  p.top_k = 40;
  p.repetition_penalty = 1.1f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.5f;
  p.logit_bias = {{5, -100.0f}, {7, 3.0f}};
  run(state, p);
}
BENCHMARK(BM_PenaltiesAndBias);

void BM_TypicalP(benchmark::State& state) {
  SamplingParams p;
  p.seed = 1;
  p.typical_p = 0.9f;
  run(state, p);
}
BENCHMARK(BM_TypicalP);

void BM_TopLogprobs(benchmark::State& state) {
  Sampler sampler(SamplingParams{}, kVocab);
  for (auto _ : state) {
    benchmark::DoNotOptimize(sampler.logprobs(logits(), 0, 20).logprob);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopLogprobs);

}  // namespace

BENCHMARK_MAIN();
