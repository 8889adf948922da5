// Server metrics in the Prometheus text format: request counts by endpoint and status, token
// counts, latency histograms (time to first token, inter-token, whole request), and gauges read
// from the scheduler at scrape time (queue depth, running sequences, KV-cache blocks).
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "engine/scheduler.h"

namespace loom::server {

class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};
  void observe(double seconds);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size()> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  void add_tokens(int64_t prompt, int64_t generated);
  // A sequence in which the degeneration guard recognised a loop; `action` is what it did
  // ("stop": ended it, "penalize": only counted, DRY steering).
  void count_degeneration(std::string_view action);
  Histogram ttft, inter_token, request;

  std::string render(const SchedulerStats& s) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  uint64_t degeneration_stop_ = 0, degeneration_penalize_ = 0;
};

}  // namespace loom::server
