#include "backend/cpu/host_kv_cache.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "backend/cpu/host_tensor.h"
#include "core/error.h"

namespace loom::cpu {

HostKvCache::HostKvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                         int64_t n_blocks, DType dtype)
    : KvCache(n_layers, n_kv_heads, head_dim, block_size, n_blocks, dtype) {
  row_bytes_ =
      static_cast<int64_t>(*loom::row_bytes(dtype, static_cast<uint64_t>(n_kv_heads * head_dim)));
  const uint64_t total = bytes();
  if (total == 0) return;
  // Reserved, not committed: pages appear as slots are written. MAP_NORESERVE keeps a large
  // pool from being refused under strict overcommit accounting for memory it may never touch.
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    fail(ErrorCode::kIoError, "cannot reserve {} bytes for the KV cache: {}", total,
         std::strerror(errno));
  }
  base_ = static_cast<uint8_t*>(p);
  mapped_ = total;
}

HostKvCache::~HostKvCache() {
  if (base_ != nullptr) munmap(base_, mapped_);
}

const char* HostKvCache::kind() const {
  return kHostKind;
}

HostKvCache& host_cache(KvCache& cache) {
  if (cache.kind() != kHostKind) {
    fail(ErrorCode::kInvalidArgument, "a KV cache in '{}' memory was given to the CPU backend",
         cache.kind());
  }
  return static_cast<HostKvCache&>(cache);
}

}  // namespace loom::cpu
