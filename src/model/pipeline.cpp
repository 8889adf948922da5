#include "model/pipeline.h"

#include <algorithm>

#include "core/error.h"
#include "model/blocks.h"

namespace loom {

void slice_batch_rows(const Batch& b, int64_t first, int64_t n, Batch& out,
                      std::vector<int64_t>& out_index) {
  LOOM_ASSERT(first >= 0 && n >= 0 && first + n <= b.rows());
  if (b.embeddings != nullptr) {
    fail(ErrorCode::kUnsupported, "precomputed embeddings cannot go through pipeline stages yet");
  }
  out.clear();
  out_index.clear();
  const int64_t end = first + n;
  out.tokens.assign(b.tokens.begin() + first, b.tokens.begin() + end);
  out.positions.assign(b.positions.begin() + first, b.positions.begin() + end);
  for (const SeqSlice& s : b.seqs) {
    const int64_t lo = std::max(first, s.first_row), hi = std::min(end, s.first_row + s.n_tokens);
    if (lo >= hi) continue;
    out.seqs.push_back({lo - first, hi - lo, s.start_pos + (lo - s.first_row), s.block_table});
  }
  for (size_t i = 0; i < b.logit_rows.size(); ++i) {
    const int64_t r = b.logit_rows[i];
    if (r < first || r >= end) continue;
    out.logit_rows.push_back(r - first);
    out_index.push_back(static_cast<int64_t>(i));
  }
  if (!b.rope_positions.empty()) {
    out.rope_axes = b.rope_axes;
    const int64_t rows = b.rows();
    for (int64_t a = 0; a < b.rope_axes; ++a) {
      const auto axis = b.rope_positions.begin() + a * rows;
      out.rope_positions.insert(out.rope_positions.end(), axis + first, axis + end);
    }
  }
}

Part stage_layers(const ModelSpec& spec, const ShardSpec& sh) {
  const int64_t n = spec.hparams.n_layers;
  const Part p = split_evenly(n, sh.stages, sh.stage);
  if (p.count == 0) {
    fail(ErrorCode::kUnsupported, "{}: {} layers cannot be split into {} pipeline stages",
         spec.path, n, sh.stages);
  }
  return p;
}

void pipeline_forward(Backend& be, const ShardSpec& sh, const ModelInfo& info, const Batch& batch,
                      const PipelineStage& stage, PipelineBuffers& buf, Activations& logits) {
  LOOM_ASSERT(sh.stages > 1 && sh.pipeline != nullptr);
  Communicator& pipe = *sh.pipeline;
  const int me = sh.stage * sh.world + sh.rank;
  const bool first = sh.stage == 0, last = sh.stage == sh.stages - 1;
  const int64_t rows = batch.rows(), hidden = info.hidden_size, vocab = info.vocab_size;
  const int64_t n_out = static_cast<int64_t>(batch.logit_rows.size());
  // Enough micro-batches to keep the stages busy, none so small that its matmuls starve.
  const int n_micro = static_cast<int>(
      std::clamp<int64_t>(rows / std::max<int64_t>(1, sh.micro_rows), 1, 4 * sh.stages));
  if (last) buf.logits.assign(static_cast<size_t>(n_out * vocab), 0.0f);
  for (int m = 0; m < n_micro; ++m) {
    const Part part = split_evenly(rows, n_micro, m);
    slice_batch_rows(batch, part.first, part.count, buf.micro, buf.out_index);
    begin_forward(be, buf.micro, info);
    if (first) {
      stage.embed(buf.micro, buf.x);
    } else {
      buf.rows.resize(static_cast<size_t>(part.count * hidden));
      pipe.recv(buf.rows, me - sh.world);  // the same place in the stage before
      be.upload(buf.rows, part.count, hidden, buf.x);
    }
    stage.layers(buf.micro, buf.x);
    if (!last) {
      buf.rows.resize(static_cast<size_t>(part.count * hidden));
      be.download(buf.x, 0, part.count, buf.rows);
      pipe.send(buf.rows, me + sh.world);
      continue;
    }
    if (buf.micro.logit_rows.empty()) continue;
    stage.head(buf.micro, buf.x, buf.part);
    const std::vector<float> part_logits = be.download_all(buf.part);
    for (size_t i = 0; i < buf.out_index.size(); ++i) {
      std::copy_n(part_logits.data() + i * vocab, vocab,
                  buf.logits.data() + buf.out_index[i] * vocab);
    }
  }
  // Every rank gets the logits from the last stage's first rank.
  buf.logits.resize(static_cast<size_t>(n_out * vocab));
  pipe.broadcast(std::as_writable_bytes(std::span<float>(buf.logits)), (sh.stages - 1) * sh.world);
  be.upload(buf.logits, n_out, vocab, logits);
}

}  // namespace loom
