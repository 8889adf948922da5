// libFuzzer target: arbitrary bytes as a tokenizer.json. Loading must either succeed or throw
// loom::Error; a loaded tokenizer must encode and decode its own input without crashing, and
// streaming decode must agree with decode. The one-pass reader (hf_json_tables.h) must describe
// exactly the document the plain parse gives, whenever it takes the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../tokenizer/hf_json_tables_check.h"
#include "core/error.h"
#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (!loom::tokenizer::test::tables_mismatch(input).empty()) __builtin_trap();
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
