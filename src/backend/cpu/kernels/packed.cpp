// Q4_0, Q4_K, Q6_K and Q8_0 weights repacked 16 rows at a time ("x16" layouts) for one int8 kernel
// that serves decode and prefill alike.
//
// Why: in the file's layout a decode dot handles one row's block at a time, and the per-block
// work (unpack 32 nibbles, fetch and convert one f16 scale, a horizontal sum at the end) costs
// more instructions than the 18 bytes are worth, so Q4_0/Q4_K decode was instruction-bound at
// 8-14 GB/s per thread. Interleaving 16 rows puts one row in each 32-bit lane of a zmm
// register: vpdpbusd multiplies 4 nibbles of each of the 16 rows with 4 activation bytes
// broadcast to all lanes, 16 scales convert in one vcvtph2ps, and no horizontal sums remain.
//
// Layouts (same byte count as the 16 rows in the file, groups of 16 rows one after another).
// Each group is one forward stream: a block's scales sit just before its nibbles. (Scales in
// an area of their own ahead of the nibbles made two streams per group, and one thread then
// read Q4_0 at 15 GB/s where one stream reads at 19-21, its read loop's rate.)
// - Q4_0, nb = k / 32 blocks, in units of two blocks: [2 x 16 f16 scales][2 x 256 bytes of
//   nibbles] (576 bytes, whole cache lines); with nb odd the last block is a unit of its own
//   ([16 f16 scales][256 bytes]). In a block's 256 bytes, chunk t (0..3) holds at byte 4r + i
//   the element 8t + i of row r in its low nibble and element 8t + 4 + i in its high nibble
//   (nibbles as stored, 0..15).
// - Q4_K, ns = k / 256 super-blocks of 2304 bytes each: [16 f16 d, 16 f16 dmin][12 planes of 16
//   bytes: plane p holds byte p of each row's packed 6-bit scales][2048 bytes of nibbles]; the
//   512 bytes of 64-element chunk c (sub-blocks 2c in the low nibbles, 2c + 1 in the high ones)
//   hold, in 64-byte step t, at byte 4r + i, the file's qs[32c + 4t + i] of row r.
// - Q8_0, nb = k / 32 blocks, in units of two as Q4_0's: [2 x 16 f16 scales][2 x 512 bytes];
//   in a block's 512 bytes, chunk t (0..7) holds at byte 4r + i the element 4t + i of row r
//   plus 128 (unsigned, for vpdpbusd; the dot starts at -128 times the activations' sum).
// - Q6_K, ns = k / 256 super-blocks of 3360 bytes each: [16 f16 d][16 planes of 16 int8
//   scales: plane i holds sub-block i's scale of each row][8 blocks of 32 elements x 384
//   bytes]. A block's first 256 bytes hold the low 4 bits of its elements as a Q4_0 block's
//   nibbles do; its last 128 bytes, two 64-byte vectors H0 and H1, hold the high 2 bits: for
//   field f = 2t + j (t = 0..3 the 64-byte chunk, j = 0 for the low nibble's element, 1 for the
//   high one's), byte 4r + i of H[f / 4], bits 2 (f % 4) and up.
//
// Arithmetic: per block (sub-block for Q4_K) and activation row, the integer dot is exact
// (Q4_0's zero point enters as the start value -8 * sum(qa)); the float steps are the same
// sequence for every activation row whatever the batch, so a row's result does not depend on
// the batch it is computed in.
#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/simd.h"
#include "core/error.h"
#include "quant/blocks.h"

