// Quantization into the K-quants: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
//
// Each follows ggml's reference quantizer without importance matrix (quantize_row_q*_K_ref in
// ggml/src/ggml-quants.c, what llama.cpp's quantize tool runs when no imatrix is given), so the
// bytes are identical. The common shape:
//   1. fit a scale (and for Q2_K/Q4_K/Q5_K a min) per sub-block with the searches of
//      kquant_fit.h;
//   2. quantize those per-sub-block factors against one fp16 super-block factor (4, 6 or 8 bits);
//   3. re-quantize every element against the *stored* (rounded) factors, so the codes fit the
//      values the dequantizer will really use — except in a sub-block whose stored scale is 0,
//      which keeps the codes from step 1 (as ggml does);
//   4. pack the codes in the layout dequant_k.cpp reads.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/kquant_fit.h"

namespace loom::quant_detail {
namespace {

// The 2-bit packing shared by Q2_K and Q3_K (see dequant_k.cpp): element 128h + 32g + l is bits
// 2g..2g+1 of qs[32h + l].
template <typename Code>
void pack_2bit(const Code* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    const Code* c = L + 128 * h;
    for (int l = 0; l < 32; ++l) {
      qs[32 * h + l] =
          static_cast<uint8_t>(c[l] | (c[l + 32] << 2) | (c[l + 64] << 4) | (c[l + 96] << 6));
    }
  }
}

// Steps 1-3 for Q4_K and Q5_K (8 sub-blocks of 32, 6-bit scales and mins, see
// unpack_scale_min_k4 for the packing). Returns codes 0..nmax in L.
void quantize_scale_min_block(const float* x, int nmax, float rmin, int nstep, uint8_t* d_out,
                              uint8_t* dmin_out, uint8_t* scales, uint8_t* L) {
  float sub_scale[8], sub_min[8];
  float weights[32];
  uint8_t scratch[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    // Weight each element by the sub-block's RMS plus its own magnitude.
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    sub_scale[j] = fit_scale_min(32, nmax, xs, weights, L + 32 * j, &sub_min[j], scratch, rmin,
                                 0.1f, nstep, false);
    if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
    if (sub_min[j] > max_min) max_min = sub_min[j];
  }

  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    // ggml stores nearest_int into a uint8_t before clamping; keep that wrap-around.
    const uint8_t ls =
        std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * sub_scale[j])));
    const uint8_t lm =
        std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * sub_min[j])));
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  store_half(d_out, max_scale / 63.f);
  store_half(dmin_out, max_min / 63.f);

  const float d_all = load_half(d_out);
  const float dmin_all = load_half(dmin_out);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(j, scales, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int q = nearest_int((x[32 * j + l] + dm) / d);
      L[32 * j + l] = static_cast<uint8_t>(std::max(0, std::min(nmax, q)));
    }
  }
}

}  // namespace

void quant_q2_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ2_K*>(dst);
  uint8_t L[kQK_K];
  uint8_t scratch[16];
  float weights[16];
  float sub_scale[16], sub_min[16];
  constexpr float kLevels = 15.f;  // scales and mins are 4 bits
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ2_K& blk = blocks[b];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      sub_scale[j] = fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &sub_min[j], scratch,
                                   -0.5f, 0.1f, 15, true);
      if (sub_scale[j] > max_scale) max_scale = sub_scale[j];
      if (sub_min[j] > max_min) max_min = sub_min[j];
    }
    if (max_scale > 0) {
      const float iscale = kLevels / max_scale;
      for (int j = 0; j < 16; ++j) {
        blk.scales[j] = static_cast<uint8_t>(nearest_int(iscale * sub_scale[j]));
      }
      store_half(blk.d, max_scale / kLevels);
    } else {
      std::memset(blk.scales, 0, sizeof blk.scales);
      store_half(blk.d, 0.f);
    }
    if (max_min > 0) {
      const float iscale = kLevels / max_min;
      for (int j = 0; j < 16; ++j) {
        blk.scales[j] |= static_cast<uint8_t>(nearest_int(iscale * sub_min[j]) << 4);
      }
      store_half(blk.dmin, max_min / kLevels);
    } else {
      store_half(blk.dmin, 0.f);
    }
    const float d_all = load_half(blk.d);
    const float dmin_all = load_half(blk.dmin);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(blk.scales[j] & 0xF);
      if (d == 0.0f) continue;
      const float dm = dmin_all * static_cast<float>(blk.scales[j] >> 4);
      for (int l = 0; l < 16; ++l) {
        const int q = nearest_int((x[16 * j + l] + dm) / d);
        L[16 * j + l] = static_cast<uint8_t>(std::max(0, std::min(3, q)));
      }
    }
    pack_2bit(L, blk.qs);
  }
}

