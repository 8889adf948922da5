#include "model/model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "model/model_registry.h"

namespace loom {

void Batch::clear() {
  tokens.clear();
  positions.clear();
  seqs.clear();
  logit_rows.clear();
  rope_positions.clear();
  rope_axes = 1;
  embeddings = nullptr;
  embedding_rows.clear();
}

void Batch::add_sequence(std::span<const int32_t> seq_tokens, int64_t start_pos,
                         std::span<const int32_t> block_table, bool all_logits) {
  const int64_t first = rows();
  const int64_t n = static_cast<int64_t>(seq_tokens.size());
  tokens.insert(tokens.end(), seq_tokens.begin(), seq_tokens.end());
  for (int64_t i = 0; i < n; ++i) positions.push_back(static_cast<int32_t>(start_pos + i));
  seqs.push_back(SeqSlice{first, n, start_pos, block_table});
  if (all_logits) {
    for (int64_t i = 0; i < n; ++i) logit_rows.push_back(first + i);
  } else if (n > 0) {
    logit_rows.push_back(first + n - 1);
  }
}

namespace {
const ModelRegistry& registry() {
  static const ModelRegistry r = [] {
    ModelRegistry reg;
    register_llama_family(reg);
    register_gemma(reg);
    register_gpt2(reg);
    return reg;
  }();
  return r;
}
}  // namespace

std::unique_ptr<CausalLM> load_causal_lm(const ModelSpec& spec, Backend& backend, ShardSpec shard) {
  const ModelRegistry::Builder* b = registry().find(spec.architecture);
  if (b == nullptr) {
    fail(ErrorCode::kUnsupported, "{}: architecture '{}' is not supported (loom runs: {})",
         spec.path, spec.architecture, fmt::join(registry().names(), ", "));
  }
  if (shard.world < 1 || shard.rank < 0 || shard.rank >= shard.world ||
      shard.world != backend.world() || shard.rank != backend.rank()) {
    fail(ErrorCode::kInvalidArgument,
         "{}: shard {} of {} does not match the backend's place in its group (rank {} of {})",
         spec.path, shard.rank, shard.world, backend.rank(), backend.world());
  }
  if (shard.stages < 1 || shard.stage < 0 || shard.stage >= shard.stages ||
      (shard.stages > 1 &&
       (shard.pipeline == nullptr || shard.pipeline->world() != shard.stages * shard.world ||
        shard.pipeline->rank() != shard.stage * shard.world + shard.rank))) {
    fail(ErrorCode::kInvalidArgument,
         "{}: pipeline stage {} of {} does not match its group (rank {} of {})", spec.path,
         shard.stage, shard.stages, shard.pipeline ? shard.pipeline->rank() : 0,
         shard.pipeline ? shard.pipeline->world() : 1);
  }
  return (*b)(spec, backend, shard);
}

}  // namespace loom
