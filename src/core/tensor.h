// TensorView — a non-owning view of a tensor's bytes. Shapes are listed outermost first, as in
// PyTorch and safetensors (GGUF lists them innermost first; io/ reverses them on read), so
// shape.back() is the contiguous dimension along which quantization blocks run.
// The bytes belong to whoever made the view (usually a MappedFile held by ModelSpec).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace loom {

struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  const void* data = nullptr;
  uint64_t n_bytes = 0;
  // How the bytes are laid out: 0, rows as the file stores them; other values are a backend's
  // own layouts, set only by Backend::prepare_weight and read only by that backend.
  uint8_t layout = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace loom
