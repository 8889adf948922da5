// ThreadPool — a fixed set of worker threads, created once, that run parallel_for over index
// ranges. No per-token thread creation, and no lock on the hot path: a decode step issues a few
// hundred parallel_for calls of some microseconds each, so hand-off is an atomic generation
// counter that idle workers spin on for a short while (kSpinIterations pauses, roughly 100 us)
// before they sleep on it (std::atomic::wait, a futex); the caller takes a share of the work
// itself and spins, then sleeps, until the workers are done. Spinning only lasts between calls
// that follow each other closely, so an idle pool sleeps.
// Thread-safety: parallel_for may be called from one thread at a time (the engine's step loop).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace loom {

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) on disjoint chunks covering [0, n). Blocks until done.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);
  // Same contract, but threads take chunks of `chunk` indices from a shared counter until none
  // are left, so a thread that starts late or runs slower takes fewer (memory-bound loops,
  // where two threads never finish a static half at the same moment). fn may be called several
  // times per thread.
  void parallel_for_dynamic(int64_t n, int64_t chunk,
                            const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  static constexpr int kSpinIterations = 1 << 13;

  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  // Written by the caller before generation_ is bumped (release), read by workers after they
  // see the new generation (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  bool stop_ = false;
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  alignas(64) std::atomic<int64_t> next_chunk_{0};
};

// Chunk [0, n) into `parts` near-equal ranges; returns the range of part `i`.
inline std::pair<int64_t, int64_t> split_range(int64_t n, int parts, int i) {
  int64_t base = n / parts, extra = n % parts;
  int64_t begin = i * base + std::min<int64_t>(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

}  // namespace loom
