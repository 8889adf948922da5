// Backend — the one narrow interface between model code and compute. Model code calls these
// ops on tensors that live on the backend; it never contains SIMD, threads or CUDA, and never
// touches a tensor's bytes: Activations and KvCache are handles whose memory the backend owns
// (backend/buffer_access.h opens them to backend implementations only). The CPU backend is the
// first implementation; a CUDA backend implements the same interface.
//
// Conventions: activations are float32, row-major, contiguous; a "matrix" weight is
// [out_features, in_features] in any dtype the backend supports (rows are quantization-block
// aligned), as stored in GGUF and safetensors. Ops size their outputs themselves and reuse the
// memory a tensor already has (no allocation on the hot path once shapes have been seen).
// Thread-safety: a backend runs one op at a time (the engine's step loop); ops parallelise
// internally.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "backend/communicator.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace loom {

class Backend;

// Memory a backend allocated for one tensor. Its bytes are read and written only by the backend
// that made it (host RAM for the CPU backend, device memory for a GPU); model, engine and CLI code
// see a tensor's shape, never its bytes, and move data in and out with Backend::upload and
// Backend::download.
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  // Which kind of memory it is ("cpu", "cuda"): a backend accepts as input only a tensor whose
  // buffer it can read. The pointer identifies the kind (one static string per backend kind).
  const char* kind() const { return kind_; }
  virtual uint64_t capacity_bytes() const = 0;

 protected:
  explicit DeviceBuffer(const char* kind) : kind_(kind) {}

 private:
  const char* kind_;
};

// A float32 tensor [rows, cols], row-major and contiguous, in memory a backend owns. An empty
// handle is made on the host side (a model's member, a reused buffer); the backend that first
// writes it allocates its memory, growing it as batch shapes grow and never shrinking it.
// Handles move, they are not copied.
class Activations {
 public:
  Activations() = default;
  Activations(Activations&&) noexcept = default;
  Activations& operator=(Activations&&) noexcept = default;
  Activations(const Activations&) = delete;
  Activations& operator=(const Activations&) = delete;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t numel() const { return rows_ * cols_; }
  DType dtype() const { return DType::kF32; }
  // The backend kind holding the data, or "" before anything was written.
  const char* location() const { return buffer_ ? buffer_->kind() : ""; }

 private:
  friend class BufferAccess;  // backend implementations only (backend/buffer_access.h)
  int64_t rows_ = 0, cols_ = 0;
  std::unique_ptr<DeviceBuffer> buffer_;
};

enum class RopeStyle {
  kNeox,        // rotate (i, i + d/2): HF's rotate_half; qwen, gemma, phi3, HF llama weights
  kInterleaved  // rotate (2i, 2i + 1): llama.cpp's "normal" rope on its permuted llama Q/K
};

// Precomputed rotary frequencies (scaling already applied).
struct RopeTable {
  RopeStyle style = RopeStyle::kNeox;
  int64_t dims = 0;             // rotated dimensions per head (<= head_dim)
  std::vector<float> inv_freq;  // dims / 2
  float position_scale = 1.0f;  // linear scaling divides positions
  // M-RoPE (Qwen2-VL): how many rotary pairs each position axis (time, height, width) drives,
  // in order; sums to dims / 2. Empty: every pair takes axis 0 (plain RoPE).
  std::vector<int64_t> sections;
};

// Paged KV cache for one model, made by a backend (Backend::make_kv_cache) in its own memory:
// per layer, n_blocks blocks of block_size tokens, each token holding n_kv_heads x head_dim keys
// and values as `dtype` (F32, F16, BF16, or Q8_0 when head_dim is a multiple of 32), read in that
// type directly by the backend's attention. Only the backend that made it reads its bytes; the
// engine hands out block ids (SeqSlice::block_table).
class KvCache {
 public:
  virtual ~KvCache() = default;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // kInvalidArgument naming the type when the cache cannot hold it for these heads.
  static void check_type(DType dtype, int64_t head_dim);
  // Bytes one token takes in every layer, K and V together.
  static uint64_t bytes_per_token(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim,
                                  DType dtype);

