#include "core/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace loom {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace loom
