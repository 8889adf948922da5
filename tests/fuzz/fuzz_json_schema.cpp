// libFuzzer target: the JSON Schema -> grammar compiler (request bodies' response_format and
// tool parameters), then a matcher over the compiled grammar. Input: a schema, optionally
// followed by "\n---\n" and text to feed the matcher (masks are filled along the way).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "fuzz_util.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace {

std::shared_ptr<const loom::grammar::TokenVocab> vocab() {
  static const auto v = [] {
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
    for (const char* t : {"\": ", "\", \"", "true", "null", "{\"", "\"}", "[]", "  ", "123"}) {
      bytes.emplace_back(t);
    }
    bytes.emplace_back("<eos>");
    std::vector<bool> text(bytes.size(), true);
    text.back() = false;
    return std::make_shared<const loom::grammar::TokenVocab>(
        bytes, text, std::vector<int32_t>{static_cast<int32_t>(bytes.size() - 1)});
  }();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = loom::fuzz::split(input, "\n---\n");
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(parts.first);
  } catch (const nlohmann::json::exception&) {
    return 0;  // not JSON: the server's body parser refuses it before the compiler
  }
  try {
    loom::grammar::JsonSchemaOptions o;
    o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    o.max_repeat = 256;
    o.whitespace = loom::grammar::pretty_whitespace();
    auto g = std::make_shared<loom::grammar::CompiledGrammar>(
        loom::grammar::compile_json_schema(schema, o));
    loom::grammar::Matcher m(g, vocab());
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