namespace loom::cpu::kernels {

using quant_detail::BlockQ4_0;
using quant_detail::BlockQ4_K;
using quant_detail::BlockQ6_K;
using quant_detail::BlockQ8_0;

namespace {

// Where block b of a packed Q4_0 or Q8_0 group (nb blocks of `quant_bytes` bytes for the 16
// rows) keeps its 16 scales and its quants: units of two blocks, [2 x 32][2 x quant_bytes].
struct PairBlock {
  uint8_t* scales;
  uint8_t* quants;
};
inline PairBlock pair_block(uint8_t* group, int64_t nb, int64_t b, int64_t quant_bytes) {
  uint8_t* unit = group + (b / 2) * 2 * (32 + quant_bytes);
  const int64_t in_unit = (b / 2) * 2 + 1 < nb ? 2 : 1;
  return {unit + 32 * (b % 2), unit + 32 * in_unit + quant_bytes * (b % 2)};
}

// Bytes of one packed Q4_K super-block of 16 rows: d and dmin, scale planes, nibbles.
constexpr int64_t kQ4KSuperBytes = 64 + 192 + 2048;
// Bytes of one packed Q6_K super-block of 16 rows: d, scale planes, 8 blocks of 384 bytes.
constexpr int64_t kQ6KSuperBytes = 32 + 256 + 8 * 384;

// The 256 unsigned 6-bit values (q + 32) of one Q6_K super-block, in element order.
void q6_k_values(const BlockQ6_K& blk, uint8_t* q) {
  for (int h = 0; h < 2; ++h) {
    for (int g = 0; g < 4; ++g) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t lb = blk.ql[64 * h + l + 32 * (g & 1)];
        const int low = g < 2 ? (lb & 0xF) : (lb >> 4);
        q[128 * h + 32 * g + l] =
            static_cast<uint8_t>(low | (((blk.qh[32 * h + l] >> (2 * g)) & 3) << 4));
      }
    }
  }
}

}  // namespace

bool packable(DType type, int64_t m, int64_t k) {
  if (!use_avx512() || m % kPackRows != 0 || k <= 0) return false;
  if (type == DType::kQ4_0 || type == DType::kQ8_0) return k % 32 == 0;
  if (type == DType::kQ4_K || type == DType::kQ6_K) return k % 256 == 0;
  return false;
}

