// libFuzzer target: arbitrary bytes as a tokenizer.json. Loading must either succeed or throw
// loom::Error; a loaded tokenizer must encode and decode its own input without crashing, and
// streaming decode must agree with decode.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    auto tok = loom::tokenizer::Tokenizer::from_hf_json_text(input, "fuzz.json");
    auto ids = tok.encode(input.substr(0, 256), true);
    std::string full = tok.decode(ids, false);
    loom::tokenizer::IncrementalDecoder stream(tok, false);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.step(id);
    streamed += stream.finish();
    if (streamed != full) __builtin_trap();
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
