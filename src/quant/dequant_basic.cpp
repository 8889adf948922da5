// Dequantization of the 32-element formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//
// Bit-exact with ggml's dequantize_row_q*_0/_1 (ggml/src/ggml-quants.c): every element is one
// float product (and one sum for the _1 formats) of the same operands, and this file is compiled
// with -ffp-contract=off so that `q * d + m` is never fused into an FMA.
#include <cstring>

#include "quant/blocks.h"

namespace loom::quant_detail {

void dequant_q4_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
    const BlockQ4_0& blk = blocks[b];
    const float d = load_half(blk.d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (blk.qs[j] & 0xF) - 8;
      const int hi = (blk.qs[j] >> 4) - 8;
      dst[j] = static_cast<float>(lo) * d;
      dst[j + kQK / 2] = static_cast<float>(hi) * d;
    }
  }
}

void dequant_q4_1(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
    const BlockQ4_1& blk = blocks[b];
    const float d = load_half(blk.d);
    const float m = load_half(blk.m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = static_cast<float>(blk.qs[j] & 0xF) * d + m;
      dst[j + kQK / 2] = static_cast<float>(blk.qs[j] >> 4) * d + m;
    }
  }
}

// The fifth bits of a Q5 block: bit j of the little-endian u32 belongs to element j.
static uint32_t load_qh(const uint8_t* qh) {
  uint32_t v;
  std::memcpy(&v, qh, 4);
  return v;
}

void dequant_q5_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
    const BlockQ5_0& blk = blocks[b];
    const float d = load_half(blk.d);
    const uint32_t qh = load_qh(blk.qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = static_cast<int>((blk.qs[j] & 0xF) | (((qh >> j) & 1u) << 4)) - 16;
      const int hi = static_cast<int>((blk.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16;
      dst[j] = static_cast<float>(lo) * d;
      dst[j + kQK / 2] = static_cast<float>(hi) * d;
    }
  }
}

void dequant_q5_1(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
    const BlockQ5_1& blk = blocks[b];
    const float d = load_half(blk.d);
    const float m = load_half(blk.m);
    const uint32_t qh = load_qh(blk.qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint32_t lo = (blk.qs[j] & 0xF) | (((qh >> j) & 1u) << 4);
      const uint32_t hi = (blk.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
      dst[j] = static_cast<float>(lo) * d + m;
      dst[j + kQK / 2] = static_cast<float>(hi) * d + m;
    }
  }
}

void dequant_q8_0(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQK; ++b, dst += kQK) {
    const BlockQ8_0& blk = blocks[b];
    const float d = load_half(blk.d);
    for (int j = 0; j < kQK; ++j) dst[j] = static_cast<float>(blk.qs[j]) * d;
  }
}

}  // namespace loom::quant_detail
