// Micro-benchmarks of the CPU kernels against this machine's ceilings:
// - Ceiling/StreamRead: a 2-thread streaming read of 1 GiB (the decode bandwidth ceiling), and
//   Ceiling/PeakFma: back-to-back independent 512-bit FMAs on one core (the prefill ceiling).
// - QuantDot / FloatDot: one decode dot kernel over a weight matrix larger than the caches
//   (bytes/s, one thread) and over one that fits L2 (the kernel's compute rate).
// - GemmPanel32: the 32x12 float prefill micro-kernel on L1-resident data (FLOP/s, one thread).
// - Matmul: the backend's matmul with 2 threads (and 1 for the 65536-row decode), decode
//   (n = 1: GB/s of weights) and prefill (n = 128: FLOP/s), on the 1.1B llama's 2048 x 2048 and
//   8192 x 2048 shapes, 65536 x 2048 (75 MB in Q4_0, read again each time: partly from cache on
//   this VM, above the DRAM read rate) and 256 x 2048 (in L2: the kernel's own rate, one thread).
// - DecodeStep: a decode step's weights as decode streams them (the decode figure, 1-2 threads).
// - RmsNorm, Rope, Attention: the other per-token ops at the same model's sizes.
// Run: build/<dir>/bench/kernels_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/quant.h"

namespace loom {
namespace {

namespace k = cpu::kernels;

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<uint8_t> quantized_matrix(DType type, int64_t rows, int64_t cols) {
  const uint64_t rb = *row_bytes(type, cols);
  std::vector<uint8_t> q(rb * rows);
  const std::vector<float> row = random_floats(cols, 1);
  // One random row quantized, then copied: quantizing 1 GB of K-quants would take minutes.
  std::vector<uint8_t> one(rb);
  quantize_row(type, row.data(), one.data(), cols);
  for (int64_t r = 0; r < rows; ++r) std::copy(one.begin(), one.end(), q.begin() + r * rb);
  return q;
}

// ---- ceilings ----

#ifdef LOOM_HAVE_X86_KERNELS
LOOM_AVX512 float stream_sum(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

volatile float g_fma_m = 0.9999f;  // opaque, so the FMA chains cannot be folded

LOOM_AVX512 float fma_loop(int64_t iters) {
  // 12 independent chains cover the FMA latency x ports of any current x86 core.
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.0f + 0.001f * static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(g_fma_m), c = _mm512_set1_ps(0.0001f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], m, c);
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

void Ceiling_StreamRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const int64_t n = int64_t{1} << 28;  // 1 GiB of floats
  float* buf = static_cast<float*>(std::aligned_alloc(2 << 20, n * sizeof(float)));
  ::madvise(buf, n * sizeof(float), MADV_HUGEPAGE);  // as the weights (core/mapped_file.cpp)
  for (int64_t i = 0; i < n; ++i) buf[i] = 1.0f;
  std::atomic<float> sink{0};
  for (auto _ : state) {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        const int64_t b = n / threads * t;
        sink.store(stream_sum(buf + b, n / threads), std::memory_order_relaxed);
      });
    }
    for (std::thread& th : ts) th.join();
  }
  state.SetBytesProcessed(state.iterations() * n * static_cast<int64_t>(sizeof(float)));
  std::free(buf);
}
BENCHMARK(Ceiling_StreamRead)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void Ceiling_PeakFma(benchmark::State& state) {
  const int64_t iters = 1 << 20;
  for (auto _ : state) benchmark::DoNotOptimize(fma_loop(iters));
  state.counters["FLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * iters * 12 * 32, benchmark::Counter::kIsRate);
}
BENCHMARK(Ceiling_PeakFma);
#endif

// ---- decode dots ----

void QuantDot(benchmark::State& state, DType type, k::QDotFn fn) {
  const int64_t cols = 2048, rows = state.range(0);
  const std::vector<uint8_t> w = quantized_matrix(type, rows, cols);
  const uint64_t rb = *row_bytes(type, cols);
  const std::vector<float> x = random_floats(cols, 2);
  std::vector<uint8_t> buf(static_cast<size_t>(k::qact_bytes(cols)) + 64);
  void* aligned =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
  const k::QAct a = k::quantize_act(x.data(), cols, aligned);
  for (auto _ : state) {
    float s = 0;
    for (int64_t r = 0; r < rows; ++r) s += fn(w.data() + r * rb, a, cols);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rb) * rows);
}

