// Host-side matrices for tests: a [rows, cols] float32 matrix tests can read and write, moved to
// and from a backend only through its public upload/download (as model and engine code do).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "backend/backend.h"

namespace loom::test {

struct HostMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> v;

  HostMatrix() = default;
  HostMatrix(int64_t r, int64_t c) : rows(r), cols(c), v(static_cast<size_t>(r * c)) {}
  float* row(int64_t r) { return v.data() + r * cols; }
  const float* row(int64_t r) const { return v.data() + r * cols; }
  float* data() { return v.data(); }
  const float* data() const { return v.data(); }
};

// N(0, scale^2) entries from `seed`.
inline HostMatrix random_matrix(int64_t rows, int64_t cols, uint32_t seed, float scale = 1.0f) {
  HostMatrix m(rows, cols);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  for (float& f : m.v) f = dist(rng);
  return m;
}

inline Activations to_device(Backend& be, const HostMatrix& m) {
  return be.make_tensor(m.v, m.rows, m.cols);
}

inline HostMatrix to_host(Backend& be, const Activations& t) {
  HostMatrix m(t.rows(), t.cols());
  be.download(t, 0, t.rows(), m.v);
  return m;
}

}  // namespace loom::test
