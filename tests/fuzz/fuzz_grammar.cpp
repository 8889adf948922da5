// libFuzzer target: the request's `grammar` (GBNF) and `regex` fields. Input: "re:" and a
// pattern, or a GBNF grammar; optionally followed by "\n---\n" and text fed to a matcher.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "fuzz_util.h"
#include "grammar/gbnf.h"
#include "grammar/matcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = loom::fuzz::split(input, "\n---\n");
  static const auto vocab = [] {
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
    for (const char* t : {"ab", "abc", "  ", "\n\n", "yes", "no"}) bytes.emplace_back(t);
    bytes.emplace_back("<eos>");
    std::vector<bool> text(bytes.size(), true);
    text.back() = false;
    return std::make_shared<const loom::grammar::TokenVocab>(
        bytes, text, std::vector<int32_t>{static_cast<int32_t>(bytes.size() - 1)});
  }();
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
    loom::grammar::Matcher m(std::make_shared<loom::grammar::CompiledGrammar>(g), vocab);
    loom::grammar::IdSet mask;
    m.fill_mask(mask);
    const std::string_view text = parts.has_second ? parts.second : std::string_view();
    for (size_t i = 0; i < text.size() && i < 256; ++i) {
      if (!m.consume_bytes(text.substr(i, 1))) break;
      if (i % 8 == 0) m.fill_mask(mask);
    }
    (void)m.can_stop();
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
