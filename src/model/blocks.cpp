#include "model/blocks.h"

#include <fmt/format.h>

#include "backend/communicator.h"
#include "core/error.h"

namespace loom {

Activation parse_activation(const std::string& hf_name, Activation fallback,
                            const std::string& model_path) {
  if (hf_name.empty()) return fallback;
  if (hf_name == "silu" || hf_name == "swish") return Activation::kSilu;
  // gelu_new (gpt2) and gelu_pytorch_tanh (gemma) are both PyTorch's tanh approximation.
  if (hf_name == "gelu_pytorch_tanh" || hf_name == "gelu_new" || hf_name == "gelu_tanh") {
    return Activation::kGeluTanh;
  }
  fail(ErrorCode::kUnsupported, "{}: activation '{}' is not supported yet", model_path, hf_name);
}

int64_t need_hparam(const ModelSpec& spec, int64_t value, const char* what) {
  if (value <= 0) {
    fail(ErrorCode::kCorruption, "{}: hyper-parameter {} is missing", spec.path, what);
  }
  return value;
}

AttentionShape attention_shape(const ModelSpec& spec) {
  const HyperParams& hp = spec.hparams;
  AttentionShape s{
      need_hparam(spec, hp.hidden_size, "hidden_size"), need_hparam(spec, hp.n_heads, "n_heads"),
      need_hparam(spec, hp.n_kv_heads, "n_kv_heads"), need_hparam(spec, hp.head_dim, "head_dim")};
  if (s.n_heads % s.n_kv_heads != 0) {
    fail(ErrorCode::kCorruption, "{}: {} heads are not a multiple of {} KV heads", spec.path,
         s.n_heads, s.n_kv_heads);
  }
  return s;
}

AttentionWeights load_attention(const WeightLoader& w, const std::string& p,
                                const AttentionShape& s) {
  AttentionWeights W;
  const int64_t q_rows = s.n_heads * s.head_dim, kv_rows = s.n_kv_heads * s.head_dim;
  if (auto qkv = w.optional(p + "attn_qkv.weight", {q_rows + 2 * kv_rows, s.hidden})) {
    W.wq = matrix_rows(*qkv, 0, q_rows);
    W.wk = matrix_rows(*qkv, q_rows, kv_rows);
    W.wv = matrix_rows(*qkv, q_rows + kv_rows, kv_rows);
    if (auto b = w.optional(p + "attn_qkv.bias", {q_rows + 2 * kv_rows})) {
      W.bq = vector_slice(*b, 0, q_rows);
      W.bk = vector_slice(*b, q_rows, kv_rows);
      W.bv = vector_slice(*b, q_rows + kv_rows, kv_rows);
    }
  } else {
    W.wq = w.require(p + "attn_q.weight", {q_rows, s.hidden});
    W.wk = w.require(p + "attn_k.weight", {kv_rows, s.hidden});
    W.wv = w.require(p + "attn_v.weight", {kv_rows, s.hidden});
    W.bq = w.optional(p + "attn_q.bias", {q_rows});
    W.bk = w.optional(p + "attn_k.bias", {kv_rows});
    W.bv = w.optional(p + "attn_v.bias", {kv_rows});
  }
  W.wo = w.require(p + "attn_output.weight", {s.hidden, q_rows});
  W.bo = w.optional(p + "attn_output.bias", {s.hidden});
  W.q_norm = w.optional(p + "attn_q_norm.weight", {s.head_dim});
  W.k_norm = w.optional(p + "attn_k_norm.weight", {s.head_dim});
  return W;
}

GatedFfnWeights load_gated_ffn(const WeightLoader& w, const std::string& p, int64_t hidden,
                               int64_t ffn) {
  GatedFfnWeights W;
  W.down = w.require(p + "ffn_down.weight", {hidden, ffn});
  if (auto gate = w.optional(p + "ffn_gate.weight", {ffn, hidden})) {
    W.gate = *gate;
    W.up = w.require(p + "ffn_up.weight", {ffn, hidden});
  } else {
    const TensorView fused = w.require(p + "ffn_up.weight", {2 * ffn, hidden});
    W.gate = matrix_rows(fused, 0, ffn);
    W.up = matrix_rows(fused, ffn, ffn);
  }
  return W;
}

MoeWeights load_moe(const WeightLoader& w, const std::string& p, int64_t hidden, int64_t expert_ffn,
                    int64_t n_experts, int64_t n_used, bool renormalize) {
  MoeWeights W;
  W.router = w.require(p + "ffn_gate_inp.weight", {n_experts, hidden});
  W.n_used = n_used;
  W.renormalize = renormalize;
  if (auto gate = w.optional(p + "ffn_gate_exps.weight", {n_experts, expert_ffn, hidden})) {
    const TensorView up = w.require(p + "ffn_up_exps.weight", {n_experts, expert_ffn, hidden});
    const TensorView down = w.require(p + "ffn_down_exps.weight", {n_experts, hidden, expert_ffn});
    for (int64_t e = 0; e < n_experts; ++e) {
      W.experts.push_back({stack_item(*gate, e), stack_item(up, e), stack_item(down, e)});
    }
  } else {
    for (int64_t e = 0; e < n_experts; ++e) {
      const std::string x = fmt::format(".{}.weight", e);
      W.experts.push_back({w.require(p + "ffn_gate" + x, {expert_ffn, hidden}),
                           w.require(p + "ffn_up" + x, {expert_ffn, hidden}),
                           w.require(p + "ffn_down" + x, {hidden, expert_ffn})});
    }
  }
  return W;
}

HeadPart head_part(const AttentionShape& s, const ShardSpec& sh, const std::string& model_path) {
  const int64_t group = s.n_heads / s.n_kv_heads;  // query heads per KV head
  HeadPart p;
  if (sh.world <= s.n_kv_heads) {
    const Part kv = split_evenly(s.n_kv_heads, sh.world, sh.rank);
    p = {kv.first * group, kv.count * group, kv.first, kv.count};
  } else {
    for (int64_t k = 0; k < s.n_kv_heads; ++k) {
      const Part ranks =
          split_evenly(sh.world, static_cast<int>(s.n_kv_heads), static_cast<int>(k));
      if (sh.rank < ranks.first || sh.rank >= ranks.first + ranks.count) continue;
      const Part q = split_evenly(group, static_cast<int>(ranks.count),
                                  static_cast<int>(sh.rank - ranks.first));
      p = {k * group + q.first, q.count, k, 1};
    }
  }
  if (p.n_q == 0) {
    fail(ErrorCode::kUnsupported,
         "{}: {} attention heads ({} KV heads) cannot be split over {} ranks: rank {} would have "
         "no head",
         model_path, s.n_heads, s.n_kv_heads, sh.world, sh.rank);
  }
  return p;
}

AttentionShape shard_shape(const AttentionShape& s, const ShardSpec& sh,
                           const std::string& model_path) {
  if (sh.world == 1) return s;
  const HeadPart p = head_part(s, sh, model_path);
  return {s.hidden, p.n_q, p.n_kv, s.head_dim};
}

AttentionWeights shard_attention(const AttentionWeights& W, const AttentionShape& whole,
                                 const ShardSpec& sh, WeightArena& arena,
                                 const std::string& where) {
  if (sh.world == 1) return W;
  const HeadPart p = head_part(whole, sh, where);
  const int64_t hd = whole.head_dim;
  const int64_t q0 = p.q_first * hd, q_rows = p.n_q * hd;
  const int64_t kv0 = p.kv_first * hd, kv_rows = p.n_kv * hd;
  AttentionWeights S;
  S.wq = matrix_rows(W.wq, q0, q_rows);
  S.wk = matrix_rows(W.wk, kv0, kv_rows);
  S.wv = matrix_rows(W.wv, kv0, kv_rows);
  if (W.bq) S.bq = vector_slice(*W.bq, q0, q_rows);
  if (W.bk) S.bk = vector_slice(*W.bk, kv0, kv_rows);
  if (W.bv) S.bv = vector_slice(*W.bv, kv0, kv_rows);
  S.wo = arena.columns(W.wo, q0, q_rows, where + "attn_output.weight");
  if (sh.rank == 0) S.bo = W.bo;
  S.q_norm = W.q_norm;
  S.k_norm = W.k_norm;
  return S;
}

Part ffn_part(const TensorView& down, int64_t ffn, const ShardSpec& sh, const std::string& where) {
  const int64_t block = dtype_info(down.dtype).block_size;
  const Part p = split_evenly(ffn, sh.world, sh.rank, block);
  if (p.count == 0) {
    fail(ErrorCode::kUnsupported,
         "{}: an MLP of {} features in blocks of {} ({}) cannot be split over {} ranks: rank {} "
         "would have none",
         where, ffn, block, dtype_name(down.dtype), sh.world, sh.rank);
  }
  return p;
}

GatedFfnWeights shard_gated_ffn(const GatedFfnWeights& W, int64_t ffn, const ShardSpec& sh,
                                WeightArena& arena, const std::string& where) {
  if (sh.world == 1) return W;
  const Part p = ffn_part(W.down, ffn, sh, where);
  return {matrix_rows(W.gate, p.first, p.count), matrix_rows(W.up, p.first, p.count),
          arena.columns(W.down, p.first, p.count, where + "ffn_down.weight")};
}

void vocab_parallel_head(Backend& be, const Activations& h, const TensorView& output, int64_t vocab,
                         Activations& part, Activations& logits) {
  if (be.world() == 1) {
    be.matmul(h, output, nullptr, logits);
    return;
  }
  be.matmul(h, output, nullptr, part);  // this rank's slice of the vocabulary
  be.all_gather(part, vocab, logits);
}

TensorView shard_output_head(const TensorView& output, const ShardSpec& sh) {
  if (sh.world == 1) return output;
  const Part p = split_evenly(output.shape[0], sh.world, sh.rank);
  return matrix_rows(output, p.first, p.count);
}

void attention_block(Backend& be, const AttentionWeights& W, const AttentionOptions& o,
                     const Activations& h, KvCache& cache, int64_t layer, BlockBuffers& buf,
                     Activations& out) {
  const AttentionParams& p = o.params;
  const Backend::MatmulTarget qkv[] = {{&W.wq, W.bq ? &*W.bq : nullptr, &buf.q},
                                       {&W.wk, W.bk ? &*W.bk : nullptr, &buf.k},
                                       {&W.wv, W.bv ? &*W.bv : nullptr, &buf.v}};
  be.matmul_many(h, qkv);
  // qwen3 / gemma3: RMSNorm over each head of q and k, before the rotation.
  if (W.q_norm) be.rms_norm(buf.q, *W.q_norm, o.qk_norm_eps, o.qk_norm_offset, p.head_dim, buf.q);
  if (W.k_norm) be.rms_norm(buf.k, *W.k_norm, o.qk_norm_eps, o.qk_norm_offset, p.head_dim, buf.k);
  if (o.rope != nullptr) {
    be.rope(buf.q, p.n_heads, p.head_dim, *o.rope);
    be.rope(buf.k, p.n_kv_heads, p.head_dim, *o.rope);
  }
  be.attention(buf.q, buf.k, buf.v, cache, layer, p, buf.a);
  be.matmul(buf.a, W.wo, W.bo ? &*W.bo : nullptr, out);
}

void gated_ffn(Backend& be, const GatedFfnWeights& W, Activation act, const Activations& h,
               BlockBuffers& buf, Activations& out) {
  const Backend::MatmulTarget gate_up[] = {{&W.gate, nullptr, &buf.g}, {&W.up, nullptr, &buf.u}};
  be.matmul_many(h, gate_up);
  if (act == Activation::kSilu) {
    be.swiglu(buf.g, buf.u, buf.g);
  } else {
    be.geglu(buf.g, buf.u, buf.g);
  }
  be.matmul(buf.g, W.down, nullptr, out);
}

void moe_ffn_accumulate(Backend& be, const MoeWeights& W, Activation act, const Activations& h,
                        Activations& acc) {
  be.moe_ffn(h, W.router, W.experts, {W.n_used, W.renormalize, act}, acc);
}

void begin_forward(Backend& be, const Batch& batch, const ModelInfo& info) {
  const int64_t rows = batch.rows();
  if (static_cast<int64_t>(batch.positions.size()) != rows ||
      (!batch.rope_positions.empty() &&
       (batch.rope_axes < 1 ||
        static_cast<int64_t>(batch.rope_positions.size()) != rows * batch.rope_axes))) {
    fail(ErrorCode::kInvalidArgument,
         "a batch of {} rows with {} positions and {} rope positions ({} axes)", rows,
         batch.positions.size(), batch.rope_positions.size(), batch.rope_axes);
  }
  if (batch.embeddings != nullptr || !batch.embedding_rows.empty()) {
    const Activations* e = batch.embeddings;
    if (e == nullptr || e->rows() != static_cast<int64_t>(batch.embedding_rows.size()) ||
        e->cols() != info.hidden_size) {
      fail(ErrorCode::kInvalidArgument,
           "precomputed embeddings: {} rows given for {} batch rows, {} wide for a model of {}",
           e != nullptr ? e->rows() : 0, batch.embedding_rows.size(), e != nullptr ? e->cols() : 0,
           info.hidden_size);
    }
    std::vector<bool> seen(static_cast<size_t>(rows), false);
    for (int32_t r : batch.embedding_rows) {
      if (r < 0 || r >= rows || seen[static_cast<size_t>(r)]) {
        fail(ErrorCode::kInvalidArgument,
             "precomputed embeddings: row {} is outside the batch of {} rows or given twice", r,
             rows);
      }
      seen[static_cast<size_t>(r)] = true;
    }
  }
  be.begin_step(batch.step());
}

void inject_embeddings(Backend& be, const Batch& batch, Activations& x) {
  if (batch.embeddings != nullptr) be.scatter_rows(*batch.embeddings, batch.embedding_rows, x);
}

void select_logit_rows(Backend& be, const Activations& x, const Batch& batch, BlockBuffers& buf,
                       Activations& out) {
  buf.rows.assign(batch.logit_rows.begin(), batch.logit_rows.end());
  be.gather_rows(x, buf.rows, out);
}

void prepare(Backend& be, TensorView& w, WeightUse use) {
  w = be.prepare_weight(w, use);
}

void prepare(Backend& be, std::optional<TensorView>& w, WeightUse use) {
  if (w) prepare(be, *w, use);
}

WeightUse embedding_use(const TensorView& embd, const TensorView& output) {
  const auto* e = static_cast<const uint8_t*>(embd.data);
  const auto* o = static_cast<const uint8_t*>(output.data);
  const bool shared =
      o != nullptr && e != nullptr && o < e + embd.n_bytes && e < o + output.n_bytes;
  return shared ? WeightUse::kRows : WeightUse::kLookup;
}

void prepare(Backend& be, AttentionWeights& w) {
  for (TensorView* m : {&w.wq, &w.wk, &w.wv, &w.wo}) prepare(be, *m, WeightUse::kMatrix);
  prepare_vectors(be, w.bq, w.bk, w.bv, w.bo, w.q_norm, w.k_norm);
}

void prepare(Backend& be, GatedMlp& w) {
  for (TensorView* m : {&w.gate, &w.up, &w.down}) prepare(be, *m, WeightUse::kMatrix);
}

void prepare(Backend& be, AttentionWeights& w, WeightArena& arena) {
  const void* wo = w.wo.data;
  prepare(be, w);
  arena.release_replaced(wo, w.wo.data);
}

void prepare(Backend& be, GatedMlp& w, WeightArena& arena) {
  const void* down = w.down.data;
  prepare(be, w);
  arena.release_replaced(down, w.down.data);
}

void prepare(Backend& be, MoeWeights& w) {
  prepare(be, w.router, WeightUse::kRows);
  for (GatedMlp& e : w.experts) {
    for (TensorView* m : {&e.gate, &e.up, &e.down}) prepare(be, *m, WeightUse::kRows);
  }
}

}  // namespace loom
