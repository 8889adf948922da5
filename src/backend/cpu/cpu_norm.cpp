// Normalisation and rotary embedding on the CPU.
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/host_tensor.h"
#include "backend/cpu/kernels/kernels.h"
#include "core/error.h"

namespace loom::cpu {

namespace {
// Below this many values an op runs on the calling thread: a decode step's norms and ropes
// (2048 values) take less time than handing work to another core, and under load the other
// core may not be scheduled for milliseconds.
constexpr int64_t kInlineValues = 1 << 15;

template <typename F>
void run(ThreadPool& pool, int64_t n, int64_t values, const F& fn) {
  if (values < kInlineValues) {
    fn(0, n, 0);
  } else {
    pool.parallel_for(n, fn);
  }
}
}  // namespace

void CpuBackend::rms_norm(const Activations& x, const TensorView& weight, float eps,
                          float weight_offset, int64_t group, Activations& y) {
  const float* w = row_as_f32(weight, 1);
  LOOM_ASSERT(weight.numel() == group && x.cols() % group == 0);
  const auto X = host(x);
  const auto Y = host_alloc(y, x.rows(), x.cols());
  const int64_t groups_per_row = x.cols() / group;
  run(pool_, x.rows() * groups_per_row, x.rows() * x.cols(), [&](int64_t b, int64_t e, int) {
    for (int64_t gi = b; gi < e; ++gi) {
      const int64_t r = gi / groups_per_row, off = (gi % groups_per_row) * group;
      const float* xr = X.row(r) + off;
      float* yr = Y.row(r) + off;
      const float ss = kernels::sum_squares_f32(xr, group);
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(group) + eps);
      for (int64_t i = 0; i < group; ++i) yr[i] = (xr[i] * inv) * (w[i] + weight_offset);
    }
  });
}

void CpuBackend::layer_norm(const Activations& x, const TensorView& weight, const TensorView* bias,
                            float eps, Activations& y) {
  const float* w = row_as_f32(weight, 1);
  const float* b = bias != nullptr ? row_as_f32(*bias, 2) : nullptr;
  const int64_t d = x.cols();
  const auto X = host(x);
  const auto Y = host_alloc(y, x.rows(), d);
  pool_.parallel_for(x.rows(), [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = X.row(r);
      float* yr = Y.row(r);
      float mean = 0.0f;
      for (int64_t i = 0; i < d; ++i) mean += xr[i];
      mean /= static_cast<float>(d);
      float var = 0.0f;
      for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      var /= static_cast<float>(d);
      const float inv = 1.0f / std::sqrt(var + eps);
      for (int64_t i = 0; i < d; ++i) {
        yr[i] = (xr[i] - mean) * inv * w[i] + (b != nullptr ? b[i] : 0.0f);
      }
    }
  });
}

void CpuBackend::rope(Activations& x, int64_t n_heads, int64_t head_dim, const RopeTable& table) {
  const int64_t half = table.dims / 2, rows = x.rows();
  const auto X = host(x);
  LOOM_ASSERT(static_cast<int64_t>(step_positions_.size()) == rows * step_axes_);
  // The position axis of each rotary pair (M-RoPE sections; axis 0 without them, or when the
  // step has one axis, which takes no table at all).
  const bool one_axis = table.sections.empty() || step_axes_ == 1;
  if (!one_axis) {
    pair_axis_.assign(half, 0);
    int64_t i = 0;
    for (size_t a = 0; a < table.sections.size(); ++a) {
      LOOM_ASSERT(static_cast<int64_t>(a) < step_axes_);
      for (int64_t j = 0; j < table.sections[a] && i < half; ++j)
        pair_axis_[i++] = static_cast<int32_t>(a);
    }
    LOOM_ASSERT(i == half);
  }
  const int32_t* positions = step_positions_.data();
  run(pool_, x.rows(), x.rows() * n_heads * head_dim, [&](int64_t begin, int64_t end, int t) {
    std::vector<float>& cs = scratch(t, 2 * half);
    for (int64_t r = begin; r < end; ++r) {
      // As HF: the angle is a float32 product of the position and the float32 frequency.
      const float pos = static_cast<float>(positions[r]) / table.position_scale;
      for (int64_t i = 0; i < half; ++i) {
        const float p_i = one_axis ? pos
                                   : static_cast<float>(positions[pair_axis_[i] * rows + r]) /
                                         table.position_scale;
        const float angle = p_i * table.inv_freq[i];
        cs[2 * i] = std::cos(angle);
        cs[2 * i + 1] = std::sin(angle);
      }
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = X.row(r) + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = table.style == RopeStyle::kNeox ? i : 2 * i;
          const int64_t b = table.style == RopeStyle::kNeox ? i + half : 2 * i + 1;
          const float x0 = v[a], x1 = v[b], c = cs[2 * i], s = cs[2 * i + 1];
          v[a] = x0 * c - x1 * s;
          v[b] = x1 * c + x0 * s;
        }
      }
    }
  });
}

}  // namespace loom::cpu
