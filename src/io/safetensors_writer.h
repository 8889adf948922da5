// Writes a safetensors file (the layout safetensors.h reads): used by `loom logits` and by
// `loom synth`. Tensors are laid out in the order given; data is borrowed until write returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace loom {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  uint64_t n_bytes;
};

// Throws kInvalidArgument when a size does not match its shape, kIoError when writing fails.
void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace loom