void pack_rows16(DType type, const void* src, uint64_t row_bytes, int64_t k, void* dst) {
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint8_t*>(dst);
  if (type == DType::kQ4_0) {
    const int64_t nb = k / 32;
    for (int r = 0; r < kPackRows; ++r) {
      const auto* blk = reinterpret_cast<const BlockQ4_0*>(in + r * row_bytes);
      for (int64_t b = 0; b < nb; ++b) {
        const PairBlock at = pair_block(out, nb, b, 256);
        std::memcpy(at.scales + 2 * r, blk[b].d, 2);
        const uint8_t* qs = blk[b].qs;
        uint8_t* o = at.quants + 4 * r;
        // Elements 0..15 are the low nibbles of qs[0..15], 16..31 the high ones.
        for (int t = 0; t < 2; ++t) {
          for (int i = 0; i < 4; ++i) {
            o[64 * t + i] =
                static_cast<uint8_t>((qs[8 * t + i] & 0x0F) | ((qs[8 * t + 4 + i] & 0x0F) << 4));
            o[64 * (t + 2) + i] =
                static_cast<uint8_t>((qs[8 * t + i] >> 4) | (qs[8 * t + 4 + i] & 0xF0));
          }
        }
      }
    }
    return;
  }
  if (type == DType::kQ8_0) {
    const int64_t nb = k / 32;
    for (int r = 0; r < kPackRows; ++r) {
      const auto* blk = reinterpret_cast<const BlockQ8_0*>(in + r * row_bytes);
      for (int64_t b = 0; b < nb; ++b) {
        const PairBlock at = pair_block(out, nb, b, 512);
        std::memcpy(at.scales + 2 * r, blk[b].d, 2);
        for (int t = 0; t < 8; ++t) {  // 4 bytes at a time, each q + 128 (= q ^ 0x80)
          uint32_t v;
          std::memcpy(&v, blk[b].qs + 4 * t, 4);
          v ^= 0x80808080u;
          std::memcpy(at.quants + 64 * t + 4 * r, &v, 4);
        }
      }
    }
    return;
  }
  if (type == DType::kQ6_K) {
    const int64_t ns = k / 256;
    for (int r = 0; r < kPackRows; ++r) {
      const auto* blk = reinterpret_cast<const BlockQ6_K*>(in + r * row_bytes);
      for (int64_t s = 0; s < ns; ++s) {
        uint8_t* super = out + s * kQ6KSuperBytes;
        std::memcpy(super + 2 * r, blk[s].d, 2);
        for (int i = 0; i < 16; ++i)
          super[32 + 16 * i + r] = static_cast<uint8_t>(blk[s].scales[i]);
        uint8_t q[256];
        q6_k_values(blk[s], q);
        for (int b = 0; b < 8; ++b) {
          uint8_t* lo = super + 288 + 384 * b + 4 * r;
          uint8_t* hi = super + 288 + 384 * b + 256 + 4 * r;
          const uint8_t* e = q + 32 * b;
          for (int i = 0; i < 4; ++i) hi[i] = hi[64 + i] = 0;
          for (int t = 0; t < 4; ++t) {
            for (int i = 0; i < 4; ++i) {
              const uint8_t e0 = e[8 * t + i], e1 = e[8 * t + 4 + i];
              lo[64 * t + i] = static_cast<uint8_t>((e0 & 0x0F) | ((e1 & 0x0F) << 4));
              const int f0 = 2 * t, f1 = 2 * t + 1;
              hi[64 * (f0 / 4) + i] |= static_cast<uint8_t>((e0 >> 4) << (2 * (f0 % 4)));
              hi[64 * (f1 / 4) + i] |= static_cast<uint8_t>((e1 >> 4) << (2 * (f1 % 4)));
            }
          }
        }
      }
    }
    return;
  }
  LOOM_ASSERT(type == DType::kQ4_K);
  const int64_t ns = k / 256;
  for (int r = 0; r < kPackRows; ++r) {
    const auto* blk = reinterpret_cast<const BlockQ4_K*>(in + r * row_bytes);
    for (int64_t s = 0; s < ns; ++s) {
      uint8_t* dd = out + s * kQ4KSuperBytes;
      uint8_t* planes = dd + 64;
      uint8_t* quants = dd + 256;
      std::memcpy(dd + 2 * r, blk[s].d, 2);
      std::memcpy(dd + 32 + 2 * r, blk[s].dmin, 2);
      for (int p = 0; p < 12; ++p) planes[16 * p + r] = blk[s].scales[p];
      for (int c = 0; c < 4; ++c) {
        for (int t = 0; t < 8; ++t) {
          for (int i = 0; i < 4; ++i) {
            quants[512 * c + 64 * t + 4 * r + i] = blk[s].qs[32 * c + 4 * t + i];
          }
        }
      }
    }
  }
}

#ifdef LOOM_HAVE_X86_KERNELS
namespace {

// Software prefetch distance in bytes of packed weights, for the kernels whose inner loop is
// not unrolled over a whole unit (Q4_K, Q6_K): without it, one thread of the Q4_K kernel read
// 15 GB/s of a decode step's weights, with it 31 (DecodeStep/q4_k/1; a plain read loop 31), and
// Q6_K decode lost 8-15%. The Q4_0 and Q8_0 kernels, which issue a unit's loads (9 or 17
// lines) up front, do better without it on AMD Zen 5: decode step one thread Q4_0 19.5-22.7 ->
// 24.0-24.2 GB/s, Q8_0 20.7-22.3 -> 26.4-29.7; tg32 on two threads Q4_0 +2-9% in four rounds,
// Q8_0 36.5 -> 40.3 and level; on Intel they need it (pair_prefetch_bytes(), kernels.h). Past a
// group's end it runs into the next group, next in memory.
constexpr int64_t kPrefetchBytes = 4096;

LOOM_AVX512 inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One Q4_0 block (its 16 scales at `scales`, its 256 bytes at `quants`) of 16 weight rows
// against N activation rows, added to acc.
template <int N>
LOOM_AVX512 inline void q4_0_block_dot(const uint8_t* scales, const uint8_t* quants, int64_t b,
                                       const QAct* a, __m512* acc) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
  __m512i lo[4], hi[4];
#pragma GCC unroll 4
  for (int t = 0; t < 4; ++t) {
    const __m512i v = _mm512_loadu_si512(quants + 64 * t);
    lo[t] = _mm512_and_si512(v, m4);
    hi[t] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
  }
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) {
    const int8_t* q = a[c].qs + b * 32;
    // Two chains of 4 (integer sums are exact, so the split changes no bit).
    __m512i s = _mm512_set1_epi32(-8 * a[c].isum[b]), s2 = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int t = 0; t < 4; ++t) {
      s = _mm512_dpbusd_epi32(s, lo[t], bcast4(q + 8 * t));
      s2 = _mm512_dpbusd_epi32(s2, hi[t], bcast4(q + 8 * t + 4));
    }
    s = _mm512_add_epi32(s, s2);
    acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(a[c].d[b])), dw,
                             acc[c]);
  }
}

