// The built-in filters, tests, global functions and Python methods (str.strip, dict.items...)
// that chat templates use. Each is a plain function of its arguments; none keeps state.
// Errors are thrown as TemplateRuntimeError and get a location from the interpreter.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "template/value.h"

namespace loom::jinja {

using FilterFn = Value (*)(Interpreter&, const Value& subject, CallArgs& args);
using TestFn = bool (*)(Interpreter&, const Value& subject, CallArgs& args);

// nullptr when no filter / test has that name (the parser reports it).
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// A bound method for `object.name` when object is a str, list or dict and `name` is one of the
// read-only Python methods templates use; nullopt otherwise.
std::optional<Value> find_method(const Value& object, const std::string& name);

// range, dict, namespace, raise_exception, strftime_now.
Dict make_globals();

// Matches Python-style positional and keyword arguments to named parameters, the way a
// Python function signature would; an unknown keyword or one argument too many is an error.
class Args {
 public:
  Args(std::string_view function, CallArgs& args, std::initializer_list<std::string_view> params);
  bool has(size_t i) const { return !slots_[i].is_undefined(); }
  const Value& operator[](size_t i) const { return slots_[i]; }
  // Typed getters with defaults; a wrong type is an error naming the function.
  int64_t get_int(size_t i, int64_t fallback) const;
  bool get_bool(size_t i, bool fallback) const;
  std::optional<std::string> get_string(size_t i) const;

 private:
  std::string_view function_;
  std::vector<std::string_view> params_;
  std::vector<Value> slots_;
};

}  // namespace loom::jinja
