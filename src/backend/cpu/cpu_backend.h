// CpuBackend — the CPU implementation of Backend. Ops are split by kind across files
// (cpu_matmul.cpp: embed + matmul; cpu_norm.cpp: norms + rope; cpu_attention.cpp;
// cpu_elementwise.cpp), so kernels and new ops can be worked on independently.
// Quantized and half-precision weights are used in place; see cpu_matmul.cpp.
#pragma once

#include <cstdlib>
#include <map>
#include <string_view>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/host_tensor.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"

namespace loom::cpu {

// 16 independent partial sums let the compiler vectorise without -ffast-math.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int n_threads, bool batch_invariant, std::shared_ptr<Communicator> comm = nullptr)
      : comm_(std::move(comm)),
        pool_(n_threads),
        scratch_(pool_.size()),
        batch_invariant_(batch_invariant),
        runs_(pool_.size()) {
    const char* pack = std::getenv("LOOM_PACK");
    pack_enabled_ = pack == nullptr || std::string_view(pack) != "0";
  }

  std::string name() const override { return "cpu"; }
  bool batch_invariant() const override { return batch_invariant_; }
  void set_single_row_kernels_up_to(int64_t rows) override;

  int rank() const override { return comm_ ? comm_->rank() : 0; }
  int world() const override { return comm_ ? comm_->world() : 1; }
  void all_reduce(Activations& x) override;
  void all_gather(const Activations& x, int64_t total_cols, Activations& out) override;

  void alloc(Activations& t, int64_t rows, int64_t cols) override;
  void upload(std::span<const float> host, int64_t rows, int64_t cols, Activations& t) override;
  void download(const Activations& t, int64_t first_row, int64_t n_rows,
                std::span<float> host) override;
  std::unique_ptr<KvCache> make_kv_cache(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim,
                                         int64_t block_size, int64_t n_blocks,
                                         DType dtype) override;

  void embed(const TensorView& table, std::span<const int32_t> ids, Activations& out) override;
  // Q4_0/Q4_K matrices the packed kernels take are repacked here, 16 rows interleaved
  // (layout kPackedRows16); everything else is read in place.
  TensorView prepare_weight(const TensorView& w, WeightUse use) override;
  static constexpr uint8_t kPackedRows16 = 1;
  void matmul(const Activations& x, const TensorView& w, const TensorView* bias,
              Activations& y) override;
  void matmul_many(const Activations& x, std::span<const MatmulTarget> targets) override;
  void rms_norm(const Activations& x, const TensorView& weight, float eps, float weight_offset,
                int64_t group, Activations& y) override;
  void layer_norm(const Activations& x, const TensorView& weight, const TensorView* bias, float eps,
                  Activations& y) override;
  void begin_step(const StepInputs& step) override;
  void rope(Activations& x, int64_t n_heads, int64_t head_dim, const RopeTable& table) override;
  void attention(const Activations& q, const Activations& k, const Activations& v, KvCache& cache,
                 int64_t layer, const AttentionParams& p, Activations& out) override;
  void swiglu(const Activations& gate, const Activations& up, Activations& out) override;
  void geglu(const Activations& gate, const Activations& up, Activations& out) override;
  void gelu_tanh(Activations& x) override;
  void add(Activations& acc, const Activations& x) override;
  void scale(Activations& x, float s) override;
  void softcap(Activations& x, float cap) override;
  void scatter_rows(const Activations& src, std::span<const int32_t> rows,
                    Activations& dst) override;
  void gather_rows(const Activations& x, std::span<const int32_t> rows, Activations& out) override;
  void add_rows_scaled(Activations& acc, const Activations& x, std::span<const int32_t> rows,
                       std::span<const float> weights) override;
  void route_topk(const Activations& logits, int64_t k, bool renormalize,
                  std::span<int32_t> experts, std::span<float> weights) override;
  void moe_ffn(const Activations& h, const TensorView& router, std::span<const GatedMlp> experts,
               const MoeParams& p, Activations& acc) override;

