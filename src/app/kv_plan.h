// How big `loom serve`'s KV cache is and how long a request may be, decided once at start-up
// (as vLLM's --gpu-memory-utilization does for GPU memory):
//
//   budget = min(utilization x total memory - weights, available memory) - reserve
//
// where total/available are the machine's or the cgroup's (core/system_memory.h), weights are
// the model's tensor bytes and reserve covers activations and the runtime. An explicit
// --kv-memory replaces the budget. The pool holds budget / bytes-per-token tokens, in whole
// blocks, and never more than `parallel` full contexts (all the scheduler can use at once).
// The context per request is --ctx, which must fit the pool (an error at start-up, never
// later), or by default the model's context length, lowered to what the pool holds.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace loom::app {

struct KvPlanInput {
  uint64_t bytes_per_token = 0;  // every layer, K and V, at the chosen KV type
  DType kv_type = DType::kF16;
  int64_t model_context = 0;
  int64_t requested_context = 0;   // --ctx; 0 = the model's
  uint64_t explicit_kv_bytes = 0;  // --kv-memory; 0 = from memory_utilization
  double memory_utilization = 0.9;
  uint64_t memory_total = 0, memory_available = 0;
  uint64_t weight_bytes = 0;
  uint64_t reserve_bytes = 0;
  int64_t block_size = 16;
  int64_t parallel = 1;  // sequences at once: the pool never needs more than parallel x context
};

struct KvPlan {
  uint64_t kv_bytes = 0;  // what the pool takes (whole blocks)
  int64_t n_blocks = 0;
  int64_t pool_tokens = 0;
  int64_t context = 0;           // per request
  bool context_lowered = false;  // the model's context did not fit and was lowered
  std::string summary;           // the start-up line's text
};

// kInvalidArgument naming the option when the plan cannot work (an explicit --ctx beyond the
// pool, a utilization outside (0, 1], memory for less than one block).
KvPlan plan_kv_cache(const KvPlanInput& in);

// Bytes of activations and runtime beside weights and KV while serving `step_tokens` rows at
// once with `parallel` sequences.
uint64_t serving_reserve_bytes(int64_t hidden, int64_t ffn, int64_t vocab, int64_t step_tokens,
                               int64_t parallel, int64_t context, int64_t n_heads);

}  // namespace loom::app
