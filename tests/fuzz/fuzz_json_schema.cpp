// libFuzzer target: the JSON Schema -> grammar compiler (request bodies' response_format and
// tool parameters), then a matcher over the compiled grammar. Input: a schema, optionally
// followed by "\n---\n" and text to feed the matcher (masks are filled along the way).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "fuzz_grammar_util.h"
#include "fuzz_util.h"
#include "grammar/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto vocab =
      loom::fuzz::byte_vocab({"\": ", "\", \"", "true", "null", "{\"", "\"}", "[]", "  ", "123"});
  const auto parts = loom::fuzz::split(loom::fuzz::as_text(data, size), "\n---\n");
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
    loom::fuzz::drive(loom::grammar::compile_json_schema(schema, o), vocab, parts.second);
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
