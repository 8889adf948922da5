// Rotary position embedding frequencies from the hyper-parameters, with the scalings HF
// implements (default, linear, llama3). Others are rejected rather than silently ignored.
#pragma once

#include "backend/backend.h"
#include "io/model_spec.h"

namespace loom {

RopeTable make_rope_table(const HyperParams& hp, int64_t head_dim, RopeStyle style, double theta,
                          const std::string& model_path);

}  // namespace loom