void quant_q3_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ3_K*>(dst);
  int8_t L[kQK_K];
  float sub_scale[16];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ3_K& blk = blocks[b];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      sub_scale[j] = fit_scale_q3(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(sub_scale[j]) > amax) {
        amax = std::fabs(sub_scale[j]);
        max_scale = sub_scale[j];
      }
    }
    // 6-bit signed scales stored with offset 32 (layout: unpack_scale_q3k).
    std::memset(blk.scales, 0, sizeof blk.scales);
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = std::max(-32, std::min(31, nearest_int(iscale * sub_scale[j]))) + 32;
        if (j < 8) {
          blk.scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          blk.scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        blk.scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      store_half(blk.d, 1 / iscale);
    } else {
      store_half(blk.d, 0.f);
    }
    const float d_all = load_half(blk.d);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(unpack_scale_q3k(j, blk.scales) - 32);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        const int q = nearest_int(x[16 * j + l] / d);
        L[16 * j + l] = static_cast<int8_t>(std::max(-4, std::min(3, q)) + 4);
      }
    }
    // Third bit of element j -> bit j / 32 of hmask[j % 32]; the low two bits go to qs.
    std::memset(blk.hmask, 0, sizeof blk.hmask);
    for (int j = 0; j < kQK_K; ++j) {
      if (L[j] > 3) {
        blk.hmask[j % 32] |= static_cast<uint8_t>(1u << (j / 32));
        L[j] = static_cast<int8_t>(L[j] - 4);
      }
    }
    pack_2bit(L, blk.qs);
  }
}

void quant_q4_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ4_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ4_K& blk = blocks[b];
    quantize_scale_min_block(x, 15, -1.f, 20, blk.d, blk.dmin, blk.scales, L);
    // Chunk c of 64: low nibbles of qs[32c + l] hold element 64c + l, high nibbles 64c + 32 + l.
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        blk.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
      }
    }
  }
}

void quant_q5_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ5_K*>(dst);
  uint8_t L[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ5_K& blk = blocks[b];
    quantize_scale_min_block(x, 31, -0.5f, 15, blk.d, blk.dmin, blk.scales, L);
    // As Q4_K, with the fifth bit of 64c + l in bit 2c of qh[l] and of 64c + 32 + l in bit 2c+1.
    std::memset(blk.qh, 0, sizeof blk.qh);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l];
        const int hi = L[64 * c + l + 32];
        blk.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
        blk.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      }
    }
  }
}

void quant_q6_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ6_K*>(dst);
  int8_t L[kQK_K];
  float sub_scale[16];
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ6_K& blk = blocks[b];
    float max_scale = 0, max_abs_scale = 0;
    for (int j = 0; j < 16; ++j) {
      sub_scale[j] = fit_scale_symmetric(16, 32, x + 16 * j, L + 16 * j);
      if (std::fabs(sub_scale[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(sub_scale[j]);
        max_scale = sub_scale[j];
      }
    }
    if (max_abs_scale < 1e-15f) {  // ggml's GROUP_MAX_EPS: an all-zero block
      std::memset(&blk, 0, sizeof blk);
      continue;
    }
    // 8-bit signed sub-block scales against d = max_scale / -128.
    const float iscale = -128.f / max_scale;
    store_half(blk.d, 1 / iscale);
    for (int j = 0; j < 16; ++j) {
      blk.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * sub_scale[j])));
    }
    const float d_all = load_half(blk.d);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * static_cast<float>(blk.scales[j]);
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        const int q = nearest_int(x[16 * j + l] / d);
        L[16 * j + l] = static_cast<int8_t>(std::max(-32, std::min(31, q)) + 32);
      }
    }
    // Layout: see dequant_q6_k.
    for (int h = 0; h < 2; ++h) {
      const int8_t* c = L + 128 * h;
      uint8_t* ql = blk.ql + 64 * h;
      uint8_t* qh = blk.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((c[l] & 0xF) | ((c[l + 64] & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((c[l + 32] & 0xF) | ((c[l + 96] & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((c[l] >> 4) | ((c[l + 32] >> 4) << 2) |
                                     ((c[l + 64] >> 4) << 4) | ((c[l + 96] >> 4) << 6));
      }
    }
  }
}

void quant_q8_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ8_K& blk = blocks[b];
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    float d = 0;
    if (amax == 0.0f) {
      std::memset(blk.qs, 0, sizeof blk.qs);
    } else {
      // ggml scales by -127 / max (not -128) so that codes stay in -127..127.
      const float iscale = -127.f / max;
      for (int j = 0; j < kQK_K; ++j) {
        blk.qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
      }
      d = 1 / iscale;
    }
    std::memcpy(blk.d, &d, 4);
    for (int j = 0; j < 16; ++j) {
      int16_t sum = 0;
      for (int l = 0; l < 16; ++l) sum = static_cast<int16_t>(sum + blk.qs[16 * j + l]);
      std::memcpy(blk.bsums + 2 * j, &sum, 2);
    }
  }
}

}  // namespace loom::quant_detail
