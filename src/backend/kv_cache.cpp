#include "backend/backend.h"

namespace loom {

KvCache::KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                 int64_t n_blocks)
    : n_kv_heads_(n_kv_heads), head_dim_(head_dim), block_size_(block_size), n_blocks_(n_blocks) {
  size_t per_layer = static_cast<size_t>(n_blocks * block_size * n_kv_heads * head_dim);
  k_.assign(n_layers, std::vector<float>(per_layer));
  v_.assign(n_layers, std::vector<float>(per_layer));
}

uint64_t KvCache::bytes() const {
  uint64_t n = 0;
  for (const auto& l : k_) n += l.size() * sizeof(float);
  for (const auto& l : v_) n += l.size() * sizeof(float);
  return n;
}

}  // namespace loom
