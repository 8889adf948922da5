// JSON Schema -> Grammar: the JSON texts a schema accepts, as a context-free grammar over
// lexemes (strings, numbers, keywords, punctuation, whitespace), for constrained decoding.
//
// Supported (draft 2020-12 and the older drafts real schemas declare): type (and lists of
// types), properties / required / additionalProperties (true, false, a schema) /
// patternProperties, items / prefixItems (and draft-4 tuple items / additionalItems),
// minItems / maxItems, enum / const, anyOf / oneOf (when its branches cannot overlap) / allOf
// (merged), $ref / $defs / definitions (recursive, JSON pointers into the document), minLength
// / maxLength, pattern, minimum / maximum / exclusiveMinimum / exclusiveMaximum (integers
// exactly; numbers between integer bounds), format (date-time, date, time, duration, email,
// uuid, uri, uri-reference, ipv4, ipv6, hostname), nullable (OpenAPI), dependentRequired is
// refused unless trivially met. Unknown keywords are annotations, as the specification says.
//
// Property order follows `properties`; additional properties come after the declared ones.
// Whitespace follows JSON's grammar between tokens (compact mode: none at all). Strings are
// written as JSON encoders do: `"`, `\` and control characters escaped, everything else raw.
//
// What cannot be expressed exactly is an error naming the keyword and its JSON pointer
// (kUnsupported), never a silent loosening: uniqueItems, contains, multipleOf,
// min/maxProperties, not, if/then/else, dependentSchemas, unevaluated*, oneOf with branches
// that may overlap, $ref outside the document. An unsatisfiable schema is kInvalidArgument.
// Thread-safety: pure function.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "grammar/grammar.h"

namespace loom::grammar {

struct JsonSchemaOptions {
  bool compact = false;  // no whitespace between tokens
  // The whitespace allowed between tokens (when not compact); unset: any, as JSON's grammar.
  // Servers bound it (pretty_whitespace) so a model cannot fill its output with blanks.
  Regex whitespace;
  // Bounds that keep compilation and the grammar's size finite for hostile schemas.
  int64_t max_repeat = 4096;  // minItems / maxItems / minLength... expanded up to this
  // minLength / maxLength of a string with no pattern or format: its lexeme is built a
  // character at a time as text arrives (lexer.h), so the bound costs nothing up front.
  int64_t max_string_length = 1'000'000;
  int max_depth = 128;  // nesting of schemas while compiling
  // Compilation past this instant is a kOutOfRange error ("compile time limit").
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// " ", or one or two newlines and up to 20 spaces or tabs of indentation: what compact and
// pretty-printed JSON use, and no more (llama.cpp's JSON grammars allow the same).
Regex pretty_whitespace();

// The grammar of the JSON texts `schema` accepts (the whole document is the schema).
// An ordered_json keeps the schema's property order (nlohmann::json sorts keys).
std::shared_ptr<Grammar> compile_json_schema(const nlohmann::ordered_json& schema,
                                             const JsonSchemaOptions& options = {});

// Compiles `schema` into `g` (not yet finalized), for grammars that embed JSON values (tool
// calls): returns the rule of the values it accepts, without surrounding whitespace. $ref
// pointers resolve inside `schema`. `ws` receives the optional-whitespace rule it uses.
int32_t add_json_schema(const std::shared_ptr<Grammar>& g, const nlohmann::ordered_json& schema,
                        const JsonSchemaOptions& options, int32_t* ws = nullptr);

// Any JSON value (response_format json_object uses an object).
std::shared_ptr<Grammar> json_value_grammar(bool object_only,
                                            const JsonSchemaOptions& options = {});

}  // namespace loom::grammar
