#include "server/metrics.h"

#include <fmt/format.h>

namespace loom::server {

void Histogram::observe(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++buckets_[i];
  }
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (size_t i = 0; i < kBounds.size(); ++i) {
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i], buckets_[i]);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name,
                     sum_, name, count_);
}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::add_tokens(int64_t prompt, int64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  generated_tokens_ += static_cast<uint64_t>(generated);
}

void Metrics::count_degeneration(std::string_view action) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(action == "stop" ? degeneration_stop_ : degeneration_penalize_);
}

std::string Metrics::render(const SchedulerStats& s) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out += "# HELP loom_requests_total HTTP requests by endpoint and status.\n";
    out += "# TYPE loom_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out += fmt::format("loom_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.first,
                         key.second, n);
    }
    out += fmt::format(
        "# HELP loom_prompt_tokens_total Prompt tokens processed.\n"
        "# TYPE loom_prompt_tokens_total counter\nloom_prompt_tokens_total {}\n"
        "# HELP loom_generation_tokens_total Tokens generated.\n"
        "# TYPE loom_generation_tokens_total counter\nloom_generation_tokens_total {}\n",
        prompt_tokens_, generated_tokens_);
    out += fmt::format(
        "# HELP loom_degeneration_triggers_total Sequences in which the degeneration guard "
        "recognised a loop, by what it did.\n"
        "# TYPE loom_degeneration_triggers_total counter\n"
        "loom_degeneration_triggers_total{{action=\"stop\"}} {}\n"
        "loom_degeneration_triggers_total{{action=\"penalize\"}} {}\n",
        degeneration_stop_, degeneration_penalize_);
  }
  out += fmt::format(
      "# HELP loom_queue_depth Requests waiting for a running slot.\n"
      "# TYPE loom_queue_depth gauge\nloom_queue_depth {}\n"
      "# HELP loom_running_sequences Sequences in the running batch.\n"
      "# TYPE loom_running_sequences gauge\nloom_running_sequences {}\n"
      "# HELP loom_kv_cache_blocks_total KV-cache blocks in the pool.\n"
      "# TYPE loom_kv_cache_blocks_total gauge\nloom_kv_cache_blocks_total {}\n"
      "# HELP loom_kv_cache_blocks_used KV-cache blocks held by sequences.\n"
      "# TYPE loom_kv_cache_blocks_used gauge\nloom_kv_cache_blocks_used {}\n"
      "# HELP loom_kv_cache_blocks_cached Unreferenced blocks kept for prefix reuse.\n"
      "# TYPE loom_kv_cache_blocks_cached gauge\nloom_kv_cache_blocks_cached {}\n"
      "# HELP loom_kv_cache_usage_ratio Share of KV-cache blocks held by sequences.\n"
      "# TYPE loom_kv_cache_usage_ratio gauge\nloom_kv_cache_usage_ratio {}\n"
      "# HELP loom_prefix_cache_hit_blocks_total Prompt blocks served from the prefix cache.\n"
      "# TYPE loom_prefix_cache_hit_blocks_total counter\nloom_prefix_cache_hit_blocks_total {}\n"
      "# HELP loom_scheduler_steps_total Forward passes run.\n"
      "# TYPE loom_scheduler_steps_total counter\nloom_scheduler_steps_total {}\n"
      "# HELP loom_preemptions_total Sequences preempted (KV freed, recomputed later).\n"
      "# TYPE loom_preemptions_total counter\nloom_preemptions_total {}\n"
      "# HELP loom_speculative_drafted_tokens_total Tokens drafted for speculative decoding.\n"
      "# TYPE loom_speculative_drafted_tokens_total counter\n"
      "loom_speculative_drafted_tokens_total {}\n"
      "# HELP loom_speculative_accepted_tokens_total Drafted tokens the model accepted.\n"
      "# TYPE loom_speculative_accepted_tokens_total counter\n"
      "loom_speculative_accepted_tokens_total {}\n",
      s.queued, s.running, s.kv_blocks_total, s.kv_blocks_used, s.kv_blocks_cached,
      s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) / s.kv_blocks_total : 0.0,
      s.prefix_hit_blocks, s.steps, s.preemptions, s.drafted, s.draft_accepted);
  ttft.render(out, "loom_time_to_first_token_seconds", "Time from request to first token.");
  inter_token.render(out, "loom_inter_token_latency_seconds", "Time between streamed tokens.");
  request.render(out, "loom_request_duration_seconds", "Time from request to last token.");
  return out;
}

}  // namespace loom::server
