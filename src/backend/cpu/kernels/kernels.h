// CPU compute kernels with run-time dispatch. Each weight family has one file
// (float_kernels.cpp: F32/F16/BF16; q4_0.cpp, q8_0.cpp, q4_k.cpp, q6_k.cpp) holding a portable
// scalar version and an AVX-512 version (compiled with target attributes, so the library runs
// on any x86-64 and picks the fast one when the CPU has AVX-512F/BW/VL/VNNI + FMA + F16C).
// cpu_matmul.cpp is the dispatch point; it asks `find_kernels(dtype)` once per matmul.
//
// Two products:
// - decode (few activation rows): a dot of one weight row with one activation row. Quantized
//   weights meet activations quantized to 8 bits in blocks of 32 (`QAct`: ggml's Q8_0 idea, as
//   llama.cpp's vec_dot does), so the inner loop is an int8 dot product (vpdpbusd);
//   float-family weights are converted and FMA'd against the float activations exactly.
// - prefill (many rows): int8 for quantized weights (gemm_q8.cpp); float-convertible weights
//   are converted a panel at a time into float32 and multiplied with the float activations by
//   a register-tiled broadcast micro-kernel (gemm_f32.cpp), so the result equals the float32
//   reference up to summation order.
// - Q4_0/Q4_K: repacked 16 rows at a time, one kernel for both (packed.cpp).
//
// Thread-safety: all functions are pure on their arguments.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace loom::cpu::kernels {

// True when the AVX-512 paths may run (checked once; LOOM_KERNELS=scalar forces the scalar
// paths, for tests and benchmarks).
bool use_avx512();
// The AVX2 + FMA + F16C tier (avx2.cpp), for x86 CPUs without AVX-512: true when the CPU has it
// and use_avx512() is false. LOOM_KERNELS=avx2 selects it on an AVX-512 CPU too (tests, and
// measuring the tier), LOOM_KERNELS=scalar the portable code.
bool use_avx2();
// How far ahead (bytes) the packed Q4_0 / Q8_0 kernels prefetch their weights, 0 for not at all.
// Measured per vendor (DecodeStep, GB/s of weights): on an Intel Xeon (2 vCPUs) 4096 bytes ahead
// read Q4_0 at 11.5-13.1 GB/s per thread instead of 9.1-9.4 (two threads 20.5-24.8 vs
// 16.2-16.6), Q8_0 24.4-26.1 vs 19.4-23.6; on AMD Zen 5 the hardware prefetcher does better
// alone (Q4_0 24.0-24.2 without, 19.5-22.7 with). So: 4096 on Intel, none elsewhere.
// LOOM_PAIR_PREFETCH=N sets it (measuring another CPU).
int64_t pair_prefetch_bytes();

// One activation row quantized to 8 bits: k values as qs[i] * d[i / 32]; s16[j] is
// d[j / 2] * (sum of qs over the 16 values j*16 .. j*16+15), kept so that the zero-point of
// Q4_0 (q - 8), the minima of Q4_K and the offset of Q6_K (q - 32) are applied once per block
// instead of per element; isum[b] is the integer sum of qs over block b (the packed kernels
// start their integer accumulators at -8 * isum for Q4_0's zero point, exactly).
struct QAct {
  const int8_t* qs;
  const float* d;
  const float* s16;
  const int32_t* isum;
  const int32_t* isum16;  // the sum of each 16 qs (packed Q6_K's offset)
};

// Bytes of scratch for one quantized activation row of k values (k a multiple of 32), laid
// out as qs[k], d[k/32], s16[k/16], isum[k/32], isum16[k/16] with each part 64-byte aligned in
// the buffer.
int64_t qact_bytes(int64_t k);
// Quantizes x[k] into `buf` (qact_bytes(k) bytes, 64-byte aligned) and returns the view.
QAct quantize_act(const float* x, int64_t k, void* buf);
// Writes block b of a quantized activation whose 32 values are not all finite: qs 0, d and the
// partial sums NaN, so every dot product with it is NaN (what a float path gives).
void nonfinite_block(int64_t b, int8_t* qs, float* d, float* s16, int32_t* isum);