void FloatDot(benchmark::State& state, DType type, k::FDotFn fn) {
  const int64_t cols = 2048, rows = state.range(0);
  const std::vector<uint8_t> w = quantized_matrix(type, rows, cols);
  const uint64_t rb = *row_bytes(type, cols);
  const std::vector<float> x = random_floats(cols, 2);
  for (auto _ : state) {
    float s = 0;
    for (int64_t r = 0; r < rows; ++r) s += fn(w.data() + r * rb, x.data(), cols);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rb) * rows);
}

// 128 rows (L2-resident) and 131072 rows (far beyond the caches: memory-bound).
#define LOOM_DOT_BENCH(KIND, NAME, TYPE, FN) \
  BENCHMARK_CAPTURE(KIND, NAME, TYPE, FN)->Arg(128)->Arg(131072)->Unit(benchmark::kMicrosecond)

LOOM_DOT_BENCH(QuantDot, q4_0_avx512, DType::kQ4_0, k::avx512::dot_q4_0);
LOOM_DOT_BENCH(QuantDot, q8_0_avx512, DType::kQ8_0, k::avx512::dot_q8_0);
LOOM_DOT_BENCH(QuantDot, q4_k_avx512, DType::kQ4_K, k::avx512::dot_q4_k);
LOOM_DOT_BENCH(QuantDot, q6_k_avx512, DType::kQ6_K, k::avx512::dot_q6_k);
LOOM_DOT_BENCH(QuantDot, q4_0_scalar, DType::kQ4_0, k::scalar::dot_q4_0);
LOOM_DOT_BENCH(QuantDot, q4_k_scalar, DType::kQ4_K, k::scalar::dot_q4_k);
LOOM_DOT_BENCH(FloatDot, f16_avx512, DType::kF16, k::avx512::dot_f16);
LOOM_DOT_BENCH(FloatDot, bf16_avx512, DType::kBF16, k::avx512::dot_bf16);
LOOM_DOT_BENCH(FloatDot, f16_scalar, DType::kF16, k::scalar::dot_f16);

// ---- prefill micro-kernel ----

void GemmPanel32(benchmark::State& state) {
  const int64_t kc = 256, n = 12;
  const std::vector<float> w = random_floats(k::kPanel32 * kc, 3), x = random_floats(n * kc, 4);
  std::vector<float> wt(static_cast<size_t>(k::kPanel32 * kc) + 16), y(n * k::kPanel32);
  float* wta =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(wt.data()) + 63) & ~uintptr_t{63});
  k::pack_panel32(DType::kF32, w.data(), kc, k::kPanel32, kc, wta);
  for (auto _ : state) {
    k::gemm_panel32(wta, kc, x.data(), kc, n, y.data(), k::kPanel32, k::kPanel32, false);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2 * k::kPanel32 * n * kc,
                         benchmark::Counter::kIsRate);
}
BENCHMARK(GemmPanel32);

// The activation-major micro-kernel: 12 weight rows x 128 transposed activation columns x 256
// (FLOP/s, one thread; the activation panel in L2, the weight rows in L1).
void GemmXt(benchmark::State& state) {
  const int64_t kc = 256, n = 128;
  const std::vector<float> w = random_floats(k::kXtRows * kc, 3), x = random_floats(n * kc, 4);
  std::vector<float> xt(static_cast<size_t>(kc * n) + 16),
      yt(static_cast<size_t>(k::kXtRows * n) + 16);
  auto aligned = [](std::vector<float>& v) {
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
  };
  float* xta = aligned(xt);
  float* yta = aligned(yt);
  k::transpose_f32(x.data(), kc, n, kc, xta, n);
  for (auto _ : state) {
    k::gemm_xt(w.data(), kc, k::kXtRows, kc, xta, n, n, yta, n, false);
    benchmark::DoNotOptimize(yta);
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 2 * k::kXtRows * n * kc,
                         benchmark::Counter::kIsRate);
}
BENCHMARK(GemmXt);