  DType dtype() const { return dtype_; }
  int64_t n_layers() const { return n_layers_; }
  int64_t block_size() const { return block_size_; }
  int64_t n_blocks() const { return n_blocks_; }
  int64_t n_kv_heads() const { return n_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  // Bytes the whole pool takes (reserved; a backend may commit them as slots are written).
  uint64_t bytes() const {
    return bytes_per_token(n_layers_, n_kv_heads_, head_dim_, dtype_) *
           static_cast<uint64_t>(n_blocks_ * block_size_);
  }
  // The backend kind that made it (as DeviceBuffer::kind).
  virtual const char* kind() const = 0;

 protected:
  KvCache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
          int64_t n_blocks, DType dtype);

 private:
  int64_t n_layers_ = 0, n_kv_heads_ = 0, head_dim_ = 0, block_size_ = 0, n_blocks_ = 0;
  DType dtype_ = DType::kF32;
};

// One sequence's part of a batch: `n_tokens` consecutive rows of the batch's activations,
// at positions start_pos .. start_pos + n_tokens - 1, whose KV slots are found through
// `block_table` (block ids in the KvCache).
struct SeqSlice {
  int64_t first_row = 0;
  int64_t n_tokens = 0;
  int64_t start_pos = 0;
  std::span<const int32_t> block_table;
};

// One expert of a mixture-of-experts layer (and any gated MLP): down(act(gate x) * up x).
struct GatedMlp {
  TensorView gate;  // [ffn, hidden]
  TensorView up;    // [ffn, hidden]
  TensorView down;  // [hidden, ffn]
};
enum class GatedActivation { kSilu, kGeluTanh };  // SwiGLU, GeGLU (gelu_pytorch_tanh)

struct MoeParams {
  int64_t n_used = 0;        // experts per token (top-k)
  bool renormalize = false;  // top-k weights divided by their sum
  GatedActivation act = GatedActivation::kSilu;
};

// What the ops of one forward pass share, given once per step (Backend::begin_step) so that a
// GPU backend uploads it once: every row's rotary positions (`rope_axes` values per row,
// axis-major: rope_positions[a * rows + r]; one axis for plain RoPE, three for M-RoPE) and the
// batch's sequences with their KV block tables.
struct StepInputs {
  std::span<const int32_t> rope_positions;
  int64_t rope_axes = 1;
  std::span<const SeqSlice> seqs;
};

struct AttentionParams {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;
  float softcap = 0.0f;        // gemma2: tanh soft-capping of scores (0 = off)
  int64_t sliding_window = 0;  // attend to the last `sliding_window` positions (0 = all)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // The kind of memory this backend's tensors live in ("cpu", "cuda:0").
  virtual std::string name() const = 0;
  // Whether a matmul computes each row with the same kernel whatever the batch size, so that a
  // row's result is bit-identical alone or among others (see make_backend). Engine tests that
  // compare batch sizes bit for bit run only where this holds; elsewhere they hold to a bound.
  virtual bool batch_invariant() const = 0;
  // Matmuls of up to `rows` activation rows compute each row with the kernels a single row
  // takes (0: the backend's default). Speculative decoding checks a few positions in one pass
  // and needs each row exactly as plain one-token decoding computes it. A backend that is
  // batch-invariant already, or has one kernel for every batch size, ignores it.
  virtual void set_single_row_kernels_up_to(int64_t /*rows*/) {}

