// WeightLoader — fetches tensors from a ModelSpec with the shape the architecture expects, so
// that a file that does not match its config fails at load with the tensor's name.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "io/model_spec.h"

namespace loom {

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
