// Weight formats: dequantize a row of any supported GGUF type to float, and quantize float rows
// into ggml-compatible blocks (files written with them load in llama.cpp).
//
// A "row" is n consecutive elements; n must be a multiple of the type's block size
// (dtype_info(type).block_size: 32 for Q4_0..Q8_0, 256 for the K-quants, 1 for F32/F16/BF16),
// and the row takes row_bytes(type, n) bytes. Blocks are read and written with byte copies, so
// src/dst need no alignment. Output is bit-exact with ggml's reference C code
// (dequantize_row_*, quantize_row_*_ref, the latter without importance matrix).
//
// Rows holding NaN or Inf quantize to valid (if meaningless) blocks, as in ggml; callers that
// care validate rows first.
//
// Errors: a type this library cannot handle throws loom::Error(kUnsupported) naming it; n that
// is negative or not a multiple of the block size, or a null pointer with n > 0, throws
// loom::Error(kInvalidArgument). Nothing allocates; all functions are thread-safe on disjoint
// buffers.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace loom {

// F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
bool can_dequantize(DType type);
// The same list: every type that dequantizes also quantizes.
bool can_quantize(DType type);

// src holds row_bytes(type, n) bytes; dst receives n floats.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// src holds n floats; dst receives row_bytes(type, n) bytes.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

}  // namespace loom