// Converting and transposing one 32 x 256 prefill panel from F16 rows 4 KiB apart (the 1.1B
// llama's 2048-column rows) in L2: elements per second.
void PackPanel32F16(benchmark::State& state) {
  const int64_t kc = 256, ld = 2048;
  std::vector<uint16_t> w(static_cast<size_t>(k::kPanel32 * ld), 0x3C00);
  std::vector<float> wt(static_cast<size_t>(k::kPanel32 * kc) + 16);
  float* wta =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(wt.data()) + 63) & ~uintptr_t{63});
  int64_t k0 = 0;
  for (auto _ : state) {
    k::pack_panel32(DType::kF16, w.data() + k0, ld, k::kPanel32, kc, wta);
    benchmark::DoNotOptimize(wta);
    k0 = (k0 + kc) % ld;
  }
  state.counters["elem/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * k::kPanel32 * kc, benchmark::Counter::kIsRate);
}
BENCHMARK(PackPanel32F16);

// ---- backend ops, 2 threads ----

void Matmul(benchmark::State& state, DType type) {
  const int64_t n = state.range(0), m = state.range(1), kk = 2048;
  const std::vector<uint8_t> w = quantized_matrix(type, m, kk);
  // range(2): the batch-invariant backend (loom serve's), whose every n takes one kernel.
  // range(3): threads, so one core's decode rate can be set against Ceiling_StreamRead/1.
  auto backend = make_cpu_backend(state.range(3), /*batch_invariant=*/state.range(2) != 0);
  // As the engine loads it (Q4_0 and Q4_K repacked 16 rows at a time).
  const TensorView wv = backend->prepare_weight(TensorView{type, {m, kk}, w.data(), w.size()},
                                                Backend::WeightUse::kMatrix);
  Activations y;
  const std::vector<float> xs = random_floats(n * kk, 5);
  Activations x = backend->make_tensor(xs, n, kk);
  for (auto _ : state) backend->matmul(x, wv, nullptr, y);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size()));
  state.counters["FLOP/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2 * n * m * kk, benchmark::Counter::kIsRate);
}
// A decode step's weight traffic: the 1.1B llama's 16 layers as 64 distinct matrices (per
// layer 8192 x 2048 three times, standing in for q/k/v/o and gate/up, and the 2048 x 8192 down
// projection), 0.6 GB in Q4_0, each read once per iteration as decode reads them: no cache
// reuse, small matrices one after another. Bytes per second of weights; range(0): threads.
void DecodeStep(benchmark::State& state, DType type) {
  auto backend = make_cpu_backend(state.range(0), /*batch_invariant=*/false);
  struct Layer {
    std::vector<uint8_t> bytes;
    TensorView w;
  };
  std::vector<Layer> layers;
  int64_t total = 0;
  for (int l = 0; l < 16; ++l) {
    for (int i = 0; i < 4; ++i) {
      const int64_t m = i < 3 ? 8192 : 2048, k = i < 3 ? 2048 : 8192;
      Layer& layer = layers.emplace_back();
      layer.bytes = quantized_matrix(type, m, k);
      layer.w =
          backend->prepare_weight(TensorView{type, {m, k}, layer.bytes.data(), layer.bytes.size()},
                                  Backend::WeightUse::kMatrix);
      total += static_cast<int64_t>(layer.bytes.size());
    }
  }
  const std::vector<float> x2k = random_floats(2048, 5), x8k = random_floats(8192, 6);
  Activations a = backend->make_tensor(x2k, 1, 2048), b = backend->make_tensor(x8k, 1, 8192);
  Activations y;
  for (auto _ : state) {
    for (const Layer& layer : layers)
      backend->matmul(layer.w.shape[1] == 2048 ? a : b, layer.w, nullptr, y);
  }
  state.SetBytesProcessed(state.iterations() * total);
}
BENCHMARK_CAPTURE(DecodeStep, q4_0, DType::kQ4_0)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(DecodeStep, q4_k, DType::kQ4_K)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(DecodeStep, q8_0, DType::kQ8_0)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(DecodeStep, q6_k, DType::kQ6_K)  // Q4_K_M files keep a quarter of it in Q6_K
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

