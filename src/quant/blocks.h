// ggml's block layouts (ggml/src/ggml-common.h), spelled as byte arrays so that a block may sit
// at any address and be read without aliasing or alignment concerns. Multi-byte fields are
// little-endian, as in GGUF files; half-precision fields are IEEE binary16.
//
// Internal to loom_quant (tests include it to check sizes); not part of the public API.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "quant/half.h"

namespace loom::quant_detail {

static_assert(std::endian::native == std::endian::little, "block fields are read as little-endian");

inline constexpr int kQK = 32;     // block size of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
inline constexpr int kQK_K = 256;  // super-block size of the K-quants

// x = d * (q - 8), q in 0..15; qs[j] holds element j (low nibble) and j + 16 (high nibble).
struct BlockQ4_0 {
  uint8_t d[2];
  uint8_t qs[kQK / 2];
};
// x = d * q + m, q in 0..15; nibbles as Q4_0.
struct BlockQ4_1 {
  uint8_t d[2];
  uint8_t m[2];
  uint8_t qs[kQK / 2];
};
// x = d * (q - 16), q in 0..31; low nibbles as Q4_0, bit j of the u32 qh is bit 4 of element j.
struct BlockQ5_0 {
  uint8_t d[2];
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q + m, q in 0..31; bits as Q5_0.
struct BlockQ5_1 {
  uint8_t d[2];
  uint8_t m[2];
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q, q in -128..127.
struct BlockQ8_0 {
  uint8_t d[2];
  int8_t qs[kQK];
};
// 16 sub-blocks of 16: x = d * sc * q - dmin * m, with (sc, m) 4-bit each in scales[j]
// (sc low nibble); q 2 bits, packed 4 per byte (see dequant_k.cpp for the order).
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint8_t d[2];
  uint8_t dmin[2];
};
// 16 sub-blocks of 16: x = d * (sc - 32) * (q - 4), sc 6 bits, q = 2 low bits + 1 bit in hmask.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint8_t d[2];
};
// 8 sub-blocks of 32: x = d * sc * q - dmin * m, sc and m 6 bits packed in 12 bytes, q 4 bits.
struct BlockQ4_K {
  uint8_t d[2];
  uint8_t dmin[2];
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  uint8_t d[2];
  uint8_t dmin[2];
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// 16 sub-blocks of 16: x = d * sc * (q - 32), sc int8, q 6 bits = 4 in ql + 2 in qh.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint8_t d[2];
};
// ggml's intermediate type for dot products: x = d * q with a float d; bsums are sums of 16 qs.
struct BlockQ8_K {
  uint8_t d[4];  // float
  int8_t qs[kQK_K];
  uint8_t bsums[kQK_K / 16 * 2];  // int16 each
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

inline float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}
inline void store_half(uint8_t* p, float f) {
  const uint16_t h = fp32_to_fp16(f);
  std::memcpy(p, &h, 2);
}

// Q4_K/Q5_K: 8 (scale, min) pairs of 6 bits in 12 bytes. Pairs 0..3 are the low 6 bits of
// bytes 0..3 (scale) and 4..7 (min); pairs 4..7 keep their low 4 bits in bytes 8..11 (scale in
// the low nibble, min in the high one) and their top 2 bits in the spare top bits of bytes 0..3
// (scale) and 4..7 (min). The layout of ggml's get_scale_min_k4.
inline void unpack_scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q3_K: 16 scales of 6 bits in 12 bytes. Low 4 bits: scales 0..7 in the low nibbles of bytes
// 0..7, scales 8..15 in their high nibbles; top 2 bits of scale j: bits 2*(j/4) of byte 8 + j%4.
// Stored with an offset of 32 (returned here as stored, 0..63).
inline int unpack_scale_q3k(int j, const uint8_t* s) {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return low | (high << 4);
}

// Per-format row kernels; n is a checked multiple of the block size.
void dequant_q4_0(const void* src, float* dst, int64_t n);
void dequant_q4_1(const void* src, float* dst, int64_t n);
void dequant_q5_0(const void* src, float* dst, int64_t n);
void dequant_q5_1(const void* src, float* dst, int64_t n);
void dequant_q8_0(const void* src, float* dst, int64_t n);
void dequant_q2_k(const void* src, float* dst, int64_t n);
void dequant_q3_k(const void* src, float* dst, int64_t n);
void dequant_q4_k(const void* src, float* dst, int64_t n);
void dequant_q5_k(const void* src, float* dst, int64_t n);
void dequant_q6_k(const void* src, float* dst, int64_t n);
void dequant_q8_k(const void* src, float* dst, int64_t n);

void quant_q4_0(const float* src, void* dst, int64_t n);
void quant_q4_1(const float* src, void* dst, int64_t n);
void quant_q5_0(const float* src, void* dst, int64_t n);
void quant_q5_1(const float* src, void* dst, int64_t n);
void quant_q8_0(const float* src, void* dst, int64_t n);
void quant_q2_k(const float* src, void* dst, int64_t n);
void quant_q3_k(const float* src, void* dst, int64_t n);
void quant_q4_k(const float* src, void* dst, int64_t n);
void quant_q5_k(const float* src, void* dst, int64_t n);
void quant_q6_k(const float* src, void* dst, int64_t n);
void quant_q8_k(const float* src, void* dst, int64_t n);

}  // namespace loom::quant_detail
