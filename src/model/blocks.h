// Shared decoder building blocks. Every family is assembled from these, so that a fix to
// attention, a gated MLP or expert routing reaches all the models that use it:
//   - attention_block: Q/K/V projections (separate or rows of a fused qkv), optional biases,
//     optional per-head q/k RMSNorm, rotary embedding, attention over the KV cache, output
//     projection.
//   - gated_ffn: down(act(gate(h)) * up(h)), gate/up separate or rows of a fused gate_up.
//   - moe_ffn_accumulate: a router picks k experts per token (softmax, top-k, optional
//     renormalisation); each expert, itself a gated_ffn, runs only on the tokens routed to it.
// Weights are views into the ModelSpec's files; BlockBuffers are the activations a model
// reuses across layers and steps.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "model/weights.h"

namespace loom {

using Activation = GatedActivation;

// HF's activation names (hidden_act / hidden_activation / activation_function); empty gives
// `fallback`. Throws kUnsupported for one loom does not implement.
Activation parse_activation(const std::string& hf_name, Activation fallback,
                            const std::string& model_path);

// A hyper-parameter the model cannot do without: throws kCorruption naming it when not > 0.
int64_t need_hparam(const ModelSpec& spec, int64_t value, const char* what);

struct AttentionShape {
  int64_t hidden = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
};

// hidden_size, n_heads, n_kv_heads and head_dim from the hyper-parameters, which must be
// present, with the heads a multiple of the KV heads (grouped-query attention).
AttentionShape attention_shape(const ModelSpec& spec);

struct AttentionWeights {
  TensorView wq;                             // [n_heads*hd, hidden]
  TensorView wk;                             // [n_kv*hd, hidden]
  TensorView wv;                             // [n_kv*hd, hidden]
  TensorView wo;                             // [hidden, n_heads*hd]
  std::optional<TensorView> bq;              // [n_heads*hd]
  std::optional<TensorView> bk, bv;          // [n_kv*hd]
  std::optional<TensorView> bo;              // [hidden]
  std::optional<TensorView> q_norm, k_norm;  // [hd]
};

// Loads blk.N.attn_{q,k,v} or the fused blk.N.attn_qkv ([(n_heads + 2 n_kv) hd, hidden], rows
// q | k | v, as llama.cpp stores phi3's and gpt2's), their biases, attn_{q,k}_norm and
// attn_output (+ bias). `prefix` is "blk.N.".
AttentionWeights load_attention(const WeightLoader& w, const std::string& prefix,
                                const AttentionShape& s);

using GatedFfnWeights = GatedMlp;

// Loads blk.N.ffn_{gate,up,down}, or phi3's fused gate_up stored by llama.cpp as ffn_up with
// 2*ffn rows (gate first, as HF's Phi3MLP chunks it).
GatedFfnWeights load_gated_ffn(const WeightLoader& w, const std::string& prefix, int64_t hidden,
                               int64_t ffn);

struct MoeWeights {
  TensorView router;              // [n_experts, hidden]
  std::vector<GatedMlp> experts;  // n_experts
  int64_t n_used = 0;             // experts per token (top-k)
  bool renormalize = false;       // top-k weights divided by their sum
};

// Loads blk.N.ffn_gate_inp and the experts, either llama.cpp's stacked ffn_{gate,up,down}_exps
// ([n_experts, ffn, hidden] x2, [n_experts, hidden, ffn]) or per expert
// (blk.N.ffn_gate.E.weight, as io/ names HF's expert tensors).
MoeWeights load_moe(const WeightLoader& w, const std::string& prefix, int64_t hidden,
                    int64_t expert_ffn, int64_t n_experts, int64_t n_used, bool renormalize);

// Tensor parallelism (ShardSpec). The heads one rank computes, for any number of ranks:
//  - world <= KV heads: the KV heads split as evenly as possible (counts differ by at most one),
//    each with its group of query heads;
//  - world > KV heads: the ranks split among the KV heads as evenly as possible, each KV head
//    replicated on its ranks, which split its group of query heads between them.
// Every rank thus holds whole groups or part of one group, so its heads keep the uniform
// query-to-KV mapping the attention op assumes. kUnsupported naming the model when a rank would
// get no query head (more ranks than heads can go round).
struct HeadPart {
  int64_t q_first = 0, n_q = 0;    // query heads [q_first, q_first + n_q)
  int64_t kv_first = 0, n_kv = 0;  // KV heads [kv_first, kv_first + n_kv)
};
HeadPart head_part(const AttentionShape& whole, const ShardSpec& sh, const std::string& model_path);
// The attention shape of this rank's part (its heads and KV heads).
AttentionShape shard_shape(const AttentionShape& whole, const ShardSpec& sh,
                           const std::string& model_path);
// This rank's part of whole attention weights: the rows of q/k/v (and their biases) of its
// heads, and wo's columns for them (copied into `arena`); the output bias on rank 0 only, since
// the ranks' outputs are summed. q/k norms are per head and stay whole.
AttentionWeights shard_attention(const AttentionWeights& W, const AttentionShape& whole,
                                 const ShardSpec& sh, WeightArena& arena, const std::string& where);
// This rank's part of a gated MLP: a contiguous range of the features, split as evenly as the
// blocks of down's type allow (split_evenly), gate/up rows and down's columns for them.
// kUnsupported when a rank would get no feature.
GatedFfnWeights shard_gated_ffn(const GatedFfnWeights& W, int64_t ffn, const ShardSpec& sh,
                                WeightArena& arena, const std::string& where);
// The features [first, first + count) of an MLP of `ffn` this rank holds, split on the blocks of
// `down`'s type (any MLP: gated or, as gpt2's, not); kUnsupported naming `where` when it has none.
Part ffn_part(const TensorView& down, int64_t ffn, const ShardSpec& sh, const std::string& where);
// A vocabulary-parallel output head: this rank's rows of the output matrix (split_evenly over
// the vocabulary); Backend::all_gather joins the ranks' logits.
TensorView shard_output_head(const TensorView& output, const ShardSpec& sh);
// logits [rows, vocab] = h · output^T with `output` this rank's rows of the head (alone: the
// whole head); `part` holds this rank's slice before the gather.
void vocab_parallel_head(Backend& be, const Activations& h, const TensorView& output, int64_t vocab,
                         Activations& part, Activations& logits);

struct BlockBuffers {
  Activations q, k, v, a, g, u;  // attention and MLP intermediates
  std::vector<int32_t> rows;     // select_logit_rows
};

struct AttentionOptions {
  AttentionParams params;
  const RopeTable* rope = nullptr;  // null: no rotary embedding (gpt2)
  float qk_norm_eps = 1e-6f;
  float qk_norm_offset = 0.0f;  // gemma's RMSNorm scales by (1 + weight)
};

// out = Wo · attention(h) (+ bo) for the normalised input h, at the step's positions
// (begin_forward); out may be h.
void attention_block(Backend& be, const AttentionWeights& W, const AttentionOptions& o,
                     const Activations& h, KvCache& cache, int64_t layer, BlockBuffers& buf,
                     Activations& out);

// out = down(act(gate(h)) * up(h)); out may be h.
void gated_ffn(Backend& be, const GatedFfnWeights& W, Activation act, const Activations& h,
               BlockBuffers& buf, Activations& out);

// acc += the mixture of experts applied to h (as HF's MixtralSparseMoeBlock /
// Qwen3MoeSparseMoeBlock: softmax router, top-k, experts weighted by their routing weight).
void moe_ffn_accumulate(Backend& be, const MoeWeights& W, Activation act, const Activations& h,
                        Activations& acc);

// Weights through Backend::prepare_weight, each for its use: every weight a model keeps goes
// through one of these once, after slicing and sharding, before any forward.
using WeightUse = Backend::WeightUse;
void prepare(Backend& be, TensorView& w, WeightUse use);
void prepare(Backend& be, std::optional<TensorView>& w, WeightUse use);
// How a token embedding is used: kLookup, unless the output head reads the same bytes (a tied
// embedding, or a rank's slice of it), which then also serve as a matrix (kRows).
WeightUse embedding_use(const TensorView& embd, const TensorView& output);
void prepare(Backend& be, AttentionWeights& w);  // q/k/v/o matrices, biases and norms
void prepare(Backend& be, GatedMlp& w);
void prepare(Backend& be, MoeWeights& w);  // router and experts as rows (moe_ffn reads them)
// The same for a rank's shard, whose column slices `arena` holds: each copy the backend
// replaces with its own is freed.
void prepare(Backend& be, AttentionWeights& w, WeightArena& arena);
void prepare(Backend& be, GatedMlp& w, WeightArena& arena);
// Vectors (norms, biases, position tables read row by row...).
template <typename... T>
void prepare_vectors(Backend& be, T&... w) {
  (prepare(be, w, WeightUse::kVector), ...);
}

// Checks the batch's shape (positions, rope positions, precomputed embeddings) and hands the
// step's shared inputs to the backend (Backend::begin_step): every forward starts with it.
void begin_forward(Backend& be, const Batch& batch, const ModelInfo& info);
// x's rows that the batch gives precomputed embeddings for take them (after the model's own
// embedding scaling: image features enter as they are).
void inject_embeddings(Backend& be, const Batch& batch, Activations& x);

// out = the rows of x whose logits the batch wants, in output order: only those go through
// the final norm and the output head.
void select_logit_rows(Backend& be, const Activations& x, const Batch& batch, BlockBuffers& buf,
                       Activations& out);

}  // namespace loom
