// Element-wise ops on the CPU: activations, residual adds, scaling, soft-capping, and the row
// gather/scatter and top-k routing of mixture-of-experts layers.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/host_tensor.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/error.h"

namespace loom::cpu {

namespace {

// PyTorch's gelu(approximate="tanh") = HF's gelu_new / gelu_pytorch_tanh.
inline float gelu_tanh_1(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

}  // namespace

void CpuBackend::swiglu(const Activations& gate, const Activations& up, Activations& out) {
  LOOM_ASSERT(up.rows() == gate.rows() && up.cols() == gate.cols());
  const int64_t n = gate.rows() * gate.cols();
  const float* g = host(gate).data();
  const float* u = host(up).data();
  float* o = host_alloc(out, gate.rows(), gate.cols()).data();
  pool_.parallel_for(
      n, [&](int64_t b, int64_t e, int) { kernels::silu_mul(g + b, u + b, o + b, e - b); });
}

void CpuBackend::geglu(const Activations& gate, const Activations& up, Activations& out) {
  LOOM_ASSERT(up.rows() == gate.rows() && up.cols() == gate.cols());
  const int64_t n = gate.rows() * gate.cols();
  const float* g = host(gate).data();
  const float* u = host(up).data();
  float* o = host_alloc(out, gate.rows(), gate.cols()).data();
  pool_.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) o[i] = gelu_tanh_1(g[i]) * u[i];
  });
}

void CpuBackend::gelu_tanh(Activations& x) {
  float* v = host(x).data();
  pool_.parallel_for(x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) v[i] = gelu_tanh_1(v[i]);
  });
}

void CpuBackend::add(Activations& acc, const Activations& x) {
  const int64_t n = acc.rows() * acc.cols();
  LOOM_ASSERT(x.numel() == n);
  float* a = host(acc).data();
  const float* b = host(x).data();
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

void CpuBackend::scale(Activations& x, float s) {
  const int64_t n = x.rows() * x.cols();
  float* v = host(x).data();
  for (int64_t i = 0; i < n; ++i) v[i] *= s;
}

void CpuBackend::softcap(Activations& x, float cap) {
  float* v = host(x).data();
  pool_.parallel_for(x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) v[i] = cap * std::tanh(v[i] / cap);
  });
}

void CpuBackend::scatter_rows(const Activations& src, std::span<const int32_t> rows,
                              Activations& dst) {
  LOOM_ASSERT(static_cast<int64_t>(rows.size()) == src.rows() && src.cols() == dst.cols());
  const auto S = host(src);
  const auto D = host(dst);
  for (size_t i = 0; i < rows.size(); ++i) {
    LOOM_ASSERT(rows[i] >= 0 && rows[i] < dst.rows());
    std::copy_n(S.row(static_cast<int64_t>(i)), src.cols(), D.row(rows[i]));
  }
}

void CpuBackend::gather_rows(const Activations& x, std::span<const int32_t> rows,
                             Activations& out) {
  const auto X = host(x);
  const auto O = host_alloc(out, static_cast<int64_t>(rows.size()), x.cols());
  for (size_t i = 0; i < rows.size(); ++i) {
    LOOM_ASSERT(rows[i] >= 0 && rows[i] < x.rows());
    std::copy_n(X.row(rows[i]), x.cols(), O.row(static_cast<int64_t>(i)));
  }
}

void CpuBackend::add_rows_scaled(Activations& acc, const Activations& x,
                                 std::span<const int32_t> rows, std::span<const float> weights) {
  LOOM_ASSERT(rows.size() == weights.size() && static_cast<int64_t>(rows.size()) <= x.rows() &&
              x.cols() == acc.cols());
  const auto A = host(acc);
  const auto X = host(x);
  for (size_t i = 0; i < rows.size(); ++i) {
    LOOM_ASSERT(rows[i] >= 0 && rows[i] < acc.rows());
    float* a = A.row(rows[i]);
    const float* s = X.row(static_cast<int64_t>(i));
    for (int64_t c = 0; c < acc.cols(); ++c) a[c] += weights[i] * s[c];
  }
}

void CpuBackend::route_topk(const Activations& logits, int64_t k, bool renormalize,
                            std::span<int32_t> experts, std::span<float> weights) {
  const int64_t n = logits.rows(), n_experts = logits.cols();
  LOOM_ASSERT(k > 0 && k <= n_experts && static_cast<int64_t>(experts.size()) == n * k &&
              static_cast<int64_t>(weights.size()) == n * k);
  std::vector<float>& p = scratch(0, n_experts);
  std::vector<int32_t>& order = expert_order_;
  order.resize(n_experts);
  const auto L = host(logits);
  for (int64_t r = 0; r < n; ++r) {
    // As HF (Mixtral, Qwen3-MoE): softmax over all experts in float32, then top-k.
    const float* x = L.row(r);
    const float m = *std::max_element(x, x + n_experts);
    float sum = 0.0f;
    for (int64_t e = 0; e < n_experts; ++e) sum += p[e] = std::exp(x[e] - m);
    for (int64_t e = 0; e < n_experts; ++e) p[e] /= sum;
    for (int64_t e = 0; e < n_experts; ++e) order[e] = static_cast<int32_t>(e);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float top = 0.0f;
    for (int64_t j = 0; j < k; ++j) top += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      experts[r * k + j] = order[j];
      weights[r * k + j] = renormalize ? p[order[j]] / top : p[order[j]];
    }
  }
}

}  // namespace loom::cpu