  // --- Memory ------------------------------------------------------------------------------
  // Sizes t as [rows, cols] in this backend's memory. The contents are unspecified, except that
  // memory t already has here is reused (and keeps its bytes) while it is large enough.
  virtual void alloc(Activations& t, int64_t rows, int64_t cols) = 0;
  // t = host, [rows, cols] row-major (host.size() == rows * cols).
  virtual void upload(std::span<const float> host, int64_t rows, int64_t cols, Activations& t) = 0;
  // host = rows [first_row, first_row + n_rows) of t (host.size() == n_rows * t.cols()). Only
  // the rows the caller needs cross (e.g. the logits of the sampled rows).
  virtual void download(const Activations& t, int64_t first_row, int64_t n_rows,
                        std::span<float> host) = 0;
  // Waits until every op issued so far has finished (a no-op where ops run synchronously).
  virtual void synchronize() {}
  // A paged KV cache in this backend's memory (see KvCache); throws kInvalidArgument for a
  // dtype it cannot hold.
  virtual std::unique_ptr<KvCache> make_kv_cache(int64_t n_layers, int64_t n_kv_heads,
                                                 int64_t head_dim, int64_t block_size,
                                                 int64_t n_blocks, DType dtype) = 0;
  // --- Weights -----------------------------------------------------------------------------
  // The view of a loaded weight the ops are to be given, for its use: the backend keeps what
  // it needs (the CPU: the file's mapped bytes as they are, or a repacked copy of a matrix its
  // kernels read faster; a GPU: an upload) for its own lifetime, so the backend must outlive
  // the model. Every weight a model keeps goes through here once, after any slicing (fused q/k/v
  // rows, tensor-parallel shards), and only the returned view goes to ops. weight_bytes() is
  // what the prepared weights take in this backend's memory (mapped bytes counted once
  // however many views share them), for the server's memory policy.
  enum class WeightUse {
    kMatrix,  // the w of matmul / matmul_many
    kRows,    // rows looked up or read whole: embed, moe_ffn's experts and router
    kLookup,  // only looked up, a few rows per token (an untied token embedding): nothing needs
              // it resident, so a host backend leaves it in the file's page cache
    kVector,  // norms, biases, small per-feature vectors
  };
  virtual TensorView prepare_weight(const TensorView& w, WeightUse use);
  uint64_t weight_bytes() const { return weight_bytes_; }

  // Conveniences over upload/download.
  std::vector<float> download_all(const Activations& t) {
    std::vector<float> host(static_cast<size_t>(t.numel()));
    download(t, 0, t.rows(), host);
    return host;
  }
  Activations make_tensor(std::span<const float> host, int64_t rows, int64_t cols) {
    Activations t;
    upload(host, rows, cols, t);
    return t;
  }

  // --- Collectives (tensor parallelism) -------------------------------------------------------
  // This backend's place in its tensor-parallel group (BackendOptions::comm): rank 0 of 1 when
  // it runs alone, where the collectives are no-ops.
  virtual int rank() const { return 0; }
  virtual int world() const { return 1; }
  // x = the sum of every rank's x (same shape on every rank; the same bits on every rank).
  virtual void all_reduce(Activations& x) = 0;
  // out [rows, total_cols] = every rank's x side by side in rank order, rank r's x being
  // [rows, split_evenly(total_cols, world, r).count] (e.g. the vocabulary slices of a split
  // output head).
  virtual void all_gather(const Activations& x, int64_t total_cols, Activations& out) = 0;

  // --- Ops ---------------------------------------------------------------------------------
  // Outputs are sized by the op (alloc). Aliasing: an output may be the same tensor as an input
  // only where an op says so: rope, gelu_tanh, gelu_erf, quick_gelu, scale and softcap work in
  // place; add and add_rows_scaled accumulate into their first argument; rms_norm and
  // layer_norm may write y = x; swiglu and geglu may write out = gate. Every other output must
  // be distinct from the inputs (a backend may start writing it before it has read them).