// A block's dot of 16 weight rows (scales, quants, block index) with N activation rows.
using BlockDot = void (*)(const uint8_t*, const uint8_t*, int64_t, const QAct*, __m512*);

// One Q4_0 or Q8_0 group of 16 weight rows (units of two blocks: [2 x 32 bytes of scales][2 x
// kQuantBytes], an odd last block alone) against N activation rows (N accumulators stay in
// registers).
template <int N, int64_t kQuantBytes, BlockDot kDot>
LOOM_AVX512 void pair_tile(const uint8_t* group, int64_t k, const QAct* a, float* y, int64_t ldy) {
  const int64_t nb = k / 32;
  static const int64_t prefetch = pair_prefetch_bytes();
  __m512 acc[N];
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) acc[c] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* unit = group + b * (32 + kQuantBytes);
    if (prefetch > 0) {  // the unit's whole cache lines, `prefetch` bytes ahead
#pragma GCC unroll 17
      for (int64_t l = 0; l < (64 + 2 * kQuantBytes) / 64; ++l)
        _mm_prefetch(reinterpret_cast<const char*>(unit + 64 * l + prefetch), _MM_HINT_T0);
    }
    kDot(unit, unit + 64, b, a, acc);
    kDot(unit + 32, unit + 64 + kQuantBytes, b + 1, a, acc);
  }
  if (b < nb) {
    const uint8_t* unit = group + b * (32 + kQuantBytes);
    kDot(unit, unit + 32, b, a, acc);
  }
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

template <int N>
LOOM_AVX512 void q4_k_tile(const uint8_t* group, int64_t k, const QAct* a, float* y, int64_t ldy) {
  const int64_t ns = k / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m128i m6 = _mm_set1_epi8(0x3F), lo4 = _mm_set1_epi8(0x0F), top2 = _mm_set1_epi8(0x30);
  __m512 acc[N];
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t s = 0; s < ns; ++s) {
    const uint8_t* dd = group + s * kQ4KSuperBytes;
    const uint8_t* planes = dd + 64;
    const uint8_t* quants = dd + 256;
    const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(dd)));
    const __m512 dminv =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(dd + 32)));
    __m128i p[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      p[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + 16 * i));
    }
    // Not unrolled: with its body unrolled over 16 activation rows, 8 copies made a 28 KiB
    // function whose speed swung by 40% with its placement in the binary (instruction cache).
#pragma GCC unroll 1
    for (int j = 0; j < 8; ++j) {
      // ggml's get_scale_min_k4, 16 rows at a time (byte lanes; epi16 shifts are masked).
      __m128i sc, mn;
      if (j < 4) {
        sc = _mm_and_si128(p[j], m6);
        mn = _mm_and_si128(p[j + 4], m6);
      } else {
        sc = _mm_or_si128(_mm_and_si128(p[j + 4], lo4),
                          _mm_and_si128(_mm_srli_epi16(p[j - 4], 2), top2));
        mn = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(p[j + 4], 4), lo4),
                          _mm_and_si128(_mm_srli_epi16(p[j], 2), top2));
      }
      const __m512 scf = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc)));
      const __m512 mf = _mm512_mul_ps(dminv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn)));
      const uint8_t* qc = quants + 512 * (j / 2);
      __m512i w[8];
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) {
        if (j % 2 == 0) {
          _mm_prefetch(reinterpret_cast<const char*>(qc + 64 * t + kPrefetchBytes), _MM_HINT_T0);
        }
        const __m512i v = _mm512_loadu_si512(qc + 64 * t);
        w[t] = _mm512_and_si512(j % 2 == 0 ? v : _mm512_srli_epi16(v, 4), m4);
      }
      const int64_t ab = s * 8 + j;
