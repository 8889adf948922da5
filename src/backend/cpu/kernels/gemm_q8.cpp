// Prefill for quantized weights in int8 (AVX-512 VNNI), the layout of which follows from
// vpdpbusd's operands (unsigned bytes x signed bytes, 4 at a time into 32-bit lanes):
// - the activation rows are quantized to 8 bits (as for decode) and interleaved 16 rows at a
//   time, 4 consecutive values of each row per 32-bit lane, offset by +128 to be unsigned;
// - 8 weight rows are unpacked to signed bytes, row-major, and their 4-byte groups broadcast
//   into vpdpbusd (embedded broadcast), so one instruction does 16 activation rows x 4 values;
// - the +128 offset comes off by starting each block's integer sum at -128 * sum(w), and the
//   block's float scales (d_w * sub-block scale, d_a per activation row, Q4_K's minima) are
//   applied once per block of 32 (16 for Q6_K) for 16 rows at once, so no horizontal sums.
// The result equals the decode path's int8 dot (same 8-bit activations, exact integer sums).
#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "quant/blocks.h"

namespace loom::cpu::kernels {

using namespace quant_detail;  // NOLINT: block layouts

namespace {

constexpr int64_t align64(int64_t n) {
  return (n + 63) & ~int64_t{63};
}

struct ActLayout {
  int64_t bytes_off, da_off, s32_off, stride;
};
ActLayout act_layout(int64_t k) {
  ActLayout l;
  l.bytes_off = 0;
  l.da_off = align64(16 * k);
  l.s32_off = l.da_off + align64(k / 32 * 16 * 4);
  l.stride = l.s32_off + align64(k / 32 * 16 * 4);
  return l;
}

// Weight panel: kRows rows of k signed bytes, then per (row, group) float scale, float min and
// int32 start value.
constexpr int kRows = 8;
struct PanelLayout {
  int64_t groups, scale_off, min_off, init_off, total;
};
PanelLayout panel_layout(int64_t k, int group) {
  PanelLayout l;
  l.groups = k / group;
  l.scale_off = align64(kRows * k);
  l.min_off = l.scale_off + align64(kRows * l.groups * 4);
  l.init_off = l.min_off + align64(kRows * l.groups * 4);
  l.total = l.init_off + align64(kRows * l.groups * 4);
  return l;
}

int group_of(DType type) {
  return type == DType::kQ6_K ? 16 : 32;
}

}  // namespace

bool int8_gemm_supported(DType type) {
  return use_avx512() && (type == DType::kQ4_0 || type == DType::kQ8_0 || type == DType::kQ4_K ||
                          type == DType::kQ6_K);
}

int64_t packed_act_bytes(int64_t n, int64_t k) {
  return (n + 15) / 16 * act_layout(k).stride + qact_bytes(k) + 64;
}
int64_t weight_panel_bytes(int64_t k) {
  return panel_layout(k, 16).total + 64;
}

#ifdef LOOM_HAVE_X86_KERNELS

namespace {

// Sum of 32 signed bytes.
LOOM_AVX512 inline int32_t sum_i8(__m256i q) {
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
  return _mm_cvtsi128_si32(t);
}

// Unpacks one weight row into signed bytes + per-group scale, min and start value.
LOOM_AVX512 void unpack_row(DType type, const uint8_t* src, int64_t k, int8_t* q, float* scale,
                            float* minv, int32_t* init) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  switch (type) {
    case DType::kQ4_0: {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(src);
      for (int64_t b = 0; b < k / 32; ++b) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b].qs));
        const __m128i lo = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0F));
        const __m256i v = _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), v);
        scale[b] = x86::half_to_float(blk[b].d);
        minv[b] = 0.0f;
        init[b] = -128 * sum_i8(v);
      }
      break;
    }
    case DType::kQ8_0: {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(src);
      for (int64_t b = 0; b < k / 32; ++b) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), v);
        scale[b] = x86::half_to_float(blk[b].d);
        minv[b] = 0.0f;
        init[b] = -128 * sum_i8(v);
      }
      break;
    }
    case DType::kQ4_K: {
      const auto* blk = reinterpret_cast<const BlockQ4_K*>(src);
      for (int64_t b = 0; b < k / 256; ++b) {
        const float d = x86::half_to_float(blk[b].d), dmin = x86::half_to_float(blk[b].dmin);
        for (int j = 0; j < 8; ++j) {
          uint8_t sc, m;
          unpack_scale_min_k4(j, blk[b].scales, &sc, &m);
          const __m256i raw =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs + 32 * (j / 2)));
          const __m256i v = _mm256_and_si256(j % 2 == 0 ? raw : _mm256_srli_epi16(raw, 4), m4);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 256 + 32 * j), v);
          scale[b * 8 + j] = d * static_cast<float>(sc);
          minv[b * 8 + j] = dmin * static_cast<float>(m);
          init[b * 8 + j] = -128 * sum_i8(v);
        }
      }
      break;
    }
    case DType::kQ6_K: {
      const auto* blk = reinterpret_cast<const BlockQ6_K*>(src);
      for (int64_t b = 0; b < k / 256; ++b) {
        const float d = x86::half_to_float(blk[b].d);
        for (int h = 0; h < 2; ++h) {
          __m256i qv[4];
          x86::unpack_q6_k_half(blk[b].ql + 64 * h, blk[b].qh + 32 * h, qv);
          for (int g = 0; g < 4; ++g) {
            const __m256i v = _mm256_sub_epi8(qv[g], _mm256_set1_epi8(32));
            const int64_t off = b * 256 + 128 * h + 32 * g;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + off), v);
            for (int half = 0; half < 2; ++half) {
              const int64_t gi = off / 16 + half;
              scale[gi] = d * static_cast<float>(blk[b].scales[8 * h + 2 * g + half]);
              minv[gi] = 0.0f;
              // Sum of the 16 bytes of this half: mask the other half to zero.
              const __m256i mask =
                  half == 0 ? _mm256_set_epi64x(0, 0, -1, -1) : _mm256_set_epi64x(-1, -1, 0, 0);
              init[gi] = -128 * sum_i8(_mm256_and_si256(v, mask));
            }
          }
        }
      }
      break;
    }
    default:
      break;
  }
}

