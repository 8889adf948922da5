// Regular expressions over JSON text, the building blocks of the JSON-schema compiler
// (json_schema.cpp): what a schema's strings, numbers and formats look like once written as
// JSON. Every Regex here is over the JSON text's code points (escapes included), except where a
// function says it takes decoded characters.
// Thread-safety: free functions; the caches they keep are per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "grammar/regex.h"

namespace loom::grammar::schema_regex {

// A regex over decoded characters -> the same language over their JSON encodings (raw where
// JSON allows, and the escapes encoders write: \" \\ \/ \b \f \n \r \t, \u00XX, \uXXXX).
Regex encode(const Regex& r);
// Any one character as JSON may encode it inside a string.
Regex any_encoded_char();
// A JSON string (with its quotes) whose encoded content matches `content`.
Regex quoted(const Regex& content);
// UTF-8 -> code points (lenient: its input is text from a parsed JSON document, valid UTF-8).
std::u32string decode_utf8(std::string_view s);
// Non-negative integers in [lo, hi] (hi < 0: unbounded), written without leading zeros.
Regex naturals(uint64_t lo, int64_t hi);
// Integers in [lo, hi] (nullopt: unbounded on that side), in JSON syntax.
Regex integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi);
// One or more digits.
Regex digits1();
// Any JSON integer; any JSON number.
Regex integer_regex();
Regex number_regex();
// Decimal numbers in JSON syntax without an exponent that are >= bound (at_least) or <= bound.
Regex decimal_bound(double bound, bool at_least);
// The decoded content of a string of `format` (date, time, date-time, email, uuid, ...);
// nullopt for a format this compiler does not know. Throws for formats no grammar can express.
std::optional<Regex> format_regex(std::string_view format);

}  // namespace loom::grammar::schema_regex