#pragma GCC unroll 16
      for (int c = 0; c < N; ++c) {
        const int8_t* q = a[c].qs + ab * 32;
        __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t) sum = _mm512_dpbusd_epi32(sum, w[t], bcast4(q + 4 * t));
        acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(a[c].d[ab])),
                                 scf, acc[c]);
        acc[c] =
            _mm512_fnmadd_ps(mf, _mm512_set1_ps(a[c].s16[2 * ab] + a[c].s16[2 * ab + 1]), acc[c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

// One Q8_0 block (16 scales, 512 bytes of q + 128) of 16 weight rows against N activation rows.
template <int N>
LOOM_AVX512 inline void q8_0_block_dot(const uint8_t* scales, const uint8_t* quants, int64_t b,
                                       const QAct* a, __m512* acc) {
  const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
  __m512i w[8];
#pragma GCC unroll 8
  for (int t = 0; t < 8; ++t) {
    w[t] = _mm512_loadu_si512(quants + 64 * t);
  }
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) {
    const int8_t* q = a[c].qs + b * 32;
    __m512i s = _mm512_set1_epi32(-128 * a[c].isum[b]), s2 = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int t = 0; t < 4; ++t) {
      s = _mm512_dpbusd_epi32(s, w[2 * t], bcast4(q + 8 * t));
      s2 = _mm512_dpbusd_epi32(s2, w[2 * t + 1], bcast4(q + 8 * t + 4));
    }
    s = _mm512_add_epi32(s, s2);
    acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(a[c].d[b])), dw,
                             acc[c]);
  }
}

// Q6_K: per block, the 6-bit values are rebuilt from the low nibbles (as Q4_0's) and the
// two high-bit vectors; the integer dots of the two 16-element sub-blocks start at -32 times
// the sum of their activations (so they are the dots with q - 32, exact), take their int8
// scales in integers, and meet the float scales once.
template <int N>
LOOM_AVX512 void q6_k_tile(const uint8_t* group, int64_t k, const QAct* a, float* y, int64_t ldy) {
  const int64_t ns = k / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  __m512 acc[N];
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t s = 0; s < ns; ++s) {
    const uint8_t* super = group + s * kQ6KSuperBytes;
    const __m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(super)));
    const uint8_t* planes = super + 32;
#pragma GCC unroll 1
    for (int b = 0; b < 8; ++b) {
      const uint8_t* blk = super + 288 + 384 * b;
      __m512i q[8];
#pragma GCC unroll 6
      for (int l = 0; l < 6; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(blk + 64 * l + kPrefetchBytes), _MM_HINT_T0);
      }
      const __m512i h0 = _mm512_loadu_si512(blk + 256), h1 = _mm512_loadu_si512(blk + 320);
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) {
        const __m512i v = _mm512_loadu_si512(blk + 64 * t);
        const __m512i h = t < 2 ? h0 : h1;
        // Fields 2t and 2t + 1: bits 2 (f % 4) of h, moved to bits 4..5.
        const __m512i hl = t % 2 == 0 ? _mm512_slli_epi16(h, 4) : h;
        const __m512i hh = t % 2 == 0 ? _mm512_slli_epi16(h, 2) : _mm512_srli_epi16(h, 2);
        q[2 * t] = _mm512_or_si512(_mm512_and_si512(v, m4), _mm512_and_si512(hl, m30));
        q[2 * t + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4),
                                       _mm512_and_si512(hh, m30));
      }
      const __m512i sc0 =
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + 32 * b)));
      const __m512i sc1 = _mm512_cvtepi8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + 32 * b + 16)));
      const int64_t ab = s * 8 + b;
