// Progress a person can see for long steps (downloads, conversion, loading, benchmarks).
//
// On a terminal (stderr is a TTY) one line redrawn at most 10 times a second: label, amount
// done of the total, rate and time left. Otherwise quiet single lines: the start, every 25%,
// and the end, so logs stay short. quiet (or set_quiet_all, the CLI's --quiet) prints nothing.
// Thread-safety: add() may be called from any thread; the rest from the owning thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

namespace loom {

class Progress {
 public:
  enum class Unit { kBytes, kCount };
  Progress(std::string label, int64_t total, Unit unit, bool quiet);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(int64_t n);            // n more units done
  void set_total(int64_t total);  // when it becomes known
  void finish();                  // the final line (also run by the destructor)

  // Silences every Progress made afterwards (the CLI's --quiet). Call before starting threads.
  static void set_quiet_all(bool quiet);

  // "1.5 GB", "12.0 MB", "512 B" (decimal units, as download tools print them).
  static std::string bytes_text(double bytes);

 private:
  void draw(bool final);

  std::string label_;
  std::atomic<int64_t> total_;
  std::atomic<int64_t> done_{0};
  Unit unit_;
  bool quiet_, tty_;
  bool finished_ = false;
  int last_quarter_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::mutex mu_;
};

}  // namespace loom