  // out[i] = table[ids[i]] (table [vocab, hidden] in any supported dtype).
  virtual void embed(const TensorView& table, std::span<const int32_t> ids, Activations& out) = 0;
  // y = x @ w^T (+ bias): x [n, k], w [m, k], y [n, m]. bias may be null.
  virtual void matmul(const Activations& x, const TensorView& w, const TensorView* bias,
                      Activations& y) = 0;
  // Several products of the same x (q/k/v, gate/up): each as matmul(x, *w, bias, *y). A
  // backend may run them as one pass (one activation quantization, one parallel dispatch).
  struct MatmulTarget {
    const TensorView* w;
    const TensorView* bias;
    Activations* y;
  };
  virtual void matmul_many(const Activations& x, std::span<const MatmulTarget> targets) {
    for (const MatmulTarget& t : targets) matmul(x, *t.w, t.bias, *t.y);
  }
  // Row-wise RMSNorm over groups of `group` columns (group = cols for a whole row, head_dim
  // for per-head q/k norms): y = x / sqrt(mean(x^2) + eps) * (weight + weight_offset).
  virtual void rms_norm(const Activations& x, const TensorView& weight, float eps,
                        float weight_offset, int64_t group, Activations& y) = 0;
  virtual void layer_norm(const Activations& x, const TensorView& weight, const TensorView* bias,
                          float eps, Activations& y) = 0;
  // Starts a forward pass: the step's shared inputs (copied; the block tables they point to
  // must outlive the step). rope and attention read them until the next begin_step.
  virtual void begin_step(const StepInputs& step) = 0;
  // Rotates heads of x ([n, n_heads * head_dim], the step's rows) in place at the step's rope
  // positions: rotary pair i turns by position(axis of i) / position_scale * inv_freq[i].
  virtual void rope(Activations& x, int64_t n_heads, int64_t head_dim, const RopeTable& table) = 0;
  // Writes the rows' K and V into their cache slots, then for each query row attends over its
  // sequence's positions [0, pos] (causal), the sequences being the step's. q [n, n_heads *
  // head_dim] -> out, same shape.
  virtual void attention(const Activations& q, const Activations& k, const Activations& v,
                         KvCache& cache, int64_t layer, const AttentionParams& p,
                         Activations& out) = 0;
  // out = silu(gate) * up (SwiGLU).
  virtual void swiglu(const Activations& gate, const Activations& up, Activations& out) = 0;
  // out = gelu_tanh(gate) * up (GeGLU, gemma's gelu_pytorch_tanh).
  virtual void geglu(const Activations& gate, const Activations& up, Activations& out) = 0;
  // x = gelu_tanh(x) in place: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh
  // approximation HF calls gelu_new / gelu_pytorch_tanh.
  virtual void gelu_tanh(Activations& x) = 0;
  virtual void add(Activations& acc, const Activations& x) = 0;  // acc += x
  virtual void scale(Activations& x, float s) = 0;               // x *= s
  // x = cap * tanh(x / cap) (gemma2's final-logit soft-capping).
  virtual void softcap(Activations& x, float cap) = 0;

  // Encoder ops (cpu_encoder_ops.cpp). Bidirectional attention with no KV cache: q's rows
  // are n_seqs equal groups, k's and v's rows too (q may have fewer rows per sequence than k,
  // e.g. siglip's one-probe pooling head); each query row attends to every key row of its own
  // group whose key_mask entry (one per k row) is nonzero; an empty key_mask keeps all keys.
  virtual void encoder_attention(const Activations& q, const Activations& k, const Activations& v,
                                 int64_t n_seqs, std::span<const int32_t> key_mask,
                                 const AttentionParams& p, Activations& out) = 0;
  // Vision patch extraction (im2col): images [n_images, channels * size * size], each image's
  // pixels channel-major (C, H, W) -> out [n_images * (size / patch)^2, channels * patch^2],
  // one row per patch in raster order, the values of a row ordered (channel, y, x) as a conv
  // weight [hidden, C, P, P] flattened, so that a matmul with it is the patch embedding.
  virtual void image_patches(const Activations& images, int64_t channels, int64_t size,
                             int64_t patch, Activations& out) = 0;
  // x = gelu(x) in place with the exact erf form, 0.5 x (1 + erf(x / sqrt 2)) (HF "gelu").
  virtual void gelu_erf(Activations& x) = 0;
  // x = x * sigmoid(1.702 x) in place (HF "quick_gelu", CLIP).
  virtual void quick_gelu(Activations& x) = 0;