  void encoder_attention(const Activations& q, const Activations& k, const Activations& v,
                         int64_t n_seqs, std::span<const int32_t> key_mask,
                         const AttentionParams& p, Activations& out) override;
  void image_patches(const Activations& images, int64_t channels, int64_t size, int64_t patch,
                     Activations& out) override;
  void gelu_erf(Activations& x) override;
  void quick_gelu(Activations& x) override;

  ThreadPool& pool() { return pool_; }

 private:
  // Per-thread scratch of at least n floats.
  std::vector<float>& scratch(int thread, int64_t n) {
    std::vector<float>& s = scratch_[thread];
    if (static_cast<int64_t>(s.size()) < n) s.resize(n);
    return s;
  }
  // A small vector weight (norm, bias) as float32; `slot` picks one of a few reusable buffers
  // so that two such vectors can be live in one op.
  const float* row_as_f32(const TensorView& t, int slot);

  std::shared_ptr<Communicator> comm_;
  // begin_step's inputs.
  std::vector<int32_t> step_positions_;
  int64_t step_axes_ = 1;
  std::vector<SeqSlice> step_seqs_;
  ThreadPool pool_;
  std::vector<std::vector<float>> scratch_;
  bool batch_invariant_ = false;  // see make_cpu_backend
  int64_t single_row_rows_ = 0;   // set_single_row_kernels_up_to (capped at kMaxSingleRowRows)
  std::vector<std::pair<const SeqSlice*, int64_t>> row_seq_;  // attention: row -> (seq, pos)
  std::vector<std::vector<kernels::KvRun>> runs_;             // attention: per thread
  std::vector<float> small_[3];
  std::vector<int32_t> expert_order_;  // route_topk: expert ids being ranked
  std::vector<int32_t> pair_axis_;     // rope: the position axis of each rotary pair
  struct MoeScratch {
    Activations router, xs, g, u, ys;  // router logits; one expert's rows in, gate/up, out
    std::vector<int32_t> experts, rows;
    std::vector<float> weights, row_weights;
  } moe_;
  // Weight matrices repacked by prepare_weight for the packed int8 kernels (kernels::packable),
  // kept for the backend's lifetime, one after another in huge pages. LOOM_PACK=0 turns
  // packing off.
  HugeArena packed_;
  std::vector<float> sent_, gathered_;  // all_gather: this rank's rows padded, the group's
  std::vector<float> xt_;               // matmul: transposed activation rows
  std::vector<uint64_t> panel_bytes_;   // matmul: (offset, length) of each column panel
  std::vector<uint8_t> qact_;           // matmul: quantized activation rows
  std::vector<kernels::QAct> qviews_;   // matmul: views into qact_
  // One matmul's operands, for the strategy that runs it (cpu_matmul.cpp picks one).
  struct MatmulJob {
    HostRows<const float> x;
    HostRows<float> y;
    int64_t n, k, m;  // x [n, k], w [m, k], y [n, m]
    const TensorView* w;
    const uint8_t* wbase;
    uint64_t wrow_bytes;
    const float* bias;  // float32, or null
    kernels::Kernels kern;
  };
  void matmul_decode_int8(const MatmulJob& job);
  void matmul_decode_float(const MatmulJob& job);
  void matmul_prefill_int8(const MatmulJob& job);
  void matmul_prefill_act_major(const MatmulJob& job);
  void matmul_prefill_weight_major(const MatmulJob& job);
  // The batch-invariant backend's few-row product for F32/F16/BF16: weight_major's bits at the
  // speed of a dot product (kernels::gemv_panel32).
  void matmul_decode_panel(const MatmulJob& job);
  // Its int8 counterpart for Q4_0/Q8_0/Q4_K/Q6_K: matmul_prefill_int8's bits
  // (kernels::gemv_q8).
  void matmul_decode_int8_panel(const MatmulJob& job);
  void matmul_rowwise(const MatmulJob& job);
  // Runs packed matrices (all of one dtype, k = x.cols()) over x in one dispatch.
  void packed_matmuls(const Activations& x, std::span<const MatmulTarget> targets,
                      std::span<const uint8_t* const> packed);
  bool pack_enabled_ = true;
};

}  // namespace loom::cpu
