// Mixture-of-experts on the CPU: route on the host (this backend's memory), then each expert
// once over exactly the rows routed to it, so a batched step reads each expert's weights at
// most once.
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace loom::cpu {

void CpuBackend::moe_ffn(const Activations& h, const TensorView& router,
                         std::span<const GatedMlp> experts, const MoeParams& p, Activations& acc) {
  const int64_t n = h.rows(), k = p.n_used;
  LOOM_ASSERT(router.shape.size() == 2 && router.shape[0] == static_cast<int64_t>(experts.size()) &&
              acc.rows() == n);
  MoeScratch& s = moe_;
  matmul(h, router, nullptr, s.router);
  s.experts.resize(n * k);
  s.weights.resize(n * k);
  route_topk(s.router, k, p.renormalize, s.experts, s.weights);
  for (size_t e = 0; e < experts.size(); ++e) {
    s.rows.clear();
    s.row_weights.clear();
    for (int64_t i = 0; i < n * k; ++i) {
      if (s.experts[i] == static_cast<int32_t>(e)) {
        s.rows.push_back(static_cast<int32_t>(i / k));
        s.row_weights.push_back(s.weights[i]);
      }
    }
    if (s.rows.empty()) continue;
    gather_rows(h, s.rows, s.xs);
    const GatedMlp& E = experts[e];
    const MatmulTarget gate_up[] = {{&E.gate, nullptr, &s.g}, {&E.up, nullptr, &s.u}};
    matmul_many(s.xs, gate_up);
    if (p.act == GatedActivation::kSilu) {
      swiglu(s.g, s.u, s.g);
    } else {
      geglu(s.g, s.u, s.g);
    }
    matmul(s.g, E.down, nullptr, s.ys);
    add_rows_scaled(acc, s.ys, s.rows, s.row_weights);
  }
}

}  // namespace loom::cpu
