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
  // Bounds that keep compilation and the grammar's size finite for hostile schemas.
  int64_t max_repeat = 4096;  // minItems / maxItems / minLength... expanded up to this
  int max_depth = 128;        // nesting of schemas while compiling
  // Compilation past this instant is a kOutOfRange error ("compile time limit").
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// The grammar of the JSON texts `schema` accepts (the whole document is the schema).
// An ordered_json keeps the schema's property order (nlohmann::json sorts keys).
std::shared_ptr<Grammar> compile_json_schema(const nlohmann::ordered_json& schema,
                                             const JsonSchemaOptions& options = {});

// Any JSON value (response_format json_object uses an object).
std::shared_ptr<Grammar> json_value_grammar(bool object_only,
                                            const JsonSchemaOptions& options = {});

}  // namespace loom::grammar
