// The CPU backend's KV cache: one anonymous mapping, reserved at once and committed page by
// page as slots are first written, so a pool sized for the whole budget costs only what
// sequences have used.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace loom::cpu {

class HostKvCache final : public KvCache {
 public:
  HostKvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
              int64_t n_blocks, DType dtype);
  ~HostKvCache() override;
  const char* kind() const override;

  // Bytes of one token's K (or V) row in one layer, and of one head's part of it.
  int64_t row_bytes() const { return row_bytes_; }
  int64_t head_bytes() const { return row_bytes_ / n_kv_heads(); }
  // The K (or V) row of token slot `slot` (= block * block_size + offset).
  uint8_t* k(int64_t layer, int64_t slot) { return base_ + offset(layer, 0, slot); }
  uint8_t* v(int64_t layer, int64_t slot) { return base_ + offset(layer, 1, slot); }
  const uint8_t* k(int64_t layer, int64_t slot) const { return base_ + offset(layer, 0, slot); }
  const uint8_t* v(int64_t layer, int64_t slot) const { return base_ + offset(layer, 1, slot); }

 private:
  uint64_t offset(int64_t layer, int kv, int64_t slot) const {
    return (static_cast<uint64_t>(layer * 2 + kv) *
                static_cast<uint64_t>(n_blocks() * block_size()) +
            static_cast<uint64_t>(slot)) *
           static_cast<uint64_t>(row_bytes_);
  }

  int64_t row_bytes_ = 0;
  uint8_t* base_ = nullptr;
  uint64_t mapped_ = 0;
};

// The cache as the CPU backend's; kInvalidArgument when another backend made it.
HostKvCache& host_cache(KvCache& cache);

}  // namespace loom::cpu
