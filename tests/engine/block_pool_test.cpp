// BlockPool: allocation and release, the prefix cache's matching (tokens, salt, parent), LRU
// eviction invalidating children, and grow().
#include "engine/block_pool.h"

#include <gtest/gtest.h>

#include <numeric>

namespace loom {
namespace {

std::vector<int32_t> tokens(int n, int base) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), base);
  return t;
}

// Registers the full blocks of `toks` in `table` under `salt`.
void register_all(BlockPool& pool, const std::vector<int32_t>& toks,
                  const std::vector<int32_t>& table, const std::string& salt) {
  auto chain = pool.start_chain(salt);
  for (size_t i = 0; i < table.size(); ++i) {
    pool.register_full_block(std::span<const int32_t>(toks).subspan(i * 4, 4), salt, table[i],
                             chain);
  }
}

TEST(BlockPool, SharesOnlyTheSamePrefixUnderTheSameSalt) {
  BlockPool pool(16, 4);
  const auto a = tokens(12, 100);
  std::vector<int32_t> table;
  ASSERT_TRUE(pool.grow(table, 12));
  register_all(pool, a, table, "alice");
  pool.release_all(table);
  EXPECT_EQ(pool.n_used(), 0);
  EXPECT_EQ(pool.n_cached(), 3);

  auto match = [&](const std::vector<int32_t>& t, const std::string& salt) {
    std::vector<int32_t> got;
    auto chain = pool.start_chain(salt);
    const int64_t n = pool.match_prefix(t, salt, 100, got, chain);
    pool.release_all(got);
    return n;
  };
  EXPECT_EQ(match(a, "alice"), 3);
  EXPECT_EQ(match(a, "bob"), 0) << "another tenant never shares";
  EXPECT_EQ(match(a, ""), 0);
  auto b = a;
  b[5] = 9999;  // differs in the second block
  EXPECT_EQ(match(b, "alice"), 1);
  auto c = a;
  c[0] = 9999;  // differs in the first block: nothing after it can match either
  EXPECT_EQ(match(c, "alice"), 0);
}

TEST(BlockPool, EvictedParentInvalidatesItsChildren) {
  BlockPool pool(3, 4);
  const auto a = tokens(8, 1);
  std::vector<int32_t> table;
  ASSERT_TRUE(pool.grow(table, 8));
  register_all(pool, a, table, "");
  const int32_t parent = table[0];
  pool.release(table[1]);  // the child is released first: the parent is evicted first
  pool.release(table[0]);
  table.clear();
  // Two allocations: the never-used block, then the least recently released (the child).
  std::vector<int32_t> other;
  other.push_back(pool.allocate());
  other.push_back(pool.allocate());
  EXPECT_EQ(pool.n_available(), 1);
  pool.release_all(other);
  std::vector<int32_t> got;
  auto chain = pool.start_chain("");
  EXPECT_LE(pool.match_prefix(a, "", 100, got, chain), 1);
  for (int32_t b : got) EXPECT_EQ(b, parent);
  pool.release_all(got);
}

TEST(BlockPool, GrowAllOrNothing) {
  BlockPool pool(4, 16);
  std::vector<int32_t> t;
  EXPECT_TRUE(pool.grow(t, 33));
  EXPECT_EQ(t.size(), 3u);
  std::vector<int32_t> u;
  EXPECT_FALSE(pool.grow(u, 40));
  EXPECT_TRUE(u.empty());
  EXPECT_EQ(pool.n_available(), 1);
  pool.release_all(t);
  EXPECT_EQ(pool.n_available(), 4);
}

}  // namespace
}  // namespace loom
