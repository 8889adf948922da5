#include "core/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LOOM_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define LOOM_CPU_RELAX() asm volatile("yield")
#else
#define LOOM_CPU_RELAX() ((void)0)
#endif

namespace loom {

namespace {

// The CPUs this process may run on, in order (empty when unknown).
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
#endif
  return cpus;
}

void pin_to(std::thread::native_handle_type handle, int cpu) {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(handle, sizeof(set), &set);  // advisory: unpinned still works
#else
  (void)handle;
  (void)cpu;
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
  // Pin worker i to the i-th allowed CPU (and the caller's share, thread 0, is left to the
  // scheduler: it is the application's thread) when there are enough CPUs for one each, so
  // that each worker keeps its caches and its half of the weights' stream. LOOM_PIN=0 leaves
  // placement to the OS (several processes sharing the CPUs).
  const char* pin = std::getenv("LOOM_PIN");
  const std::vector<int> cpus = allowed_cpus();
  if ((pin == nullptr || std::string_view(pin) != "0") &&
      static_cast<int>(cpus.size()) >= n_threads_) {
    for (int i = 1; i < n_threads_; ++i) pin_to(threads_[i - 1].native_handle(), cpus[i]);
  }
}

ThreadPool::~ThreadPool() {
  stop_ = true;
  generation_.fetch_add(1, std::memory_order_seq_cst);
  generation_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // seq_cst pairs with the workers' sleepers_ increment: either we see a sleeper and wake it,
  // or its wait() sees the new generation and does not sleep.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  auto [b, e] = split_range(n, n_threads_, 0);
  if (b < e) fn(b, e, 0);
  for (int spin = 0;; ++spin) {
    const int left = pending_.load(std::memory_order_acquire);
    if (left == 0) break;
    if (spin < kSpinIterations) {
      LOOM_CPU_RELAX();
    } else {
      pending_.wait(left, std::memory_order_acquire);
    }
  }
  job_ = nullptr;
}

void ThreadPool::parallel_for_dynamic(int64_t n, int64_t chunk,
                                      const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  if (n_threads_ == 1 || n <= chunk) {
    fn(0, n, 0);
    return;
  }
  next_chunk_.store(0, std::memory_order_relaxed);
  const std::function<void(int64_t, int64_t, int)> take = [&](int64_t, int64_t, int t) {
    for (;;) {
      const int64_t b = next_chunk_.fetch_add(chunk, std::memory_order_relaxed);
      if (b >= n) return;
      fn(b, std::min(n, b + chunk), t);
    }
  };
  parallel_for(n_threads_, take);
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g;
    for (int spin = 0; (g = generation_.load(std::memory_order_acquire)) == seen; ++spin) {
      if (spin < kSpinIterations) {
        LOOM_CPU_RELAX();
      } else {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        generation_.wait(seen, std::memory_order_seq_cst);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    seen = g;
    if (stop_) return;
    auto [b, e] = split_range(job_n_, n_threads_, index);
    if (b < e) (*job_)(b, e, index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace loom
