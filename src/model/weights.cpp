#include "model/weights.h"

#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "quant/quant.h"

namespace loom {

TensorView matrix_rows(const TensorView& t, int64_t first, int64_t n) {
  LOOM_ASSERT(t.shape.size() == 2 && first >= 0 && n >= 0 && first + n <= t.shape[0]);
  const uint64_t rb = *row_bytes(t.dtype, t.shape[1]);
  return TensorView{
      t.dtype, {n, t.shape[1]}, static_cast<const uint8_t*>(t.data) + first * rb, n * rb};
}

TensorView vector_slice(const TensorView& t, int64_t first, int64_t n) {
  LOOM_ASSERT(t.shape.size() == 1 && first >= 0 && n >= 0 && first + n <= t.shape[0] &&
              dtype_info(t.dtype).block_size == 1);  // biases are f32/f16/bf16
  const uint64_t eb = dtype_info(t.dtype).block_bytes;
  return TensorView{t.dtype, {n}, static_cast<const uint8_t*>(t.data) + first * eb, n * eb};
}

TensorView stack_item(const TensorView& t, int64_t i) {
  LOOM_ASSERT(t.shape.size() == 3 && i >= 0 && i < t.shape[0]);
  const uint64_t bytes = *row_bytes(t.dtype, t.shape[2]) * t.shape[1];
  return TensorView{
      t.dtype, {t.shape[1], t.shape[2]}, static_cast<const uint8_t*>(t.data) + i * bytes, bytes};
}

TensorView WeightArena::columns(const TensorView& t, int64_t first, int64_t n,
                                const std::string& what) {
  LOOM_ASSERT(t.shape.size() == 2 && first >= 0 && n > 0 && first + n <= t.shape[1]);
  const int64_t block = dtype_info(t.dtype).block_size;
  if (first % block != 0 || n % block != 0) {
    fail(ErrorCode::kUnsupported,
         "{}: columns [{}, {}) of a {} matrix do not fall on its blocks of {} values; this split "
         "needs another type or number of ranks",
         what, first, first + n, dtype_name(t.dtype), block);
  }
  const int64_t rows = t.shape[0];
  const uint64_t src_row = *row_bytes(t.dtype, t.shape[1]), offset = *row_bytes(t.dtype, first);
  const uint64_t dst_row = *row_bytes(t.dtype, n);
  auto buf = std::make_unique<uint8_t[]>(dst_row * rows);
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(buf.get() + r * dst_row, src + r * src_row + offset, dst_row);
  }
  const TensorView out{t.dtype, {rows, n}, buf.get(), dst_row * rows};
  bytes_ += dst_row * rows;
  blocks_.push_back({std::move(buf), dst_row * rows});
  release_file_pages(t.data, t.n_bytes);
  return out;
}

void WeightArena::release_replaced(const void* old, const void* now) {
  if (old == now) return;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i].data.get() != old) continue;
    bytes_ -= blocks_[i].size;
    blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
    return;
  }
}

TensorView WeightLoader::require(const std::string& name, const std::vector<int64_t>& shape) const {
  if (spec_.find(name) == nullptr) {
    fail(ErrorCode::kCorruption, "{}: tensor '{}' is missing (needed by architecture {})",
         spec_.path, name, spec_.architecture);
  }
  return *optional(name, shape);
}

std::optional<TensorView> WeightLoader::optional(const std::string& name,
                                                 const std::vector<int64_t>& shape) const {
  const TensorInfo* t = spec_.find(name);
  if (t == nullptr) return std::nullopt;
  if (t->shape != shape) {
    fail(ErrorCode::kCorruption, "{}: tensor '{}' has shape {}, expected {} from the config",
         spec_.path, name, shape_to_string(t->shape), shape_to_string(shape));
  }
  if (!can_dequantize(t->dtype)) {
    fail(ErrorCode::kUnsupported, "{}: tensor '{}' has type {}, which loom cannot compute with",
         spec_.path, name, dtype_name(t->dtype));
  }
  return t->view();
}

}  // namespace loom
