// WeightLoader — fetches tensors from a ModelSpec with the shape the architecture expects, so
// that a file that does not match its config fails at load with the tensor's name.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/model_spec.h"

namespace loom {

// Rows [first, first + n) of a matrix [rows, cols] as a view of the same bytes (fused
// projections such as phi3's qkv and gate_up are split this way, without copies).
TensorView matrix_rows(const TensorView& t, int64_t first, int64_t n);
// Entries [first, first + n) of a vector (the bias that goes with matrix_rows).
TensorView vector_slice(const TensorView& t, int64_t first, int64_t n);
// The i-th matrix of a stack [n, rows, cols] (llama.cpp's 3-D expert tensors).
TensorView stack_item(const TensorView& t, int64_t i);

// Weights a model had to copy out of the file: a tensor-parallel shard's column slices (a
// slice along a row is not contiguous in the file). Owned by the model, alive as long as it.
class WeightArena {
 public:
  // Columns [first, first + n) of a matrix [rows, cols], copied; kUnsupported naming `what` when
  // the slice does not fall on the type's block boundaries.
  // The source's pages go back to the system (release_file_pages): a rank reads the rest of
  // the matrix no more.
  TensorView columns(const TensorView& t, int64_t first, int64_t n, const std::string& what);
  // Frees the copy at `old` once the backend has made its own (prepare_weight returned a view
  // of other memory, `now`); nothing when they are the same or `old` is not the arena's.
  void release_replaced(const void* old, const void* now);
  uint64_t bytes() const { return bytes_; }

 private:
  struct Block {
    std::unique_ptr<uint8_t[]> data;
    uint64_t size = 0;
  };
  std::vector<Block> blocks_;
  uint64_t bytes_ = 0;
};

class WeightLoader {
 public:
  explicit WeightLoader(const ModelSpec& spec) : spec_(spec) {}

  // The tensor `name`, which must exist with `shape` (outermost first) and a dtype the
  // backends can compute with.
  TensorView require(const std::string& name, const std::vector<int64_t>& shape) const;
  // Same, but absent is fine.
  std::optional<TensorView> optional(const std::string& name,
                                     const std::vector<int64_t>& shape) const;

 private:
  const ModelSpec& spec_;
};

}  // namespace loom
