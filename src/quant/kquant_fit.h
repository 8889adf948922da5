// Scale/offset searches used by the K-quant quantizers (quantize_k.cpp).
//
// Each one follows the reference algorithm of the same purpose in ggml/src/ggml-quants.c (named
// below) without importance weights, with the same float operations in the same order, so that
// quantized blocks are byte-identical to llama.cpp's. Internal to loom_quant.
#pragma once

#include <cstdint>

namespace loom::quant_detail {

// Round to the nearest integer, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the
// integer in the low mantissa bits (ggml's nearest_int).
int nearest_int(float v);

// Asymmetric fit x ~ scale * L + min with L in 0..nmax and min <= 0 (ggml's make_qkx2_quants):
// start from the plain [min, max] grid, then try nstep + 1 grids of (nmax + rmin + rdelta * k)
// levels and solve weighted least squares for scale and min on each, keeping the one with the
// lowest weighted error (squared, or absolute if use_mad). Returns scale; *neg_min = -min.
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                    float* neg_min, uint8_t* L_scratch, float rmin, float rdelta, int nstep,
                    bool use_mad);

// Symmetric fit x ~ scale * (L - nmax) with L - nmax in -nmax..nmax-1, weighting each element by
// x^2 (ggml's make_qx_quants with rmse_type 1 and no importance weights): least squares on the
// grid of the extreme value, then on 18 nearby grids (nmax +- 0.1 k). Returns scale.
float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L);

// Symmetric fit for 3-bit codes (ggml's make_q3_quants with do_rmse): least squares on the grid
// of the extreme value, then up to 5 passes that move single codes while that lowers the
// x^2-weighted error. L receives codes offset by nmax. Returns scale.
float fit_scale_q3(int n, int nmax, const float* x, int8_t* L);

}  // namespace loom::quant_detail