#pragma GCC unroll 16
      for (int c = 0; c < N; ++c) {
        const int8_t* qa = a[c].qs + ab * 32;
        const int sum0 = a[c].isum16[2 * ab], sum1 = a[c].isum16[2 * ab + 1];
        __m512i d0 = _mm512_set1_epi32(-32 * sum0), d1 = _mm512_set1_epi32(-32 * sum1);
#pragma GCC unroll 4
        for (int f = 0; f < 4; ++f) {
          d0 = _mm512_dpbusd_epi32(d0, q[f], bcast4(qa + 4 * f));
          d1 = _mm512_dpbusd_epi32(d1, q[4 + f], bcast4(qa + 16 + 4 * f));
        }
        const __m512i iv =
            _mm512_add_epi32(_mm512_mullo_epi32(d0, sc0), _mm512_mullo_epi32(d1, sc1));
        acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(iv), _mm512_set1_ps(a[c].d[ab])),
                                 dv, acc[c]);
      }
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < N; ++c) _mm512_storeu_ps(y + c * ldy, acc[c]);
}

using TileFn = void (*)(const uint8_t*, int64_t, const QAct*, float*, int64_t);

template <template <int> class F, size_t... I>
constexpr auto make_table(std::index_sequence<I...>) {
  return std::array<TileFn, sizeof...(I)>{&F<static_cast<int>(I) + 1>::run...};
}
template <int N>
struct Q40 {
  static void run(const uint8_t* g, int64_t k, const QAct* a, float* y, int64_t ldy) {
    pair_tile<N, 256, q4_0_block_dot<N>>(g, k, a, y, ldy);
  }
};
template <int N>
struct Q80 {
  static void run(const uint8_t* g, int64_t k, const QAct* a, float* y, int64_t ldy) {
    pair_tile<N, 512, q8_0_block_dot<N>>(g, k, a, y, ldy);
  }
};
template <int N>
struct Q6K {
  static void run(const uint8_t* g, int64_t k, const QAct* a, float* y, int64_t ldy) {
    q6_k_tile<N>(g, k, a, y, ldy);
  }
};
template <int N>
struct Q4K {
  static void run(const uint8_t* g, int64_t k, const QAct* a, float* y, int64_t ldy) {
    q4_k_tile<N>(g, k, a, y, ldy);
  }
};
constexpr auto kQ40Tiles = make_table<Q40>(std::make_index_sequence<kPackTileCols>());
constexpr auto kQ4KTiles = make_table<Q4K>(std::make_index_sequence<kPackTileCols>());
constexpr auto kQ6KTiles = make_table<Q6K>(std::make_index_sequence<kPackTileCols>());
constexpr auto kQ80Tiles = make_table<Q80>(std::make_index_sequence<kPackTileCols>());

}  // namespace

void packed_gemm(DType type, const void* group, int64_t k, const QAct* a, int64_t n, float* y,
                 int64_t ldy) {
  const auto& table = type == DType::kQ4_0   ? kQ40Tiles
                      : type == DType::kQ4_K ? kQ4KTiles
                      : type == DType::kQ6_K ? kQ6KTiles
                                             : kQ80Tiles;
  const auto* g = static_cast<const uint8_t*>(group);
  for (int64_t c0 = 0; c0 < n; c0 += kPackTileCols) {
    const int64_t cols = std::min<int64_t>(kPackTileCols, n - c0);
    table[cols - 1](g, k, a + c0, y + c0 * ldy, ldy);
  }
}
#else
void packed_gemm(DType, const void*, int64_t, const QAct*, int64_t, float*, int64_t) {
  LOOM_ASSERT(false && "packed weights need the AVX-512 kernels");
}
#endif

}  // namespace loom::cpu::kernels
