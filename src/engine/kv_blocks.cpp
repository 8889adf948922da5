#include "engine/kv_blocks.h"

#include "core/error.h"

namespace loom {

BlockAllocator::BlockAllocator(int64_t n_blocks) : n_blocks_(n_blocks) {
  free_.reserve(n_blocks);
  // Hand out low ids first (pop from the back).
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int32_t BlockAllocator::allocate() {
  if (free_.empty()) return -1;
  int32_t b = free_.back();
  free_.pop_back();
  return b;
}

void BlockAllocator::release(int32_t block) {
  LOOM_ASSERT(block >= 0 && block < n_blocks_);
  free_.push_back(block);
}

bool BlockTable::reserve(BlockAllocator& allocator, int64_t n_tokens, int64_t block_size) {
  const int64_t needed = (n_tokens + block_size - 1) / block_size;
  const size_t before = blocks.size();
  while (static_cast<int64_t>(blocks.size()) < needed) {
    int32_t b = allocator.allocate();
    if (b < 0) {
      while (blocks.size() > before) {
        allocator.release(blocks.back());
        blocks.pop_back();
      }
      return false;
    }
    blocks.push_back(b);
  }
  return true;
}

void BlockTable::release_all(BlockAllocator& allocator) {
  for (int32_t b : blocks) allocator.release(b);
  blocks.clear();
}

}  // namespace loom
