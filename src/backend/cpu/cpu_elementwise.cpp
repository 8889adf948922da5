// Element-wise ops on the CPU: activations and residual adds.
#include <cmath>

#include "backend/cpu/cpu_backend.h"

namespace loom::cpu {

void CpuBackend::swiglu(const Activations& gate, const Activations& up, Activations& out) {
  out.resize(gate.rows(), gate.cols());
  const int64_t n = gate.rows() * gate.cols();
  const float* g = gate.data();
  const float* u = up.data();
  float* o = out.data();
  pool_.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void CpuBackend::add(Activations& acc, const Activations& x) {
  const int64_t n = acc.rows() * acc.cols();
  float* a = acc.data();
  const float* b = x.data();
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace loom::cpu
