#include "model/rope.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace loom {

RopeTable make_rope_table(const HyperParams& hp, int64_t head_dim, RopeStyle style, double theta,
                          const std::string& model_path) {
  RopeTable t;
  t.style = style;
  t.dims = hp.rope_dims > 0 ? hp.rope_dims : head_dim;
  if (t.dims % 2 != 0 || t.dims > head_dim) {
    fail(ErrorCode::kCorruption, "{}: rotary dimensions {} must be even and at most head_dim {}",
         model_path, t.dims, head_dim);
  }
  // Real heads are at most a few thousand wide; a file claiming more is corrupt, and would
  // otherwise cost seconds and memory here before its tensors are checked (fuzz_model_load).
  constexpr int64_t kMaxRopeDims = 65536;
  if (t.dims > kMaxRopeDims) {
    fail(ErrorCode::kCorruption, "{}: rotary dimensions {} exceed {}", model_path, t.dims,
         kMaxRopeDims);
  }
  // As transformers: inv_freq = 1 / base^(2i/d), computed in float32.
  t.inv_freq.resize(t.dims / 2);
  for (int64_t i = 0; i < t.dims / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(t.dims);
    t.inv_freq[i] = 1.0f / std::pow(static_cast<float>(theta), exponent);
  }
  const RopeScaling& s = hp.rope_scaling;
  if (s.type == "none" || s.type == "default") return t;
  if (s.type == "linear") {
    t.position_scale = static_cast<float>(s.factor);
    return t;
  }
  if (s.type == "llama3") {
    // transformers' _compute_llama3_parameters: long wavelengths are divided by `factor`, short
    // ones kept, and the band between is interpolated.
    if (s.original_context <= 0 || s.high_freq_factor == s.low_freq_factor) {
      fail(ErrorCode::kCorruption,
           "{}: llama3 rope scaling needs original_max_position_embeddings and distinct "
           "low/high frequency factors",
           model_path);
    }
    const float factor = static_cast<float>(s.factor);
    const float low = static_cast<float>(s.low_freq_factor);
    const float high = static_cast<float>(s.high_freq_factor);
    const float old_ctx = static_cast<float>(s.original_context);
    const float low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
    for (float& f : t.inv_freq) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      float scaled = wavelen > low_wavelen ? f / factor : f;
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        const float smooth = (old_ctx / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
    return t;
  }
  fail(ErrorCode::kUnsupported, "{}: rope scaling type '{}' is not supported yet", model_path,
       s.type);
}

}  // namespace loom