// Dot of one weight row (raw bytes as in the file) with one activation row.
using QDotFn = float (*)(const void* w, const QAct& a, int64_t k);
using FDotFn = float (*)(const void* w, const float* x, int64_t k);
// The dots of one weight row with `rows` activation rows, each bit for bit what FDotFn gives
// (the same operations per row), the weights loaded and converted once per group of rows: a
// step of several rows (speculative checking) costs about what one row does.
using FDotRowsFn = void (*)(const void* w, const float* const* x, int rows, int64_t k, float* out);
// Dequantizes k weights of one row to float32, bit-exact with loom::dequantize_row.
using DequantFn = void (*)(const void* w, float* y, int64_t k);

struct Kernels {
  QDotFn qdot = nullptr;           // set for Q4_0, Q8_0, Q4_K, Q6_K
  FDotFn fdot = nullptr;           // set for F32, F16, BF16
  DequantFn dequant = nullptr;     // set for all of the above but F32 (used in place)
  FDotRowsFn fdot_rows = nullptr;  // where the tier has one (AVX-512: F32, F16, BF16)
};

// The kernels for weights of `type` on this CPU; both null when the type has none (the caller
// falls back to dequantize_row + float dot).
Kernels find_kernels(DType type);

// Prefill in int8 for Q4_0/Q8_0/Q4_K/Q6_K weights (gemm_q8.cpp; AVX-512 VNNI only). The n
// activation rows are quantized and interleaved once per matmul (pack_activations into
// packed_act_bytes(n, k) bytes, 64-byte aligned); then each call of gemm_q8 unpacks `rows`
// (<= 8) weight rows into `panel` (weight_panel_bytes(k), 64-byte aligned) and writes
// y[c * ldy + r] for c < n, r < rows.
bool int8_gemm_supported(DType type);
int64_t packed_act_bytes(int64_t n, int64_t k);
int64_t weight_panel_bytes(int64_t k);
void pack_activations(const float* x, int64_t ldx, int64_t n, int64_t k, void* buf);
void gemm_q8(DType type, const void* w, uint64_t row_bytes, int rows, const void* act, int64_t n,
             int64_t k, void* panel, float* y, int64_t ldy);

// gemm_q8's products for few activation rows (n <= kGemvRows) without padding them to 16:
// gemv_q8 unpacks `rows` (<= 16) weight rows as gemm_q8 does into `scratch`
// (gemv_q8_scratch_bytes(k), 64-byte aligned), transposes them 4 bytes per lane and writes
// y[c * ldy + r] for c < n (each activation row quantized with quantize_act), bit for bit what
// gemm_q8 writes for them; so the batch-invariant backend decodes at the speed of a dot
// product. AVX-512 VNNI only, for the types of int8_gemm_supported.
int64_t gemv_q8_scratch_bytes(int64_t k);
void gemv_q8(DType type, const void* w, uint64_t row_bytes, int rows, const QAct* acts, int n,
             int64_t k, void* scratch, float* y, int64_t ldy);

// Prefill for float-convertible weights (gemm_f32.cpp): pack_panel32 converts to float32 and
// transposes `rows` (<= 32) row-major rows of kc values of `type` (F32, F16 or BF16; row stride
// ld elements) into wt[kc][32] (64-byte aligned, rows past `rows` zero); gemm_panel32 then writes
// (or with `accumulate` adds) y[c * ldy + r] = sum over kk < kc of wt[kk][r] * x[c * ldx + kk] for
// r < rows, c < n.
constexpr int kPanel32 = 32;
void pack_panel32(DType type, const void* src, int64_t ld, int rows, int64_t kc, float* wt);
// `next` (optional) names the bytes the caller reads next (`rows` rows of `bytes` at `base`,
// `stride` apart): gemm_panel32 prefetches them a slice per micro-kernel call, so the misses
// overlap the FMAs instead of queueing behind one burst.
struct PanelPrefetch {
  const uint8_t* base = nullptr;
  uint64_t stride = 0, bytes = 0;
  int rows = 0;
};
void gemm_panel32(const float* wt, int64_t kc, const float* x, int64_t ldx, int64_t n, float* y,
                  int64_t ldy, int rows, bool accumulate, const PanelPrefetch& next = {});