  // A mixture-of-experts MLP added into acc (HF's MixtralSparseMoeBlock /
  // Qwen3MoeSparseMoeBlock): router logits = h @ router^T; per row, route_topk's choice of
  // p.n_used experts; acc[row] += weight * expert(h[row]) for each chosen expert, added in
  // expert order. A grouped matmul: each expert runs once, over exactly the rows routed to it,
  // and the routing never leaves the backend. experts[e] is expert e.
  virtual void moe_ffn(const Activations& h, const TensorView& router,
                       std::span<const GatedMlp> experts, const MoeParams& p, Activations& acc) = 0;

  // Mixture-of-experts helpers (and row plumbing).
  // dst[rows[i]] = src[i] (rows distinct): precomputed embeddings (image features) replacing
  // the token embeddings of their rows.
  virtual void scatter_rows(const Activations& src, std::span<const int32_t> rows,
                            Activations& dst) = 0;
  // out[i] = x[rows[i]].
  virtual void gather_rows(const Activations& x, std::span<const int32_t> rows,
                           Activations& out) = 0;
  // acc[rows[i]] += weights[i] * x[i] (rows may repeat; applied in order).
  virtual void add_rows_scaled(Activations& acc, const Activations& x,
                               std::span<const int32_t> rows, std::span<const float> weights) = 0;
  // Per row of router logits [n, n_experts]: softmax, the k largest probabilities (ties to the
  // lower expert id, as torch.topk), optionally renormalised to sum to 1. experts/weights get
  // n * k entries, row-major, in descending weight order.
  virtual void route_topk(const Activations& logits, int64_t k, bool renormalize,
                          std::span<int32_t> experts, std::span<float> weights) = 0;

 protected:
  // Adds `bytes` held at `data` to weight_bytes(), once per address (views that share mapped
  // bytes, such as a tied embedding prepared as rows and as a matrix, count once).
  void account_weight(const void* data, uint64_t bytes);

 private:
  uint64_t weight_bytes_ = 0;
  std::unordered_set<const void*> accounted_;
};

// The CPU backend with `n_threads` threads (the caller's included).
// With `batch_invariant`, a matmul computes every row with the same kernel whatever the batch
// size, so a row's result is bit-identical alone or among others (the server promises that
// batching does not change a request's tokens). Without it, batches of fewer than 4 rows take the
// faster decode kernels, whose float summation order differs from the prefill kernels' in the
// last bits.
// `comm`: its tensor-parallel group (null: alone).
std::unique_ptr<Backend> make_cpu_backend(int n_threads, bool batch_invariant = false,
                                          std::shared_ptr<Communicator> comm = nullptr);

// The backends loom knows, by the `--device` names users give: "cpu", "cuda" or "cuda:N".
struct BackendOptions {
  BackendOptions(std::string device_name = "cpu", int threads = 0, bool invariant = false,
                 std::shared_ptr<Communicator> group = nullptr)
      : device(std::move(device_name)),
        n_threads(threads),
        batch_invariant(invariant),
        comm(std::move(group)) {}
  std::string device;
  int n_threads;                       // CPU threads (0: one per core)
  bool batch_invariant;                // see make_cpu_backend
  std::shared_ptr<Communicator> comm;  // its tensor-parallel group (null: alone)
};
// Throws kInvalidArgument for a name it does not know and kUnsupported for a backend this
// build does not have ("loom was built without CUDA").
std::unique_ptr<Backend> make_backend(const BackendOptions& options);
// The device names this build runs on, for help texts ("cpu" and, with CUDA, "cuda[:N]").
std::vector<std::string> available_devices();
// What this build and this CPU run, for `loom --version`: the CPU kernel tier in use (avx512,
// avx2 or scalar; LOOM_KERNELS caps it) and whether CUDA was built in.
std::string backend_build_info();

}  // namespace loom
