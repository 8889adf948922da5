#include "engine/block_pool.h"

#include "core/error.h"

namespace loom {

BlockPool::BlockPool(int64_t n_blocks, int64_t block_size)
    : block_size_(block_size),
      refs_(n_blocks, 0),
      block_hash_(n_blocks, 0),
      lru_pos_(n_blocks),
      in_lru_(n_blocks, false) {
  never_used_.reserve(n_blocks);
  for (int64_t b = n_blocks - 1; b >= 0; --b) never_used_.push_back(static_cast<int32_t>(b));
}

int32_t BlockPool::allocate() {
  int32_t b = -1;
  if (!never_used_.empty()) {
    b = never_used_.back();
    never_used_.pop_back();
  } else if (!lru_.empty()) {
    b = lru_.front();  // evict the least recently released cached prefix block
    lru_.pop_front();
    in_lru_[b] = false;
    by_hash_.erase(block_hash_[b]);
    block_hash_[b] = 0;
  } else {
    return -1;
  }
  refs_[b] = 1;
  ++n_used_;
  return b;
}

void BlockPool::release(int32_t b) {
  LOOM_ASSERT(b >= 0 && b < n_blocks() && refs_[b] > 0);
  if (--refs_[b] > 0) return;
  --n_used_;
  if (block_hash_[b] != 0) {
    lru_pos_[b] = lru_.insert(lru_.end(), b);
    in_lru_[b] = true;
  } else {
    never_used_.push_back(b);
  }
}

uint64_t BlockPool::hash_of(std::span<const int32_t> tokens, int64_t upto_block) const {
  // FNV-1a over the token ids of blocks [0, upto_block]: the key names the whole prefix.
  uint64_t h = 1469598103934665603ull;
  const int64_t n = (upto_block + 1) * block_size_;
  for (int64_t i = 0; i < n; ++i) {
    h ^= static_cast<uint32_t>(tokens[i]);
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

int64_t BlockPool::match_prefix(std::span<const int32_t> tokens, int64_t max_blocks,
                                std::vector<int32_t>& table) {
  int64_t matched = 0;
  const int64_t full = static_cast<int64_t>(tokens.size()) / block_size_;
  for (int64_t i = 0; i < std::min(full, max_blocks); ++i) {
    auto it = by_hash_.find(hash_of(tokens, i));
    if (it == by_hash_.end()) break;
    const int32_t b = it->second;
    if (refs_[b] == 0) {
      if (in_lru_[b]) {
        lru_.erase(lru_pos_[b]);
        in_lru_[b] = false;
      }
      ++n_used_;
    }
    ++refs_[b];
    table.push_back(b);
    ++matched;
  }
  prefix_hits_ += static_cast<uint64_t>(matched);
  return matched;
}

void BlockPool::register_full_block(std::span<const int32_t> tokens, std::span<const int32_t> table,
                                    int64_t index) {
  const int32_t b = table[index];
  if (block_hash_[b] != 0) return;  // shared from the cache already
  const uint64_t h = hash_of(tokens, index);
  if (by_hash_.count(h) != 0) return;  // another sequence computed the same prefix first
  by_hash_[h] = b;
  block_hash_[b] = h;
}

}  // namespace loom
