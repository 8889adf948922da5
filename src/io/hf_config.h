// Hugging Face config.json -> HyperParams. Families spell the same field differently
// (hidden_size / n_embd / d_model); this is the one place that knows the spellings.
// A field of the wrong type is an error naming the file and key, never a silent default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "io/model_spec.h"

namespace loom {

struct HfConfig {
  std::string model_type;
  std::string architecture;  // loom name, or model_type when unknown
  bool architecture_known = false;
  HyperParams hparams;
};

// Parses config.json text. `file` names it in errors.
HfConfig parse_hf_config(std::string_view text, const std::string& file);

// Folds generation_config.json's bos/eos ids into `hparams` (they override config.json's).
void apply_generation_config(std::string_view text, const std::string& file, HyperParams& hparams);

}  // namespace loom
