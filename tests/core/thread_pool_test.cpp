// ThreadPool: every index of [0, n) is handed out exactly once, by static halves and by
// dynamic chunks, for sizes around the chunk and thread counts; the pool survives many calls
// in a row (the decode step's pattern) and sleeping between them.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace loom {
namespace {

void expect_each_once(ThreadPool& pool, int64_t n, int64_t chunk) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int> bad_thread{0};
  auto fn = [&](int64_t b, int64_t e, int t) {
    if (t < 0 || t >= pool.size()) bad_thread.fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
  };
  if (chunk == 0) {
    pool.parallel_for(n, fn);
  } else {
    pool.parallel_for_dynamic(n, chunk, fn);
  }
  EXPECT_EQ(bad_thread.load(), 0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " i " << i;
}

TEST(ThreadPool, EveryIndexOnceStaticAndDynamic) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 3, 7, 16, 17, 100, 1001}) {
      expect_each_once(pool, n, 0);
      for (int64_t chunk : {1, 3, 16, 5000}) expect_each_once(pool, n, chunk);
    }
  }
}

TEST(ThreadPool, ManyCallsAndSleepsInARow) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int round = 0; round < 3; ++round) {
    for (int call = 0; call < 2000; ++call) {
      pool.parallel_for_dynamic(64, 4, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) sum.fetch_add(i);
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers go to sleep
  }
  EXPECT_EQ(sum.load(), 3 * 2000 * (63 * 64 / 2));
}

}  // namespace
}  // namespace loom
