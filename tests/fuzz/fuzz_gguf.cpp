// libFuzzer target: the GGUF reader must turn any bytes into a GgufFile or a loom::Error,
// never a crash, hang or out-of-bounds read (ASan/UBSan watch the latter).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    loom::GgufFile f = loom::GgufFile::parse("fuzz.gguf", data, size);
    // Touch what a caller would: typed getters and every tensor's bytes.
    (void)f.get_string("general.architecture");
    volatile uint8_t sink = 0;
    for (const loom::GgufTensorInfo& t : f.tensors()) {
      if (t.n_bytes > 0) sink = sink ^ t.data[0] ^ t.data[t.n_bytes - 1];
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
