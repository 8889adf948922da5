// libFuzzer target: arbitrary bytes as a GGUF file whose tokenizer.ggml.* metadata becomes a
// tokenizer (llama/SentencePiece, gpt2 with every pre-tokenizer name, bert). Building must end
// in a tokenizer or a loom::Error; a built tokenizer must encode awkward text, decode to valid
// UTF-8, and stream-decode to the same text.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const loom::GgufFile file = loom::GgufFile::parse("fuzz.gguf", data, size);
    const loom::tokenizer::Tokenizer tok = loom::tokenizer::tokenizer_from_gguf(file);
    static const std::string_view kTexts[] = {
        "Hello world! ab a b  ab\n\n\t 123 4567", "\xe4\xb8\xad\xe6\x96\x87 \xc3\xa9t\xc3\xa9",
        "<s>a</s><|im_start|>[CLS] hello world [SEP]", "\xff\xfe invalid \xc3", ""};
    for (std::string_view text : kTexts) {
      for (bool special : {false, true}) {
        const auto ids = tok.encode(text, special);
        for (bool skip : {false, true}) {
          const std::string full = tok.decode(ids, skip);
          if (!loom::tokenizer::is_valid_utf8(full)) __builtin_trap();
          loom::tokenizer::IncrementalDecoder stream(tok, skip);
          std::string streamed;
          for (int32_t id : ids) streamed += stream.step(id);
          streamed += stream.finish();
          if (streamed != full) __builtin_trap();
        }
      }
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
