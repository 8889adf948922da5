// libFuzzer target: the safetensors header parser (binary framing + JSON header).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loom::SafetensorsFile f = loom::SafetensorsFile::parse("fuzz.safetensors", data, size);
    volatile uint8_t sink = 0;
    for (const loom::SafetensorsTensor& t : f.tensors()) {
      if (t.n_bytes > 0) sink = sink ^ t.data[0] ^ t.data[t.n_bytes - 1];
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
