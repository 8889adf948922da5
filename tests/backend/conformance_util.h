// Shared by the backend conformance suite's files (conformance_test.cpp: memory, embedding,
// norms, rope, element-wise, MoE, registry; conformance_compute_test.cpp: matmul, paged and
// encoder attention). See conformance_test.cpp for what the suite promises.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/host_matrix.h"
#include "quant/quant.h"

namespace loom::conformance {

using test::HostMatrix;
using test::random_matrix;
using test::to_device;
using test::to_host;

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Backend> make(bool batch_invariant = false) {
    return make_backend({GetParam(), 2, batch_invariant});
  }
};

inline std::string device_name(const ::testing::TestParamInfo<std::string>& p) {
  std::string s = p.param;
  std::replace(s.begin(), s.end(), ':', '_');
  return s;
}

// Weights quantized to `type` and their dequantized float values.
struct Weights {
  std::vector<uint8_t> bytes;
  HostMatrix values;
  TensorView view;
};

inline Weights make_weights(DType type, int64_t m, int64_t k, uint32_t seed, float scale = 1.0f) {
  Weights w;
  const HostMatrix f = random_matrix(m, k, seed, scale);
  const uint64_t rb = *row_bytes(type, k);
  w.bytes.resize(rb * m);
  w.values = HostMatrix(m, k);
  for (int64_t r = 0; r < m; ++r) {
    quantize_row(type, f.row(r), w.bytes.data() + r * rb, k);
    dequantize_row(type, w.bytes.data() + r * rb, w.values.row(r), k);
  }
  w.view = TensorView{type, {m, k}, w.bytes.data(), w.bytes.size()};
  return w;
}

inline TensorView f32_view(const std::vector<float>& v) {
  return TensorView{
      DType::kF32, {static_cast<int64_t>(v.size())}, v.data(), v.size() * sizeof(float)};
}

inline bool quantized(DType t) {
  return dtype_info(t).block_size > 1;
}

}  // namespace loom::conformance
