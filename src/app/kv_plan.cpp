#include "app/kv_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace loom::app {

namespace {

std::string gib(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", b / double(uint64_t{1} << 30));
  if (bytes >= (uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", b / double(uint64_t{1} << 20));
  return fmt::format("{:.1f} KiB", b / 1024.0);
}

std::string type_name(DType t) {
  std::string s(dtype_name(t));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

uint64_t serving_reserve_bytes(int64_t hidden, int64_t ffn, int64_t vocab, int64_t step_tokens,
                               int64_t parallel, int64_t context, int64_t n_heads) {
  // Per batch row: the residual stream, norms, q/k/v, attention output (~8 x hidden) and the
  // FFN's gate, up and product (3 x ffn); logits for up to `parallel` rows; attention scores
  // (heads x positions) per worker thread; and 256 MiB for the runtime itself.
  const uint64_t rows = static_cast<uint64_t>(std::max<int64_t>(step_tokens, 1));
  const uint64_t act = rows * static_cast<uint64_t>(8 * hidden + 3 * ffn) * 4;
  const uint64_t logits =
      static_cast<uint64_t>(std::max<int64_t>(parallel, 1)) * static_cast<uint64_t>(vocab) * 4 * 2;
  const uint64_t scores = 16 * static_cast<uint64_t>(n_heads) * static_cast<uint64_t>(context) * 4;
  return act + logits + scores + (uint64_t{256} << 20);
}

KvPlan plan_kv_cache(const KvPlanInput& in) {
  if (!(in.memory_utilization > 0.0 && in.memory_utilization <= 1.0)) {
    fail(ErrorCode::kInvalidArgument, "--memory-utilization {} must be in (0, 1]",
         in.memory_utilization);
  }
  const uint64_t per_block = in.bytes_per_token * static_cast<uint64_t>(in.block_size);
  KvPlan p;
  std::string source;
  uint64_t budget = 0;
  if (in.explicit_kv_bytes > 0) {
    budget = in.explicit_kv_bytes;
    source = fmt::format("--kv-memory {}", gib(budget));
  } else {
    const double share = in.memory_utilization * static_cast<double>(in.memory_total);
    const double by_share = share - static_cast<double>(in.weight_bytes);
    const double by_avail = static_cast<double>(in.memory_available);
    const double b = std::min(by_share, by_avail) - static_cast<double>(in.reserve_bytes);
    budget = b > 0 ? static_cast<uint64_t>(b) : 0;
    source = fmt::format("{:.0f}% of {} memory, after {} of weights and {} for activations",
                         in.memory_utilization * 100, gib(in.memory_total), gib(in.weight_bytes),
                         gib(in.reserve_bytes));
  }
  p.n_blocks = static_cast<int64_t>(budget / per_block);
  if (p.n_blocks < 1) {
    fail(ErrorCode::kInvalidArgument,
         "not enough memory for the KV cache: {} leaves {} (one block of {} tokens takes {}); "
         "free memory, use a smaller --kv-type or set --kv-memory",
         source, gib(budget), in.block_size, gib(per_block));
  }
  p.kv_bytes = static_cast<uint64_t>(p.n_blocks) * per_block;
  p.pool_tokens = p.n_blocks * in.block_size;
  if (in.requested_context > 0) {
    if (in.requested_context > in.model_context) {
      fail(ErrorCode::kInvalidArgument, "--ctx {} exceeds the model's context length of {}",
           in.requested_context, in.model_context);
    }
    if (in.requested_context > p.pool_tokens) {
      fail(ErrorCode::kInvalidArgument,
           "--ctx {} needs {} of KV cache ({}), but the budget ({}) holds {} tokens: lower --ctx, "
           "raise --kv-memory or --memory-utilization, or use --kv-type q8_0",
           in.requested_context,
           gib(in.bytes_per_token * static_cast<uint64_t>(in.requested_context)),
           type_name(in.kv_type), source, p.pool_tokens);
    }
    p.context = in.requested_context;
  } else {
    p.context = std::min(in.model_context, p.pool_tokens);
    p.context_lowered = p.context < in.model_context;
  }
  // More than `parallel` full contexts (plus a block each) could never be used at once.
  const int64_t useful =
      (p.context * in.parallel + in.block_size - 1) / in.block_size + in.parallel;
  bool capped = false;
  if (p.n_blocks > useful) {
    p.n_blocks = useful;
    p.kv_bytes = static_cast<uint64_t>(p.n_blocks) * per_block;
    p.pool_tokens = p.n_blocks * in.block_size;
    capped = true;
  }
  p.summary = fmt::format(
      "KV cache {} {} = {} tokens ({} blocks of {}, {:.1f} KiB a token) from {}{}; a request "
      "may use up to {} tokens{}",
      type_name(in.kv_type), gib(p.kv_bytes), p.pool_tokens, p.n_blocks, in.block_size,
      static_cast<double>(in.bytes_per_token) / 1024.0, source,
      capped ? fmt::format(", capped at {} full contexts", in.parallel) : "", p.context,
      p.context_lowered ? fmt::format(" (the model's {} do not fit)", in.model_context) : "");
  return p;
}

}  // namespace loom::app
