// CausalLM — a decoder-only language model built from a ModelSpec on a Backend. One forward
// pass runs a Batch: rows from one or more sequences (prompt chunks and decode tokens mixed),
// each sequence with its positions and its KV block table, so that every weight is read once
// per step however many sequences run. The model layer holds no per-sequence state: that is
// the KV cache's and the engine's.
// Thread-safety: forward() is called from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/model_spec.h"

namespace loom {

struct Batch {
  std::vector<int32_t> tokens;     // one per row
  std::vector<int32_t> positions;  // one per row: the row's place in its sequence (KV slot)
  std::vector<SeqSlice> seqs;
  std::vector<int64_t> logit_rows;  // rows whose logits are wanted, in output order
  // Rotary positions when they are not `positions`: rope_axes per row, axis-major (M-RoPE's
  // time/height/width positions of image and text tokens). Empty: rotate at `positions`.
  std::vector<int32_t> rope_positions;
  int64_t rope_axes = 1;
  // Precomputed input embeddings (e.g. image features from a vision tower, on the model's
  // backend): row i of *embeddings replaces the token embedding of batch row
  // embedding_rows[i]. Null: every row embeds its token.
  const Activations* embeddings = nullptr;
  std::vector<int32_t> embedding_rows;

  void clear();
  // The inputs the step's ops share (Backend::begin_step).
  StepInputs step() const {
    if (rope_positions.empty()) return {positions, 1, seqs};
    return {rope_positions, rope_axes, seqs};
  }
  // Appends `tokens` of one sequence at positions start_pos..; `block_table` must outlive the
  // forward pass. With all_logits every row's logits are kept, else only the last row's.
  void add_sequence(std::span<const int32_t> seq_tokens, int64_t start_pos,
                    std::span<const int32_t> block_table, bool all_logits);
  int64_t rows() const { return static_cast<int64_t>(tokens.size()); }
};

struct ModelInfo {
  std::string architecture;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t context_length = 0;
};

// Tensor parallelism: which shard of the weights a model instance holds. Attention heads (and KV
// heads, replicated when there are fewer than ranks) and the MLP's intermediate features (each
// expert's, in a mixture of experts) are split in `world` contiguous parts as evenly as heads
// and quantization blocks allow (blocks.h head_part, shard_gated_ffn), rank r holding part r:
// q/k/v and gate/up by rows, the attention output and down projections by columns, so each
// rank's products add up to the whole (Backend::all_reduce). The output head is split by
// vocabulary rows (Backend::all_gather joins the logits); embeddings and norms stay whole.
// Pipeline parallelism: with `stages` > 1 the layers are split into that many contiguous
// stages (split_evenly); stage s holds its layers (the first also the embeddings, the last the
// output head) and its KV cache only for them (ModelInfo::n_layers is the stage's). A forward
// pass cuts the batch into micro-batches that flow stage to stage over `pipeline`, so the
// stages work on different micro-batches at once; the last stage's logits reach every rank.
// Within a stage, `rank` of `world` is the tensor-parallel place (the backend's group).
struct ShardSpec {
  int rank = 0;
  int world = 1;
  int stage = 0;
  int stages = 1;
  // Every rank of every stage, rank stage * world + rank (null with one stage).
  Communicator* pipeline = nullptr;
  // The fewest rows a micro-batch has (a batch of fewer rows is one micro-batch).
  int64_t micro_rows = 32;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  const ModelInfo& info() const { return info_; }

  // Runs `batch`; logits gets [batch.logit_rows.size(), vocab_size]. Token ids must be in
  // [0, vocab_size) and positions below context_length (the engine checks both).
  virtual void forward(const Batch& batch, KvCache& cache, Activations& logits) = 0;
  // The backend the model runs on (for per-run settings such as
  // Backend::set_single_row_kernels_up_to).
  virtual Backend& backend() = 0;

  // A KV cache for this model in its backend's memory.
  std::unique_ptr<KvCache> make_kv_cache(int64_t n_blocks, int64_t block_size,
                                         DType dtype = DType::kF32) {
    return backend().make_kv_cache(info_.n_layers, info_.n_kv_heads, info_.head_dim, block_size,
                                   n_blocks, dtype);
  }
  // Bytes one token of context takes in the KV cache (every layer, K and V).
  uint64_t kv_bytes_per_token(DType dtype) const {
    return KvCache::bytes_per_token(info_.n_layers, info_.n_kv_heads, info_.head_dim, dtype);
  }

 protected:
  ModelInfo info_;
};

// Builds the model for spec.architecture; throws kUnsupported for an unknown architecture and
// kCorruption naming the tensor when a tensor is missing or has the wrong shape. `shard` must
// match the backend's group (rank, world); kUnsupported naming the model when it cannot be
// split so (a rank without a head or MLP feature, a stage without a layer, a column slice
// inside a quantization block).
std::unique_ptr<CausalLM> load_causal_lm(const ModelSpec& spec, Backend& backend,
                                         ShardSpec shard = {});

}  // namespace loom
