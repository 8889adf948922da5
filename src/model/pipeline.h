// Pipeline parallelism (ShardSpec::stages > 1): one forward pass of a model whose layers are
// split into stages held by different ranks. The batch is cut into micro-batches (row ranges;
// a sequence cut in two continues at the next position, its earlier rows' KV already written);
// stage 0 embeds each and runs its layers, every later stage receives the hidden rows from the
// stage before, runs its layers and passes them on, and the last stage runs the output head.
// While stage s works on micro-batch m, stage s - 1 works on m + 1. The last stage's logits are
// then broadcast, so every rank returns the same logits (each samples the same tokens).
#pragma once

#include <vector>

#include "model/model.h"

namespace loom {

// Rows [first, first + n) of `b` as a batch of their own: the sequences' rows inside the range
// at their positions, the rope positions of those rows, and the logit rows inside it, whose
// places in b's output go to `out_index`. Precomputed embeddings are not carried (kUnsupported).
void slice_batch_rows(const Batch& b, int64_t first, int64_t n, Batch& out,
                      std::vector<int64_t>& out_index);

// The layers of this rank's pipeline stage (all of them with one stage); kUnsupported naming
// the model when a stage would get none.
Part stage_layers(const ModelSpec& spec, const ShardSpec& sh);

// A decoder whose forward pass is embed, then its layers, then the output head: all that
// pipeline stages need to know of a family (tensor parallelism lives inside the three).
// forward() runs them over the whole batch with one stage, and with several as described above.
class StagedDecoder : public CausalLM {
 public:
  void forward(const Batch& batch, KvCache& cache, Activations& logits) final;
  Backend& backend() final { return backend_; }

 protected:
  StagedDecoder(Backend& backend, const ShardSpec& shard) : backend_(backend), shard_(shard) {}
  // x = the input rows of `batch` (stage 0 only).
  virtual void embed(const Batch& batch, Activations& x) = 0;
  // This rank's layers over x, in place; the batch has had begin_forward.
  virtual void run_layers(KvCache& cache, Activations& x) = 0;
  // logits [batch.logit_rows.size(), vocab] from x (the last stage only).
  virtual void output_head(const Batch& batch, const Activations& x, Activations& logits) = 0;

  Backend& backend_;
  const ShardSpec shard_;

 private:
  void forward_pipelined(const Batch& batch, KvCache& cache, Activations& logits);

  Activations x_;
  // Pipeline stages: the micro-batch, where its logit rows go in the output, rows passed on.
  Batch micro_;
  std::vector<int64_t> out_index_;
  std::vector<float> rows_, logits_;
  Activations part_;
};

}  // namespace loom
