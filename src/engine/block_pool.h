// BlockPool — the server's KV-cache blocks with reference counts and a prefix cache.
//
// A block that holds a full run of block_size positions is registered under a hash of its
// tokens chained with the previous block's hash (so the key stands for the whole prefix up to
// and including it). A new sequence whose prompt starts with registered blocks shares them
// (refcount + 1) instead of recomputing them. Blocks nobody references stay cached and are
// reused for other prefixes only when no never-used block is left (least recently released
// first), so a shared system prompt stays warm while there is room.
// Thread-safety: owned by the scheduler thread.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace loom {

class BlockPool {
 public:
  BlockPool(int64_t n_blocks, int64_t block_size);

  int64_t n_blocks() const { return static_cast<int64_t>(refs_.size()); }
  int64_t block_size() const { return block_size_; }
  // Blocks referenced by at least one sequence.
  int64_t n_used() const { return n_used_; }
  // Blocks that can be handed out now (never used + cached but unreferenced).
  int64_t n_available() const { return n_blocks() - n_used_; }
  int64_t n_cached() const { return static_cast<int64_t>(by_hash_.size()); }

  // A block for new positions (refcount 1), or -1 when none is available.
  int32_t allocate();
  void release(int32_t block);

  // Shares the longest run of registered blocks that prefixes `tokens` (at most
  // max_blocks of them); appends them to `table` (refcount + 1 each) and returns how many.
  int64_t match_prefix(std::span<const int32_t> tokens, int64_t max_blocks,
                       std::vector<int32_t>& table);
  // Registers table[index], which now holds tokens[index*bs, (index+1)*bs) in full.
  void register_full_block(std::span<const int32_t> tokens, std::span<const int32_t> table,
                           int64_t index);

  uint64_t prefix_hits() const { return prefix_hits_; }  // blocks reused so far

 private:
  uint64_t hash_of(std::span<const int32_t> tokens, int64_t upto_block) const;

  int64_t block_size_;
  std::vector<int32_t> refs_;
  std::vector<uint64_t> block_hash_;  // 0 = not registered
  std::vector<int32_t> never_used_;
  std::list<int32_t> lru_;  // cached, unreferenced blocks; front = least recently released
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  std::vector<bool> in_lru_;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int64_t n_used_ = 0;
  uint64_t prefix_hits_ = 0;
};

}  // namespace loom
