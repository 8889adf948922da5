#include "backend/backend.h"
#include "core/error.h"

namespace loom {

void KvCache::check_type(DType dtype, int64_t head_dim) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return;
    case DType::kQ8_0:
      if (head_dim % 32 != 0) {
        fail(ErrorCode::kInvalidArgument,
             "KV type q8_0 needs a head size that is a multiple of 32 (this model's is {}); use "
             "f16, bf16 or f32",
             head_dim);
      }
      return;
    default:
      fail(ErrorCode::kInvalidArgument, "KV type {} is not supported (f16, bf16, f32 or q8_0)",
           dtype_name(dtype));
  }
}

uint64_t KvCache::bytes_per_token(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim,
                                  DType dtype) {
  check_type(dtype, head_dim);
  const uint64_t row = *loom::row_bytes(dtype, static_cast<uint64_t>(n_kv_heads * head_dim));
  return 2 * static_cast<uint64_t>(n_layers) * row;
}

KvCache::KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                 int64_t n_blocks, DType dtype)
    : n_layers_(n_layers),
      n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      block_size_(block_size),
      n_blocks_(n_blocks),
      dtype_(dtype) {
  check_type(dtype, head_dim);
  if (n_layers < 0 || n_kv_heads <= 0 || head_dim <= 0 || block_size <= 0 || n_blocks < 0) {
    fail(ErrorCode::kInvalidArgument,
         "KV cache shape: {} layers, {} KV heads of {}, {} blocks of {} tokens", n_layers,
         n_kv_heads, head_dim, n_blocks, block_size);
  }
}

}  // namespace loom
