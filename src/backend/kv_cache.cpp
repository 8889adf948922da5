#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

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
    : n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      block_size_(block_size),
      n_blocks_(n_blocks),
      dtype_(dtype) {
  check_type(dtype, head_dim);
  row_bytes_ =
      static_cast<int64_t>(*loom::row_bytes(dtype, static_cast<uint64_t>(n_kv_heads * head_dim)));
  bytes_ = bytes_per_token(n_layers, n_kv_heads, head_dim, dtype) *
           static_cast<uint64_t>(n_blocks) * static_cast<uint64_t>(block_size);
  if (bytes_ == 0) return;
  // Reserved, not committed: pages appear as slots are written. MAP_NORESERVE keeps a large
  // pool from being refused under strict overcommit accounting for memory it may never touch.
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    fail(ErrorCode::kIoError, "cannot reserve {} bytes for the KV cache: {}", bytes_,
         std::strerror(errno));
  }
  base_ = static_cast<uint8_t*>(p);
}

KvCache::KvCache(KvCache&& o) noexcept {
  *this = std::move(o);
}

KvCache& KvCache::operator=(KvCache&& o) noexcept {
  if (this != &o) {
    release();
    n_kv_heads_ = o.n_kv_heads_;
    head_dim_ = o.head_dim_;
    block_size_ = o.block_size_;
    n_blocks_ = o.n_blocks_;
    row_bytes_ = o.row_bytes_;
    dtype_ = o.dtype_;
    base_ = std::exchange(o.base_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

KvCache::~KvCache() {
  release();
}

void KvCache::release() {
  if (base_ != nullptr) munmap(base_, bytes_);
  base_ = nullptr;
  bytes_ = 0;
}

}  // namespace loom