// 8 weight rows x 16 activation rows over k, groups of G values.
template <int G, bool kMin>
LOOM_AVX512 void micro(const int8_t* w, int64_t k, const float* scale, const float* minv,
                       const int32_t* init, int64_t groups, const uint8_t* act, const float* da,
                       const float* s32, __m512* acc) {
  constexpr int kSteps = G / 4;
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512i iacc[kRows];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) iacc[r] = _mm512_set1_epi32(init[r * groups + g]);
#pragma GCC unroll 8
    for (int j = 0; j < kSteps; ++j) {
      const __m512i a = _mm512_load_si512(act + (g * kSteps + j) * 64);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        int32_t w4;
        std::memcpy(&w4, w + r * k + g * G + 4 * j, 4);
        iacc[r] = _mm512_dpbusd_epi32(iacc[r], a, _mm512_set1_epi32(w4));
      }
    }
    const int64_t ag = g * G / 32;  // activation block of this group
    const __m512 dav = _mm512_load_ps(da + ag * 16);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(iacc[r]), dav),
                               _mm512_set1_ps(scale[r * groups + g]), acc[r]);
      if constexpr (kMin) {
        acc[r] = _mm512_fnmadd_ps(_mm512_set1_ps(minv[r * groups + g]),
                                  _mm512_load_ps(s32 + ag * 16), acc[r]);
      }
    }
  }
}

}  // namespace

