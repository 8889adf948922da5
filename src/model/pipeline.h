// Pipeline parallelism (ShardSpec::stages > 1): one forward pass of a model whose layers are
// split into stages held by different ranks. The batch is cut into micro-batches (row ranges;
// a sequence cut in two continues at the next position, its earlier rows' KV already written);
// stage 0 embeds each and runs its layers, every later stage receives the hidden rows from the
// stage before, runs its layers and passes them on, and the last stage runs the output head.
// While stage s works on micro-batch m, stage s - 1 works on m + 1. The last stage's logits are
// then broadcast, so every rank returns the same logits (each samples the same tokens).
#pragma once

#include <functional>
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

struct PipelineStage {
  // Stage 0: x = the micro-batch's input embeddings.
  std::function<void(const Batch& micro, Activations& x)> embed;
  // This stage's layers over x, in place (the micro-batch has had begin_forward).
  std::function<void(const Batch& micro, Activations& x)> layers;
  // The last stage: logits [micro.logit_rows.size(), vocab] from x.
  std::function<void(const Batch& micro, Activations& x, Activations& logits)> head;
};

struct PipelineBuffers {
  Batch micro;
  std::vector<int64_t> out_index;
  std::vector<float> rows, logits;
  Activations x, part;
};

// Runs `batch` through this rank's stage as described above; `logits` gets
// [batch.logit_rows.size(), info.vocab_size] on every rank.
void pipeline_forward(Backend& be, const ShardSpec& sh, const ModelInfo& info, const Batch& batch,
                      const PipelineStage& stage, PipelineBuffers& buf, Activations& logits);

}  // namespace loom
