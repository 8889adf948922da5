#include "engine/block_pool.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "core/error.h"

namespace loom {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

BlockPool::BlockPool(int64_t n_blocks, int64_t block_size)
    : block_size_(block_size),
      seed_(std::random_device{}() | (uint64_t{std::random_device{}()} << 32)),
      refs_(n_blocks, 0),
      epoch_(n_blocks, 0),
      block_hash_(n_blocks, 0),
      tokens_(static_cast<size_t>(n_blocks * block_size), 0),
      salt_(n_blocks),
      parent_(n_blocks, -1),
      parent_epoch_(n_blocks, 0),
      lru_pos_(n_blocks),
      in_lru_(n_blocks, false) {
  never_used_.reserve(n_blocks);
  for (int64_t b = n_blocks - 1; b >= 0; --b) never_used_.push_back(static_cast<int32_t>(b));
}

void BlockPool::unregister(int32_t b) {
  if (block_hash_[b] == 0) return;
  auto it = by_hash_.find(block_hash_[b]);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  block_hash_[b] = 0;
  salt_[b].reset();
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
    unregister(b);
  } else {
    return -1;
  }
  ++epoch_[b];  // children registered under its old contents no longer match
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

void BlockPool::release_all(std::vector<int32_t>& table) {
  for (int32_t b : table) release(b);
  table.clear();
}

bool BlockPool::grow(std::vector<int32_t>& table, int64_t n_tokens) {
  const int64_t needed = (n_tokens + block_size_ - 1) / block_size_;
  const size_t before = table.size();
  while (static_cast<int64_t>(table.size()) < needed) {
    const int32_t b = allocate();
    if (b < 0) {
      while (table.size() > before) {
        release(table.back());
        table.pop_back();
      }
      return false;
    }
    table.push_back(b);
  }
  return true;
}

BlockPool::Chain BlockPool::start_chain(const std::string& salt) const {
  uint64_t h = mix(seed_ ^ 0x9e3779b97f4a7c15ull);
  for (unsigned char c : salt) h = mix(h ^ c);
  return {mix(h ^ salt.size()), -1};
}

uint64_t BlockPool::next_hash(uint64_t prev, std::span<const int32_t> block_tokens) const {
  uint64_t h = mix(prev ^ seed_);
  for (int32_t t : block_tokens) h = mix(h ^ static_cast<uint32_t>(t));
  return h == 0 ? 1 : h;
}

int64_t BlockPool::match_prefix(std::span<const int32_t> tokens, const std::string& salt,
                                int64_t max_blocks, std::vector<int32_t>& table, Chain& chain) {
  int64_t matched = 0;
  const int64_t full = static_cast<int64_t>(tokens.size()) / block_size_;
  for (int64_t i = 0; i < std::min(full, max_blocks); ++i) {
    const auto block_tokens = tokens.subspan(i * block_size_, block_size_);
    const uint64_t h = next_hash(chain.hash, block_tokens);
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    const int32_t b = it->second;
    // Trust nothing the hash says: compare what the block holds and where it hangs.
    const bool same = salt_[b] && *salt_[b] == salt && parent_[b] == chain.last_block &&
                      (chain.last_block < 0 || parent_epoch_[b] == epoch_[chain.last_block]) &&
                      std::memcmp(&tokens_[b * block_size_], block_tokens.data(),
                                  sizeof(int32_t) * block_size_) == 0;
    if (!same) break;
    if (refs_[b] == 0) {
      if (in_lru_[b]) {
        lru_.erase(lru_pos_[b]);
        in_lru_[b] = false;
      }
      ++n_used_;
    }
    ++refs_[b];
    table.push_back(b);
    chain = {h, b};
    ++matched;
  }
  prefix_hits_ += static_cast<uint64_t>(matched);
  return matched;
}

void BlockPool::register_full_block(std::span<const int32_t> block_tokens, const std::string& salt,
                                    int32_t b, Chain& chain) {
  LOOM_ASSERT(static_cast<int64_t>(block_tokens.size()) == block_size_);
  const uint64_t h = next_hash(chain.hash, block_tokens);
  const int32_t parent = chain.last_block;
  chain = {h, b};
  if (block_hash_[b] != 0) return;     // shared from the cache already
  if (by_hash_.count(h) != 0) return;  // another block holds this key (same prefix, or not)
  by_hash_[h] = b;
  block_hash_[b] = h;
  std::copy(block_tokens.begin(), block_tokens.end(), tokens_.begin() + b * block_size_);
  salt_[b] = std::make_shared<const std::string>(salt);
  parent_[b] = parent;
  parent_epoch_[b] = parent >= 0 ? epoch_[parent] : 0;
}

}  // namespace loom
