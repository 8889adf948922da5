// Jinja's operators on Values, with the Python semantics Jinja2 inherits: int/float promotion,
// floor division and modulo rounding toward negative infinity, str and list concatenation and
// repetition, `in` on strings, lists and dicts, slicing by code point, iteration.
// Integers are 64-bit; a result Python would hold in a big integer is an error here.
// All throw TemplateRuntimeError on a type error. Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "template/value.h"

namespace loom::jinja {

// op is one of + - * / // % ** ~. max_bytes bounds strings built by repetition.
Value binary_op(const std::string& op, const Value& a, const Value& b, size_t max_bytes);
Value negate(const Value& v);

// Python's `item in container`.
bool contains(const Value& container, const Value& item);

// Python's list(x): list items, dict keys, string code points; undefined gives nothing.
std::vector<Value> iterate(const Value& v);

// Python's len(); throws for values without one.
int64_t length(const Value& v);

// x[start:stop:step] on a list or string; a missing part is undefined or none.
Value slice(const Value& v, const Value& start, const Value& stop, const Value& step);

// Throws the "'x' is undefined" error Jinja2 raises when an undefined is used as a value.
[[noreturn]] void fail_undefined(const Value& v);

}  // namespace loom::jinja
