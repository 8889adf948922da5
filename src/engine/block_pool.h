// BlockPool — the one allocator of paged KV-cache blocks (the server's scheduler, `loom run`'s
// generator and the benchmark all take blocks from one), with reference counts and a prefix
// cache.
//
// Prefix cache: a block that holds a full run of block_size positions may be registered. Its
// key is a hash chained over every block before it and a per-request salt, but a lookup only
// trusts what it compares: the block's own tokens, its salt, and that its parent is the block
// the lookup matched just before (a collision of the hash, easy to construct for a 64-bit
// hash, can therefore never share KV between different prefixes or tenants; vLLM's
// GHSA-rm76-4mrf-v9r8 was this bug). The hash is keyed with a per-process random seed.
// Blocks nobody references stay cached and are reused for other prefixes only when no
// never-used block is left (least recently released first), so a shared system prompt stays
// warm while there is room; reusing a block bumps its epoch, which invalidates its children.
//
// Thread-safety: owned by one thread (the scheduler's step loop).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
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
  void release_all(std::vector<int32_t>& table);
  // Grows `table` to hold n_tokens positions; false (and no change) when the pool runs out.
  bool grow(std::vector<int32_t>& table, int64_t n_tokens);

  // A running prefix key: the chain hash over the blocks matched or registered so far.
  struct Chain {
    uint64_t hash = 0;
    int32_t last_block = -1;  // the block the chain ends in (-1: none yet)
  };
  Chain start_chain(const std::string& salt) const;

  // Shares the longest run of registered blocks that prefixes `tokens` under `salt` (at most
  // max_blocks of them); appends them to `table` (refcount + 1 each), advances `chain`, and
  // returns how many.
  int64_t match_prefix(std::span<const int32_t> tokens, const std::string& salt, int64_t max_blocks,
                       std::vector<int32_t>& table, Chain& chain);
  // Registers `block`, which now holds `block_tokens` (block_size of them) right after the
  // blocks of `chain`, and advances `chain` to it.
  void register_full_block(std::span<const int32_t> block_tokens, const std::string& salt,
                           int32_t block, Chain& chain);

  uint64_t prefix_hits() const { return prefix_hits_; }  // blocks reused so far

 private:
  uint64_t next_hash(uint64_t prev, std::span<const int32_t> block_tokens) const;
  void unregister(int32_t block);

  int64_t block_size_;
  uint64_t seed_;
  std::vector<int32_t> refs_;
  std::vector<uint32_t> epoch_;       // bumped whenever the block is handed out again
  std::vector<uint64_t> block_hash_;  // 0 = not registered
  // What a registered block holds: its tokens, salt and parent (block and epoch).
  std::vector<int32_t> tokens_;  // n_blocks x block_size
  std::vector<std::shared_ptr<const std::string>> salt_;
  std::vector<int32_t> parent_;
  std::vector<uint32_t> parent_epoch_;
  std::vector<int32_t> never_used_;
  std::list<int32_t> lru_;  // cached, unreferenced blocks; front = least recently released
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  std::vector<bool> in_lru_;
  std::unordered_map<uint64_t, int32_t> by_hash_;
  int64_t n_used_ = 0;
  uint64_t prefix_hits_ = 0;
};

}  // namespace loom