#define LOOM_MATMUL_BENCH(NAME, TYPE)   \
  BENCHMARK_CAPTURE(Matmul, NAME, TYPE) \
      ->Args({1, 8192, 0, 2})           \
      ->Args({1, 8192, 1, 2})           \
      ->Args({4, 8192, 0, 2})           \
      ->Args({4, 8192, 1, 2})           \
      ->Args({1, 65536, 0, 2})          \
      ->Args({1, 65536, 0, 1})          \
      ->Args({1, 256, 0, 1})            \
      ->Args({128, 2048, 0, 2})         \
      ->UseRealTime()                   \
      ->Unit(benchmark::kMillisecond)
LOOM_MATMUL_BENCH(f16, DType::kF16);
LOOM_MATMUL_BENCH(q8_0, DType::kQ8_0);
LOOM_MATMUL_BENCH(q4_0, DType::kQ4_0);
LOOM_MATMUL_BENCH(q4_k, DType::kQ4_K);
LOOM_MATMUL_BENCH(q6_k, DType::kQ6_K);

void RmsNorm(benchmark::State& state) {
  const int64_t n = state.range(0), hidden = 2048;
  auto backend = make_cpu_backend(2);
  Activations y;
  const std::vector<float> xs = random_floats(n * hidden, 6), ws = random_floats(hidden, 7);
  Activations x = backend->make_tensor(xs, n, hidden);
  const TensorView w{DType::kF32, {hidden}, ws.data(), ws.size() * sizeof(float)};
  for (auto _ : state) backend->rms_norm(x, w, 1e-5f, 0.0f, hidden, y);
  state.SetBytesProcessed(state.iterations() * n * hidden * 8);
}
BENCHMARK(RmsNorm)->Arg(1)->Arg(128)->UseRealTime();

void Rope(benchmark::State& state) {
  const int64_t n = state.range(0), heads = 32, hd = 64;
  auto backend = make_cpu_backend(2);
  const std::vector<float> xs = random_floats(n * heads * hd, 8);
  Activations x = backend->make_tensor(xs, n, heads * hd);
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(i);
  RopeTable t;
  t.style = RopeStyle::kInterleaved;
  t.dims = hd;
  for (int64_t i = 0; i < hd / 2; ++i) t.inv_freq.push_back(std::pow(10000.0f, -2.0f * i / hd));
  backend->begin_step({pos, 1, {}});
  for (auto _ : state) backend->rope(x, heads, hd, t);
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(Rope)->Arg(1)->Arg(128)->UseRealTime();

// One decode token attending over `ctx` cached positions (32 heads, 8 KV heads, head size 64).
void Attention(benchmark::State& state) {
  const int64_t ctx = state.range(0), heads = 32, kv = 8, hd = 64, bs = 16;
  auto backend = make_cpu_backend(2);
  const std::unique_ptr<KvCache> cache =
      backend->make_kv_cache(1, kv, hd, bs, (ctx + bs) / bs + 1, DType::kF32);
  std::vector<int32_t> table;
  for (int64_t b = 0; b < cache->n_blocks(); ++b) table.push_back(static_cast<int32_t>(b));
  const std::vector<float> qs = random_floats(heads * hd, 9);
  Activations q = backend->make_tensor(qs, 1, heads * hd),
              kx = backend->make_tensor(std::vector<float>(kv * hd), 1, kv * hd),
              vx = backend->make_tensor(std::vector<float>(kv * hd), 1, kv * hd), out;
  const SeqSlice seq{0, 1, ctx, table};
  const AttentionParams p{heads, kv, hd, 0.125f, 0.0f, 0};
  backend->begin_step({std::span<const int32_t>(), 1, {&seq, 1}});
  for (auto _ : state) backend->attention(q, kx, vx, *cache, 0, p, out);
  // K and V of every position are read once per KV head group.
  state.SetBytesProcessed(state.iterations() * (ctx + 1) * kv * hd * 4 * 2);
}
BENCHMARK(Attention)->Arg(128)->Arg(2048)->UseRealTime();

}  // namespace
}  // namespace loom

BENCHMARK_MAIN();
