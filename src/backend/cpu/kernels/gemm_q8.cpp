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
int64_t gemv_q8_scratch_bytes(int64_t k) {
  const int64_t groups = k / 16;  // the most groups (Q6_K's)
  return align64(16 * k) + 4 * align64(16 * groups * 4) + 64;
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

// Unpacks one weight row into signed bytes + per-group scale, min and start value (init may
// be null: not wanted).
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
        if (init != nullptr) init[b] = -128 * sum_i8(v);
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
        if (init != nullptr) init[b] = -128 * sum_i8(v);
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
          if (init != nullptr) init[b * 8 + j] = -128 * sum_i8(v);
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
              if (init != nullptr) init[gi] = -128 * sum_i8(_mm256_and_si256(v, mask));
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

// Unit u (4 bytes) of the 64-byte chunk at c0 for gemv_micro; G divides 64, so u alone says
// where its group starts and ends.
template <int G, bool kMin, int NR>
LOOM_AVX512 __attribute__((always_inline)) inline void gemv_unit(const __m512i wv, int64_t c0,
                                                                 int u, const float* scale_t,
                                                                 const float* min_t,
                                                                 const QAct* acts, __m512* acc,
                                                                 __m512i* iacc) {
  const int64_t kk = c0 + 4 * u;
  const int64_t g = kk / G;
  if ((4 * u) % G == 0) {
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) iacc[c] = _mm512_setzero_si512();
  }
  // |w| (unsigned) times a with w's sign; a is in [-127, 127] (quantize_act), so -a is too.
  const __m512i aw = _mm512_abs_epi8(wv);
  const __mmask64 neg = _mm512_movepi8_mask(wv);
#pragma GCC unroll 4
  for (int c = 0; c < NR; ++c) {
    int32_t a4;
    std::memcpy(&a4, acts[c].qs + kk, 4);
    const __m512i a = _mm512_set1_epi32(a4);
    iacc[c] =
        _mm512_dpbusd_epi32(iacc[c], aw, _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a));
  }
  if ((4 * u + 4) % G == 0) {
    const int64_t ag = g * G / 32;
    const __m512 sc = _mm512_load_ps(scale_t + g * 16);
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) {
      acc[c] = _mm512_fmadd_ps(
          _mm512_mul_ps(_mm512_cvtepi32_ps(iacc[c]), _mm512_set1_ps(acts[c].d[ag])), sc, acc[c]);
      if constexpr (kMin) {
        const float s32 = acts[c].s16[2 * ag] + acts[c].s16[2 * ag + 1];
        acc[c] = _mm512_fnmadd_ps(_mm512_load_ps(min_t + g * 16), _mm512_set1_ps(s32), acc[c]);
      }
    }
  }
}

// The few-row form of micro(): 16 weight rows in the lanes (their bytes transposed 4 at a
// time) and each activation row's 4 bytes broadcast, so no activation rows are padded to 16.
// The block sums are the same integers (sum of w * a, exact; here as |w| times a with w's
// sign, which needs no start value) and the float steps the same operations in the same group
// order, so the bits are micro()'s. `load(c0, units, v)` puts bytes c0..c0 + 4 * units of the
// 16 rows in v (zero past them).
template <int G, bool kMin, int NR, typename Load>
LOOM_AVX512 void gemv_micro(int64_t k, const Load& load, const float* scale_t, const float* min_t,
                            const QAct* acts, float* y, int64_t ldy, __mmask16 out_mask) {
  constexpr int kUnits = G / 4;  // 4-byte units per group
  __m512 acc[NR];
  __m512i iacc[NR];
#pragma GCC unroll 4
  for (int c = 0; c < NR; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t c0 = 0; c0 < k; c0 += 64) {
    const int64_t units = std::min<int64_t>(16, (k - c0) / 4);
    __m512 v[16];
    load(c0, units, v);
    x86::transpose16(v);  // v[u], lane r: bytes 4u..4u+3 of row r
    if (units == 16) {
#pragma GCC unroll 16
      for (int u = 0; u < 16; ++u)
        gemv_unit<G, kMin, NR>(_mm512_castps_si512(v[u]), c0, u, scale_t, min_t, acts, acc, iacc);
    } else {
      for (int u = 0; u < units; ++u)
        gemv_unit<G, kMin, NR>(_mm512_castps_si512(v[u]), c0, u, scale_t, min_t, acts, acc, iacc);
    }
  }
  static_assert(64 % G == 0 && kUnits >= 1);
#pragma GCC unroll 4
  for (int c = 0; c < NR; ++c) _mm512_mask_storeu_ps(y + c * ldy, out_mask, acc[c]);
}

template <int G, bool kMin, typename Load>
LOOM_AVX512 void gemv_rows(int64_t k, const Load& load, const float* scale_t, const float* min_t,
                           const QAct* acts, int n, float* y, int64_t ldy, __mmask16 out_mask) {
  switch (n) {
    case 1:
      return gemv_micro<G, kMin, 1>(k, load, scale_t, min_t, acts, y, ldy, out_mask);
    case 2:
      return gemv_micro<G, kMin, 2>(k, load, scale_t, min_t, acts, y, ldy, out_mask);
    case 3:
      return gemv_micro<G, kMin, 3>(k, load, scale_t, min_t, acts, y, ldy, out_mask);
    default:
      return gemv_micro<G, kMin, 4>(k, load, scale_t, min_t, acts, y, ldy, out_mask);
  }
}

