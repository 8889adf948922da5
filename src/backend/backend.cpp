// The parts of the Backend interface every backend shares: weight accounting.
#include "backend/backend.h"

namespace loom {

TensorView Backend::prepare_weight(const TensorView& w, WeightUse /*use*/) {
  // Read in place (host memory: the file's mapping).
  account_weight(w.data, w.n_bytes);
  return w;
}

void Backend::account_weight(const void* data, uint64_t bytes) {
  if (data == nullptr || !accounted_.insert(data).second) return;
  weight_bytes_ += bytes;
}

}  // namespace loom
