// Paged KV-cache bookkeeping: the cache is cut into fixed-size blocks; a sequence owns a block
// table (the blocks holding its positions, in order) and grows it a block at a time.
// Thread-safety: owned by the engine's step loop; not shared.
#pragma once

#include <cstdint>
#include <vector>

namespace loom {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t n_blocks);
  int64_t n_blocks() const { return n_blocks_; }
  int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
  // A free block id, or -1 when none is left.
  int32_t allocate();
  void release(int32_t block);

 private:
  int64_t n_blocks_;
  std::vector<int32_t> free_;
};

struct BlockTable {
  std::vector<int32_t> blocks;

  // Grows the table to hold `n_tokens` positions; false (and no change) when the allocator
  // runs out.
  bool reserve(BlockAllocator& allocator, int64_t n_tokens, int64_t block_size);
  void release_all(BlockAllocator& allocator);
};

}  // namespace loom