// gemv_micro's loaders: bytes c0..c0+63 of 16 weight rows, rows past `rows` zero.
struct UnpackedRows {  // signed bytes as unpack_row writes them, k per row
  const int8_t* q;
  int64_t k;
  LOOM_AVX512 void operator()(int64_t c0, int64_t units, __m512* v) const {
    const __mmask16 m = x86::tail_mask(units);
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      v[r] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, q + r * k + c0));
    }
  }
};
struct Q8Rows {  // Q8_0 blocks in the file: two blocks' 32 bytes per 64
  const uint8_t* w;
  uint64_t row_bytes;
  int rows;
  LOOM_AVX512 void operator()(int64_t c0, int64_t units, __m512* v) const {
    const int64_t b0 = c0 / 32;
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      if (r >= rows) {
        v[r] = _mm512_setzero_ps();
        continue;
      }
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(w + r * row_bytes) + b0;
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs));
      const __m256i hi = units > 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs))
                                   : _mm256_setzero_si256();
      v[r] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
  }
};

// dst[g * 16 + r] = src[r * groups + g] for 16 rows.
LOOM_AVX512 void to_lanes(const float* src, int64_t groups, float* dst) {
  for (int64_t g0 = 0; g0 < groups; g0 += 16) {
    const int64_t ng = std::min<int64_t>(16, groups - g0);
    const __mmask16 m = x86::tail_mask(ng);
    __m512 v[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) v[r] = _mm512_maskz_loadu_ps(m, src + r * groups + g0);
    x86::transpose16(v);
    for (int64_t j = 0; j < ng; ++j) _mm512_store_ps(dst + (g0 + j) * 16, v[j]);
  }
}

}  // namespace

LOOM_AVX512 void gemv_q8(DType type, const void* w, uint64_t row_bytes, int rows, const QAct* acts,
                         int n, int64_t k, void* scratch, float* y, int64_t ldy) {
  const int group = group_of(type);
  const int64_t groups = k / group;
  const auto* wb = static_cast<const uint8_t*>(w);
  auto* base = static_cast<uint8_t*>(scratch);
  auto* q = reinterpret_cast<int8_t*>(base);
  auto* scale_t = reinterpret_cast<float*>(base + align64(16 * k));
  auto* min_t = scale_t + align64(16 * groups * 4) / 4;
  const __mmask16 out_mask = x86::tail_mask(rows);
  if (type == DType::kQ8_0) {
    // The bytes are used as they are in the file: no unpacking; the scales are collected by
    // plain loads (gathers are slow on cores with the GDS mitigation).
    alignas(32) uint16_t d16[16] = {};
    for (int64_t b = 0; b < groups; ++b) {
      for (int r = 0; r < rows; ++r) {
        std::memcpy(&d16[r], reinterpret_cast<const BlockQ8_0*>(wb + r * row_bytes)[b].d, 2);
      }
      _mm512_store_ps(scale_t + b * 16,
                      _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d16))));
    }
    const Q8Rows load{wb, row_bytes, rows};
    return gemv_rows<32, false>(k, load, scale_t, min_t, acts, n, y, ldy, out_mask);
  }
  // Row-major [r][g] as unpack_row writes them, then transposed 16 x 16 to [g][r].
  auto* scale_r = min_t + align64(16 * groups * 4) / 4;
  auto* min_r = scale_r + align64(16 * groups * 4) / 4;
  for (int r = 0; r < 16; ++r) {
    if (r < rows) {
      unpack_row(type, wb + r * row_bytes, k, q + r * k, scale_r + r * groups, min_r + r * groups,
                 nullptr);
    } else {
      std::memset(q + r * k, 0, static_cast<size_t>(k));
      std::fill_n(scale_r + r * groups, groups, 0.0f);
      std::fill_n(min_r + r * groups, groups, 0.0f);
    }
  }
  to_lanes(scale_r, groups, scale_t);
  if (type == DType::kQ4_K) to_lanes(min_r, groups, min_t);
  const UnpackedRows load{q, k};
  if (type == DType::kQ6_K) {
    gemv_rows<16, false>(k, load, scale_t, min_t, acts, n, y, ldy, out_mask);
  } else if (type == DType::kQ4_K) {
    gemv_rows<32, true>(k, load, scale_t, min_t, acts, n, y, ldy, out_mask);
  } else {
    gemv_rows<32, false>(k, load, scale_t, min_t, acts, n, y, ldy, out_mask);
  }
}

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
void gemv_q8(DType, const void*, uint64_t, int, const QAct*, int, int64_t, void*, float*, int64_t) {
}
void pack_activations(const float*, int64_t, int64_t, int64_t, void*) {}
void gemm_q8(DType, const void*, uint64_t, int, const void*, int64_t, int64_t, void*, float*,
             int64_t) {}
#endif

}  // namespace loom::cpu::kernels
