// Quantization into the 32-element formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//
// These follow ggml's reference quantizers (quantize_row_q*_ref in ggml/src/ggml-quants.c, the
// code llama.cpp's quantize tool uses for these types) step for step, so the bytes are identical:
// - the symmetric formats take the signed value of largest magnitude `max` and set d = max / -8
//   (Q4_0) or max / -16 (Q5_0), so that max itself maps to the extreme code 0 and the other side
//   keeps one more level; Q8_0 uses d = amax / 127;
// - the _1 formats map [min, max] onto 0..15 / 0..31 with d = (max - min) / levels, m = min;
// - codes are found with the float inverse 1/d (not the fp16-rounded d), rounded by adding 0.5
//   and truncating (ggml's `(int8_t)(x + 8.5f)`), and clamped to the top code.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"

namespace loom::quant_detail {
namespace {

// The value of largest magnitude in a block (the first one on ties), with its sign.
float signed_absmax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, int n, float* min_out, float* max_out) {
  float min = FLT_MAX;
  float max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  *min_out = min;
  *max_out = max;
}

// Truncating float-to-int conversion of a value already offset by +0.5 (so: round half up),
// clamped to the top code: ggml's MIN(top, (int8_t)v) for every v a finite row produces
// (v > 0). A NaN (from Inf/NaN input) gives 0 instead of an undefined conversion.
int trunc_code(float v, int top) {
  if (v >= static_cast<float>(top)) return top;
  return v > 0.0f ? static_cast<int>(v) : 0;
}

}  // namespace

void quant_q4_0(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    BlockQ4_0& blk = blocks[b];
    const float d = signed_absmax(x, kQK) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(blk.d, d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = trunc_code(x[j] * id + 8.5f, 15);
      const int hi = trunc_code(x[j + kQK / 2] * id + 8.5f, 15);
      blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quant_q4_1(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    BlockQ4_1& blk = blocks[b];
    float min, max;
    min_max(x, kQK, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(blk.d, d);
    store_half(blk.m, min);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = trunc_code((x[j] - min) * id + 0.5f, 15);
      const int hi = trunc_code((x[j + kQK / 2] - min) * id + 0.5f, 15);
      blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Splits 32 five-bit codes into nibbles (qs) and the fifth bits (qh, bit j = element j).
static void pack_q5(const int* codes, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = codes[j];
    const int hi = codes[j + kQK / 2];
    qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
    qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + kQK / 2);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quant_q5_0(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_0*>(dst);
  int codes[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    BlockQ5_0& blk = blocks[b];
    const float d = signed_absmax(x, kQK) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(blk.d, d);
    for (int j = 0; j < kQK; ++j) codes[j] = trunc_code(x[j] * id + 16.5f, 31);
    pack_q5(codes, blk.qs, blk.qh);
  }
}

void quant_q5_1(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_1*>(dst);
  int codes[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    BlockQ5_1& blk = blocks[b];
    float min, max;
    min_max(x, kQK, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(blk.d, d);
    store_half(blk.m, min);
    // ggml does not clamp here ((max - min) * id cannot pass 31.5); clamping only guards NaN.
    for (int j = 0; j < kQK; ++j) codes[j] = trunc_code((x[j] - min) * id + 0.5f, 31);
    pack_q5(codes, blk.qs, blk.qh);
  }
}

void quant_q8_0(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    BlockQ8_0& blk = blocks[b];
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(blk.d, d);
    // roundf: halves away from zero, as ggml. |x * id| <= 127 for finite rows; the clamp only
    // keeps NaN/Inf input from an undefined float-to-int conversion.
    for (int j = 0; j < kQK; ++j) {
      const float v = std::fmax(-127.0f, std::fmin(127.0f, x[j] * id));
      blk.qs[j] = static_cast<int8_t>(std::round(v));
    }
  }
}

}  // namespace loom::quant_detail
