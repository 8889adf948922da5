// libFuzzer target: config.json (and generation_config.json) parsing into HyperParams.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    loom::HfConfig c = loom::parse_hf_config(text, "fuzz/config.json");
    loom::apply_generation_config(text, "fuzz/generation_config.json", c.hparams);
    (void)c.hparams.to_json().dump();
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
