#include "model/weights.h"

#include "core/error.h"
#include "quant/quant.h"

namespace loom {

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