LOOM_AVX512 void pack_activations(const float* x, int64_t ldx, int64_t n, int64_t k, void* buf) {
  const ActLayout l = act_layout(k);
  auto* base = static_cast<uint8_t*>(buf);
  void* qbuf = base + (n + 15) / 16 * l.stride;
  for (int64_t cg = 0; cg < (n + 15) / 16; ++cg) {
    uint8_t* bytes = base + cg * l.stride + l.bytes_off;
    auto* da = reinterpret_cast<float*>(base + cg * l.stride + l.da_off);
    auto* s32 = reinterpret_cast<float*>(base + cg * l.stride + l.s32_off);
    for (int c = 0; c < 16; ++c) {
      const int64_t row = cg * 16 + c;
      if (row >= n) {
        // Padding rows: a = 0 (stored as 128), scale 0.
        for (int64_t s = 0; s < k / 4; ++s) std::memset(bytes + s * 64 + c * 4, 0x80, 4);
        for (int64_t b = 0; b < k / 32; ++b) da[b * 16 + c] = s32[b * 16 + c] = 0.0f;
        continue;
      }
      const QAct a = quantize_act(x + row * ldx, k, qbuf);
      for (int64_t s = 0; s < k / 4; ++s) {
        uint32_t v;
        std::memcpy(&v, a.qs + 4 * s, 4);
        v ^= 0x80808080u;
        std::memcpy(bytes + s * 64 + c * 4, &v, 4);
      }
      for (int64_t b = 0; b < k / 32; ++b) {
        da[b * 16 + c] = a.d[b];
        s32[b * 16 + c] = a.s16[2 * b] + a.s16[2 * b + 1];
      }
    }
  }
}

LOOM_AVX512 void gemm_q8(DType type, const void* w, uint64_t row_bytes, int rows, const void* act,
                         int64_t n, int64_t k, void* panel, float* y, int64_t ldy) {
  const int group = group_of(type);
  const PanelLayout pl = panel_layout(k, group);
  auto* pbase = static_cast<uint8_t*>(panel);
  auto* q = reinterpret_cast<int8_t*>(pbase);
  auto* scale = reinterpret_cast<float*>(pbase + pl.scale_off);
  auto* minv = reinterpret_cast<float*>(pbase + pl.min_off);
  auto* init = reinterpret_cast<int32_t*>(pbase + pl.init_off);
  for (int r = 0; r < kRows; ++r) {
    if (r < rows) {
      unpack_row(type, static_cast<const uint8_t*>(w) + r * row_bytes, k, q + r * k,
                 scale + r * pl.groups, minv + r * pl.groups, init + r * pl.groups);
    } else {
      std::memset(q + r * k, 0, static_cast<size_t>(k));
      std::fill_n(scale + r * pl.groups, pl.groups, 0.0f);
      std::fill_n(minv + r * pl.groups, pl.groups, 0.0f);
      std::fill_n(init + r * pl.groups, pl.groups, 0);
    }
  }
  const ActLayout al = act_layout(k);
  const auto* abase = static_cast<const uint8_t*>(act);
  for (int64_t cg = 0; cg < (n + 15) / 16; ++cg) {
    const uint8_t* bytes = abase + cg * al.stride + al.bytes_off;
    const auto* da = reinterpret_cast<const float*>(abase + cg * al.stride + al.da_off);
    const auto* s32 = reinterpret_cast<const float*>(abase + cg * al.stride + al.s32_off);
    __m512 acc[kRows];
    if (type == DType::kQ6_K) {
      micro<16, false>(q, k, scale, minv, init, pl.groups, bytes, da, s32, acc);
    } else if (type == DType::kQ4_K) {
      micro<32, true>(q, k, scale, minv, init, pl.groups, bytes, da, s32, acc);
    } else {
      micro<32, false>(q, k, scale, minv, init, pl.groups, bytes, da, s32, acc);
    }
    alignas(64) float out[kRows][16];
    for (int r = 0; r < kRows; ++r) _mm512_store_ps(out[r], acc[r]);
    const int64_t cols = std::min<int64_t>(16, n - cg * 16);
    for (int64_t c = 0; c < cols; ++c) {
      float* yc = y + (cg * 16 + c) * ldy;
      for (int r = 0; r < rows; ++r) yc[r] = out[r][c];
    }
  }
}

#else
void pack_activations(const float*, int64_t, int64_t, int64_t, void*) {}
void gemm_q8(DType, const void*, uint64_t, int, const void*, int64_t, int64_t, void*, float*,
             int64_t) {}
#endif

}  // namespace loom::cpu::kernels