// The same products for few activation rows (n <= kGemvRows) without a stored panel:
// gemv_panel32 writes y[c * ldy + r] for r < rows (<= 32), c < n, over the whole k (rows of
// `type` F32/F16/BF16 at `src`, stride ld elements), summing panel_k columns at a time exactly as
// pack_panel32 + gemm_panel32 over panels of panel_k do, bit for bit; so the batch-invariant
// backend can decode at the speed of a dot product. AVX-512 only (gemv_panel32_supported).
constexpr int kGemvRows = 4;
bool gemv_panel32_supported();
// prefetch_rows: rows at src that may be read ahead (this call's and the next call's).
void gemv_panel32(DType type, const void* src, int64_t ld, int rows, int64_t k, int64_t panel_k,
                  const float* x, int64_t ldx, int n, float* y, int64_t ldy, int64_t prefetch_rows);

// Prefill with many activation rows, in the activation-major form: the activations are
// transposed once per matmul (xt[kk][c], row stride ldxt, a multiple of 16, 64-byte aligned, the
// columns past n zero) so that the weights need no transposing, only converting to float32
// rows. gemm_xt writes (or with `accumulate` adds) yt[r * ldyt + c] = sum over kk < kc of
// w[r * ldw + kk] * xt[kk * ldxt + c] for r < rows (<= kXtRows), c < n (a multiple of 16; yt
// 64-byte aligned, ldyt a multiple of 16). Per output it is the arithmetic of gemm_panel32 with
// the same kc panels, bit for bit, so the two forms can serve different batch sizes.
// transpose_f32: dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols.
constexpr int kXtRows = 12;
void transpose_f32(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst,
                   int64_t ldd);
void gemm_xt(const float* w, int64_t ldw, int rows, int64_t kc, const float* xt, int64_t ldxt,
             int64_t n, float* yt, int64_t ldyt, bool accumulate);

// Q4_0 / Q4_K / Q6_K / Q8_0 weights repacked 16 rows at a time (packed.cpp; AVX-512 VNNI
// only): one kernel for decode and prefill whose per-row arithmetic does not depend on the
// number of activation rows. packable() says whether a [m, k] matrix of `type` can be packed
// here; pack_rows16 rewrites 16 consecutive file rows (16 * row_bytes bytes) into the same
// number of bytes at `dst`; packed_gemm computes y[c * ldy + r] for the group's 16 rows r and
// the n activation rows c (quantized with quantize_act), kPackTileCols at a time.
constexpr int kPackRows = 16;
constexpr int kPackTileCols = 16;
bool packable(DType type, int64_t m, int64_t k);
void pack_rows16(DType type, const void* src, uint64_t row_bytes, int64_t k, void* dst);
void packed_gemm(DType type, const void* group, int64_t k, const QAct* a, int64_t n, float* y,
                 int64_t ldy);

// Dense float helpers for attention and norms.
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a * x
float sum_squares_f32(const float* x, int64_t n);
// o = g * sigmoid(g) * u (SwiGLU), and x = exp(x - shift) in place returning sum(x) (softmax);
// the AVX-512 paths use a vector e^x within 2 ulp of expf.
void silu_mul(const float* g, const float* u, float* o, int64_t n);
float exp_shift_sum(float* x, int64_t n, float shift);

