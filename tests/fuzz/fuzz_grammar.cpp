// libFuzzer target: the request's `grammar` (GBNF) and `regex` fields. Input: "re:" and a
// pattern, or a GBNF grammar; optionally followed by "\n---\n" and text fed to a matcher.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "fuzz_grammar_util.h"
#include "fuzz_util.h"
#include "grammar/gbnf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto vocab = loom::fuzz::byte_vocab({"ab", "abc", "  ", "\n\n", "yes", "no"});
  const auto parts = loom::fuzz::split(loom::fuzz::as_text(data, size), "\n---\n");
  try {
    std::shared_ptr<loom::grammar::Grammar> g;
    if (parts.first.substr(0, 3) == "re:") {
      g = loom::grammar::compile_regex_grammar(parts.first.substr(3));
    } else {
      loom::grammar::GbnfOptions o;
      o.max_repeat = 256;
      o.max_symbols = 200'000;
      g = loom::grammar::compile_gbnf(parts.first, o);
    }
    loom::fuzz::drive(std::move(g), vocab, parts.second);
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
