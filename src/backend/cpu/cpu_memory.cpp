// The CPU backend's memory: tensors in host RAM (host_tensor.h), so upload and download are
// copies, and the paged KV cache (host_kv_cache.h).
#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/host_kv_cache.h"
#include "backend/cpu/host_tensor.h"
#include "core/error.h"

namespace loom::cpu {

void CpuBackend::alloc(Activations& t, int64_t rows, int64_t cols) {
  LOOM_ASSERT(rows >= 0 && cols >= 0);
  host_alloc(t, rows, cols);
}

void CpuBackend::upload(std::span<const float> src, int64_t rows, int64_t cols, Activations& t) {
  if (rows < 0 || cols < 0 || static_cast<int64_t>(src.size()) != rows * cols) {
    fail(ErrorCode::kInvalidArgument, "upload of {} values as a [{}, {}] tensor", src.size(), rows,
         cols);
  }
  std::copy(src.begin(), src.end(), host_alloc(t, rows, cols).data());
}

void CpuBackend::download(const Activations& t, int64_t first_row, int64_t n_rows,
                          std::span<float> dst) {
  if (first_row < 0 || n_rows < 0 || first_row + n_rows > t.rows() ||
      static_cast<int64_t>(dst.size()) != n_rows * t.cols()) {
    fail(ErrorCode::kInvalidArgument,
         "download of rows [{}, {}) of a [{}, {}] tensor into {} values", first_row,
         first_row + n_rows, t.rows(), t.cols(), dst.size());
  }
  if (n_rows == 0) return;
  const float* src = host(t).row(first_row);
  std::copy(src, src + n_rows * t.cols(), dst.begin());
}

void CpuBackend::all_reduce(Activations& x) {
  if (world() == 1) return;
  comm_->all_reduce_sum({host(x).data(), static_cast<size_t>(x.numel())});
}

void CpuBackend::all_gather(const Activations& x, int64_t total_cols, Activations& out) {
  const int w = world();
  const int64_t rows = x.rows();
  if (x.cols() != split_evenly(total_cols, w, rank()).count) {
    fail(ErrorCode::kInvalidArgument, "all_gather: rank {} of {} has {} of {} columns", rank(), w,
         x.cols(), total_cols);
  }
  const auto o = host_alloc(out, rows, total_cols);
  if (w == 1) {
    std::copy_n(host(x).data(), x.numel(), o.data());
    return;
  }
  // Every rank sends [rows, widest part] (its own part padded), rank-major from the group; then
  // each row's parts side by side.
  int64_t widest = 0;
  for (int r = 0; r < w; ++r) widest = std::max(widest, split_evenly(total_cols, w, r).count);
  const size_t per_rank = static_cast<size_t>(rows * widest);
  sent_.assign(per_rank, 0.0f);
  for (int64_t i = 0; i < rows; ++i) {
    std::copy_n(host(x).row(i), x.cols(), sent_.data() + i * widest);
  }
  gathered_.resize(per_rank * static_cast<size_t>(w));
  comm_->all_gather(sent_, gathered_);
  for (int r = 0; r < w; ++r) {
    const Part p = split_evenly(total_cols, w, r);
    for (int64_t i = 0; i < rows; ++i) {
      std::copy_n(gathered_.data() + r * per_rank + i * widest, p.count, o.row(i) + p.first);
    }
  }
}

std::unique_ptr<KvCache> CpuBackend::make_kv_cache(int64_t n_layers, int64_t n_kv_heads,
                                                   int64_t head_dim, int64_t block_size,
                                                   int64_t n_blocks, DType dtype) {
  return std::make_unique<HostKvCache>(n_layers, n_kv_heads, head_dim, block_size, n_blocks, dtype);
}

}  // namespace loom::cpu