// Attention of one query row for the `nq` heads (q: nq x head_dim floats, consecutive) that
// share one KV head, over the keys/values in `runs` (run i: n positions, `stride` bytes apart,
// stored as `kv_type`: F32, F16, BF16 or Q8_0), in position order: per head,
// scores = scale * q.k (then softcap * tanh(s / softcap) when softcap > 0), softmax,
// out[h] = sum_j p_j v_j. `scores` holds nq x (total keys) floats. Keys and values are widened
// in registers (attention.cpp); per head the arithmetic is the float path's over the
// dequantized rows, so the result depends neither on nq nor on how the positions are split
// into runs (cache blocks).
struct KvRun {
  const uint8_t* k;
  const uint8_t* v;
  int64_t n;
};
void attend_group(const float* q, int nq, int64_t head_dim, const KvRun* runs, int n_runs,
                  int64_t stride, DType kv_type, float scale, float softcap, float* scores,
                  float* out);
// Whether attend_group reads `kv_type` for heads of `head_dim` (Q8_0: whole 32-blocks per head).
bool attention_supports(DType kv_type, int64_t head_dim);
// Writes one row of n floats as `kv_type` (fp16/bf16 round to nearest even; Q8_0 as ggml).
void store_kv_row(const float* x, int64_t n, DType kv_type, uint8_t* dst);

// Per-family entry points (scalar and AVX-512), used by find_kernels and the tests.
namespace scalar {
float dot_q4_0(const void* w, const QAct& a, int64_t k);
float dot_q8_0(const void* w, const QAct& a, int64_t k);
float dot_q4_k(const void* w, const QAct& a, int64_t k);
float dot_q6_k(const void* w, const QAct& a, int64_t k);
float dot_f32w(const void* w, const float* x, int64_t k);
float dot_f16(const void* w, const float* x, int64_t k);
float dot_bf16(const void* w, const float* x, int64_t k);
}  // namespace scalar
namespace avx512 {
void dot_rows_f32w(const void* w, const float* const* x, int rows, int64_t k, float* out);
void dot_rows_f16(const void* w, const float* const* x, int rows, int64_t k, float* out);
void dot_rows_bf16(const void* w, const float* const* x, int rows, int64_t k, float* out);
float dot_q4_0(const void* w, const QAct& a, int64_t k);
float dot_q8_0(const void* w, const QAct& a, int64_t k);
float dot_q4_k(const void* w, const QAct& a, int64_t k);
float dot_q6_k(const void* w, const QAct& a, int64_t k);
float dot_f32w(const void* w, const float* x, int64_t k);
float dot_f16(const void* w, const float* x, int64_t k);
float dot_bf16(const void* w, const float* x, int64_t k);
void dequant_q4_0(const void* w, float* y, int64_t k);
void dequant_q8_0(const void* w, float* y, int64_t k);
void dequant_q4_k(const void* w, float* y, int64_t k);
void dequant_q6_k(const void* w, float* y, int64_t k);
void dequant_f16(const void* w, float* y, int64_t k);
void dequant_bf16(const void* w, float* y, int64_t k);
}  // namespace avx512
namespace avx2 {
float dot_q4_0(const void* w, const QAct& a, int64_t k);
float dot_q8_0(const void* w, const QAct& a, int64_t k);
float dot_q4_k(const void* w, const QAct& a, int64_t k);
float dot_q6_k(const void* w, const QAct& a, int64_t k);
float dot_f32w(const void* w, const float* x, int64_t k);
float dot_f16(const void* w, const float* x, int64_t k);
float dot_bf16(const void* w, const float* x, int64_t k);
void dequant_f16(const void* w, float* y, int64_t k);
void dequant_bf16(const void* w, float* y, int64_t k);
void dequant_q4_0(const void* w, float* y, int64_t k);
void dequant_q8_0(const void* w, float* y, int64_t k);
// quantize_act's arithmetic (same values as the portable quantizer) into its layout's parts.
void quantize_row(const float* x, int64_t k, int8_t* qs, float* d, float* s16, int32_t* isum);
// transpose_f32's contract.
void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd);
// gemm_xt's contract, in 6 x 16 register tiles.
void gemm_xt(const float* w, int64_t ldw, int rows, int64_t kc, const float* xt, int64_t ldxt,
             int64_t n, float* yt, int64_t ldyt, bool accumulate);
}  // namespace avx2

}  // namespace loom::cpu::kernels
