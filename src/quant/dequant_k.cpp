// Dequantization of the K-quants (256-element super-blocks): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//
// Bit-exact with ggml's dequantize_row_q*_K (ggml/src/ggml-quants.c): each element is computed
// with the same float operations in the same order (the sub-block factor first, e.g.
// `(d * sc) * q - dmin * m`, and Q6_K's `(d * sc) * q`), compiled with -ffp-contract=off.
//
// Shared packing of the 2-bit formats (Q2_K, Q3_K low bits): the 256 elements form two halves of
// 128; half h uses qs[32h .. 32h+31], and element 128h + 32g + l (g = 0..3, l = 0..31) is bits
// 2g..2g+1 of qs[32h + l]. Sub-block (16 elements) index is 8h + 2g + l/16.
#include "quant/blocks.h"

namespace loom::quant_detail {

void dequant_q2_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ2_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ2_K& blk = blocks[b];
    const float d = load_half(blk.d);
    const float dmin = load_half(blk.dmin);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = blk.qs + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const int shift = 2 * g;
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = blk.scales[8 * h + 2 * g + half];
          const float dl = d * static_cast<float>(sc & 0xF);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            *dst++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
          }
        }
      }
    }
  }
}

// Q3_K: the third bit of element 128h + 32g + l is bit 4h + g of hmask[l]; a clear bit means
// "subtract 4" (q - 4 with q in 0..7 stored as low2 + 4 * hbit).
void dequant_q3_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ3_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ3_K& blk = blocks[b];
    const float d_all = load_half(blk.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = blk.qs + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const int shift = 2 * g;
        const uint8_t mask = static_cast<uint8_t>(1u << (4 * h + g));
        for (int half = 0; half < 2; ++half) {
          const int sc = unpack_scale_q3k(8 * h + 2 * g + half, blk.scales) - 32;
          const float dl = d_all * static_cast<float>(sc);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> shift) & 3) - ((blk.hmask[l] & mask) ? 0 : 4);
            *dst++ = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

// Q4_K: four chunks of 64; chunk c uses qs[32c .. 32c+31]: low nibbles are elements 64c + l
// (sub-block 2c), high nibbles 64c + 32 + l (sub-block 2c + 1).
void dequant_q4_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ4_K& blk = blocks[b];
    const float d = load_half(blk.d);
    const float dmin = load_half(blk.dmin);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = blk.qs + 32 * c;
      uint8_t sc, m;
      unpack_scale_min_k4(2 * c, blk.scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      unpack_scale_min_k4(2 * c + 1, blk.scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *dst++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: as Q4_K; the fifth bit of element 64c + l is bit 2c of qh[l], of 64c + 32 + l bit 2c+1.
void dequant_q5_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ5_K& blk = blocks[b];
    const float d = load_half(blk.d);
    const float dmin = load_half(blk.dmin);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = blk.qs + 32 * c;
      const uint8_t u1 = static_cast<uint8_t>(1u << (2 * c));
      const uint8_t u2 = static_cast<uint8_t>(2u << (2 * c));
      uint8_t sc, m;
      unpack_scale_min_k4(2 * c, blk.scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      unpack_scale_min_k4(2 * c + 1, blk.scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] & 0xF) + ((blk.qh[l] & u1) ? 16 : 0);
        *dst++ = d1 * static_cast<float>(v) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] >> 4) + ((blk.qh[l] & u2) ? 16 : 0);
        *dst++ = d2 * static_cast<float>(v) - m2;
      }
    }
  }
}

// Q6_K: two halves of 128; half h uses ql[64h ..], qh[32h ..], scales[8h ..]. Quarter k (k =
// 0..3) of a half holds elements 32k + l (l = 0..31) as
//   nibble k / 2 (low, high) of ql[32 * (k % 2) + l]  |  bits 2k..2k+1 of qh[l] << 4,
// minus 32; sub-block (16 elements) 2k + l / 16 of the half. ggml computes (d * sc) * q; the
// product d * sc is the same float for all 16 elements of a sub-block, so it is hoisted.
void dequant_q6_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ6_K& blk = blocks[b];
    const float d = load_half(blk.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* qh = blk.qh + 32 * h;
      for (int k = 0; k < 4; ++k) {
        const uint8_t* ql = blk.ql + 64 * h + 32 * (k % 2);
        const int nibble_shift = 4 * (k / 2);
        const int high_shift = 2 * k;
        for (int sub = 0; sub < 2; ++sub) {
          const float ds = d * static_cast<float>(blk.scales[8 * h + 2 * k + sub]);
          for (int l = 16 * sub; l < 16 * sub + 16; ++l) {
            const int q = ((ql[l] >> nibble_shift) & 0xF) | (((qh[l] >> high_shift) & 3) << 4);
            *dst++ = ds * static_cast<float>(q - 32);
          }
        }
      }
    }
  }
}

void dequant_q8_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ8_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ8_K& blk = blocks[b];
    float d;
    std::memcpy(&d, blk.d, 4);
    for (int j = 0; j < kQK_K; ++j) *dst++ = d * static_cast<float>(blk.qs[j]);
  }
}

}  // namespace loom::quant_detail
