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

void StagedDecoder::forward(const Batch& batch, KvCache& cache, Activations& logits) {
  if (shard_.stages > 1) {
    forward_pipelined(batch, cache, logits);
    return;
  }
  begin_forward(backend_, batch, info_);
  embed(batch, x_);
  inject_embeddings(backend_, batch, x_);
  run_layers(cache, x_);
  output_head(batch, x_, logits);
}

void StagedDecoder::forward_pipelined(const Batch& batch, KvCache& cache, Activations& logits) {
  const ShardSpec& sh = shard_;
  Backend& be = backend_;
  LOOM_ASSERT(sh.pipeline != nullptr);
  Communicator& pipe = *sh.pipeline;
  const int me = sh.stage * sh.world + sh.rank;
  const bool first = sh.stage == 0, last = sh.stage == sh.stages - 1;
  const int64_t rows = batch.rows(), hidden = info_.hidden_size, vocab = info_.vocab_size;
  const int64_t n_out = static_cast<int64_t>(batch.logit_rows.size());
  // Enough micro-batches to keep the stages busy, none so small that its matmuls starve.
  const int n_micro = static_cast<int>(
      std::clamp<int64_t>(rows / std::max<int64_t>(1, sh.micro_rows), 1, 4 * sh.stages));
  if (last) logits_.assign(static_cast<size_t>(n_out * vocab), 0.0f);
  for (int m = 0; m < n_micro; ++m) {
    const Part part = split_evenly(rows, n_micro, m);
    slice_batch_rows(batch, part.first, part.count, micro_, out_index_);
    begin_forward(be, micro_, info_);
    if (first) {
      embed(micro_, x_);
    } else {
      rows_.resize(static_cast<size_t>(part.count * hidden));
      pipe.recv(rows_, me - sh.world);  // the same place in the stage before
      be.upload(rows_, part.count, hidden, x_);
    }
    run_layers(cache, x_);
    if (!last) {
      rows_.resize(static_cast<size_t>(part.count * hidden));
      be.download(x_, 0, part.count, rows_);
      pipe.send(rows_, me + sh.world);
      continue;
    }
    if (micro_.logit_rows.empty()) continue;
    output_head(micro_, x_, part_);
    const std::vector<float> part_logits = be.download_all(part_);
    for (size_t i = 0; i < out_index_.size(); ++i) {
      std::copy_n(part_logits.data() + i * vocab, vocab, logits_.data() + out_index_[i] * vocab);
    }
  }
  // Every rank gets the logits from the last stage's first rank.
  logits_.resize(static_cast<size_t>(n_out * vocab));
  pipe.broadcast(std::as_writable_bytes(std::span<float>(logits_)), (sh.stages - 1) * sh.world);
  be.upload(logits_, n_out, vocab, logits);
}

}  // namespace loom
