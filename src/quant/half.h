// Half-precision conversions: IEEE binary16 ("F16") and bfloat16 ("BF16") to and from float.
//
// Contract: pure functions on values, no state, safe from any thread.
// - fp32_to_fp16 rounds to nearest, ties to even, as IEEE 754 and x86 F16C (_cvtss_sh with
//   _MM_FROUND_TO_NEAREST_INT) do: overflow becomes +-Inf, tiny values become half subnormals or
//   +-0, and a NaN stays a NaN (quiet bit set, top 10 payload bits kept, sign kept).
//   For every non-NaN input the result equals ggml's GGML_FP32_TO_FP16.
// - fp16_to_fp32 is exact (every half is a float); a NaN keeps its payload and becomes quiet
//   (identical to F16C's _cvtsh_ss for all 65536 inputs).
// - fp32_to_bf16 rounds to nearest even and quiets NaNs, as PyTorch and ggml's
//   GGML_FP32_TO_BF16 do; bf16_to_fp32 is exact.
// The integer-only implementations do not depend on the FPU's rounding mode or on
// flush-to-zero settings.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace loom {

// The i-th 16-bit value of an unaligned array of F16 or BF16 bits.
inline uint16_t half_bits_at(const void* p, int64_t i) {
  uint16_t h;
  std::memcpy(&h, static_cast<const uint8_t*>(p) + 2 * i, 2);
  return h;
}

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // Inf, or NaN with its payload...
    if (mant != 0) bits |= 0x400000u;          // ...made quiet, as IEEE and F16C do
  } else if (exp != 0) {
    bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half (mant * 2^-24): normalise so that the leading 1 reaches bit 10.
    const int shift = std::countl_zero(mant) - 21;  // mant has at most 10 significant bits
    mant = (mant << shift) & 0x3FFu;
    bits = sign | (static_cast<uint32_t>(127 - 15 + 1 - shift) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) {  // NaN: keep the top payload bits and make it quiet
    return static_cast<uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
  }
  if (ax >= 0x477FF000u) {  // >= 65520 (halfway above 65504, the largest half): Inf
    return static_cast<uint16_t>(sign | 0x7C00u);
  }
  if (ax >= 0x38800000u) {  // >= 2^-14: a normal half; round the 13 dropped bits to even
    const uint32_t rounded = ax + 0xFFFu + ((ax >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded - ((127u - 15u) << 23)) >> 13));
  }
  // Half subnormal (or zero): the result is the value in units of 2^-24, rounded to even.
  const uint32_t exp = ax >> 23;
  if (exp < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself ties to 0)
  const uint32_t mant = (ax & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - exp;  // value = mant * 2^(exp-150) = (mant >> shift) * 2^-24
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the smallest normal
  return static_cast<uint16_t>(sign | q);
}

inline float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) {
    return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN: truncate and set the quiet bit
  }
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);  // nearest even
}

}  // namespace loom
