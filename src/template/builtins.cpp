// Argument matching, Jinja2's tests, the global functions transformers provides, and the
// read-only Python methods of str, list and dict.
#include "template/builtins.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include "template/interpreter.h"
#include "template/operators.h"
#include "template/text.h"

namespace loom::jinja {

Args::Args(std::string_view function, CallArgs& args,
           std::initializer_list<std::string_view> params)
    : function_(function), params_(params), slots_(params.size()) {
  if (args.positional.size() > params_.size()) {
    throw TemplateRuntimeError(fmt::format("{}() takes at most {} argument(s) ({} given)", function,
                                           params_.size(), args.positional.size()));
  }
  for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = args.positional[i];
  for (auto& [key, value] : args.keyword) {
    auto it = std::find(params_.begin(), params_.end(), key);
    if (it == params_.end()) {
      throw TemplateRuntimeError(
          fmt::format("{}() got an unexpected keyword argument '{}'", function, key));
    }
    slots_[static_cast<size_t>(it - params_.begin())] = value;
  }
}

int64_t Args::get_int(size_t i, int64_t fallback) const {
  if (!has(i)) return fallback;
  if (!slots_[i].is_int() && !slots_[i].is_bool()) {
    throw TemplateRuntimeError(fmt::format("{}(): '{}' must be an integer, not {}", function_,
                                           params_[i], slots_[i].type_name()));
  }
  return slots_[i].as_int();
}

bool Args::get_bool(size_t i, bool fallback) const {
  return has(i) ? slots_[i].truthy() : fallback;
}

std::optional<std::string> Args::get_string(size_t i) const {
  if (!has(i) || slots_[i].is_none()) return std::nullopt;
  if (!slots_[i].is_string()) {
    throw TemplateRuntimeError(fmt::format("{}(): '{}' must be a string, not {}", function_,
                                           params_[i], slots_[i].type_name()));
  }
  return slots_[i].as_string();
}

// ---- tests ----
namespace {

const Value& test_arg(CallArgs& a, const char* name) {
  if (a.positional.size() != 1 || !a.keyword.empty()) {
    throw TemplateRuntimeError(fmt::format("test '{}' takes exactly one argument", name));
  }
  return a.positional[0];
}

bool t_defined(Interpreter&, const Value& v, CallArgs&) {
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, CallArgs&) {
  return v.is_none();
}
bool t_boolean(Interpreter&, const Value& v, CallArgs&) {
  return v.is_bool();
}
bool t_true(Interpreter&, const Value& v, CallArgs&) {
  return v.is_bool() && v.as_bool();
}
bool t_false(Interpreter&, const Value& v, CallArgs&) {
  return v.is_bool() && !v.as_bool();
}
bool t_integer(Interpreter&, const Value& v, CallArgs&) {
  return v.is_int();
}
bool t_float(Interpreter&, const Value& v, CallArgs&) {
  return v.is_float();
}
bool t_number(Interpreter&, const Value& v, CallArgs&) {
  return v.is_number();
}
bool t_string(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string();
}
bool t_mapping(Interpreter&, const Value& v, CallArgs&) {
  return v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_function();
}
// Jinja2's Undefined defines __iter__, __len__ and __getitem__, so it passes both tests.
bool t_iterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_sequence(Interpreter& in, const Value& v, CallArgs& a) {
  return t_iterable(in, v, a);
}
bool t_lower(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && text::is_lower(v.as_string());
}
bool t_upper(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && text::is_upper(v.as_string());
}
bool t_escaped(Interpreter&, const Value&, CallArgs&) {
  return false;
}

int64_t integer_operand(const Value& v, const char* test) {
  if (v.is_float()) {
    double d = v.as_double();
    if (d != std::floor(d)) return 1;  // odd/even of a fraction is never true in Python
    return static_cast<int64_t>(d);
  }
  if (!v.is_number())
    throw TemplateRuntimeError(
        fmt::format("test '{}' needs a number, not {}", test, v.type_name()));
  return v.as_int();
}
bool t_odd(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_float() && v.as_double() != std::floor(v.as_double())) return false;
  return integer_operand(v, "odd") % 2 != 0;
}
bool t_even(Interpreter&, const Value& v, CallArgs&) {
  if (v.is_float() && v.as_double() != std::floor(v.as_double())) return false;
  return integer_operand(v, "even") % 2 == 0;
}
bool t_divisibleby(Interpreter&, const Value& v, CallArgs& a) {
  const Value& d = test_arg(a, "divisibleby");
  if (!d.is_number() || !v.is_number()) throw TemplateRuntimeError("divisibleby needs numbers");
  if (v.is_float() || d.is_float()) return std::fmod(v.as_double(), d.as_double()) == 0;
  if (d.as_int() == 0) throw TemplateRuntimeError("integer division or modulo by zero");
  return v.as_int() % d.as_int() == 0;
}
bool t_eq(Interpreter&, const Value& v, CallArgs& a) {
  return equals(v, test_arg(a, "eq"));
}
bool t_ne(Interpreter&, const Value& v, CallArgs& a) {
  return !equals(v, test_arg(a, "ne"));
}
bool t_lt(Interpreter&, const Value& v, CallArgs& a) {
  return less_than(v, test_arg(a, "lt"));
}
bool t_gt(Interpreter&, const Value& v, CallArgs& a) {
  return less_than(test_arg(a, "gt"), v);
}
bool t_le(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = test_arg(a, "le");
  return less_than(v, o) || equals(v, o);
}
bool t_ge(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = test_arg(a, "ge");
  return less_than(o, v) || equals(v, o);
}
bool t_in(Interpreter&, const Value& v, CallArgs& a) {
  return contains(test_arg(a, "in"), v);
}
bool t_sameas(Interpreter&, const Value& v, CallArgs& a) {
  const Value& o = test_arg(a, "sameas");
  if (v.kind() != o.kind()) return false;
  // Python's `is`: containers by identity, scalars (None, True, small ints) by value.
  if (v.is_list()) return &v.list_data() == &o.list_data();
  if (v.is_dict()) return &v.dict_data() == &o.dict_data();
  return equals(v, o);
}
bool t_filter(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && find_filter(v.as_string());
}
bool t_test(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && find_test(v.as_string());
}

const std::map<std::string_view, TestFn>& test_table() {
  static const std::map<std::string_view, TestFn> table = {
      {"boolean", t_boolean},
      {"callable", t_callable},
      {"defined", t_defined},
      {"divisibleby", t_divisibleby},
      {"eq", t_eq},
      {"==", t_eq},
      {"equalto", t_eq},
      {"escaped", t_escaped},
      {"even", t_even},
      {"false", t_false},
      {"filter", t_filter},
      {"float", t_float},
      {"ge", t_ge},
      {">=", t_ge},
      {"gt", t_gt},
      {">", t_gt},
      {"greaterthan", t_gt},
      {"in", t_in},
      {"integer", t_integer},
      {"iterable", t_iterable},
      {"le", t_le},
      {"<=", t_le},
      {"lower", t_lower},
      {"lt", t_lt},
      {"<", t_lt},
      {"lessthan", t_lt},
      {"mapping", t_mapping},
      {"ne", t_ne},
      {"!=", t_ne},
      {"none", t_none},
      {"number", t_number},
      {"odd", t_odd},
      {"sameas", t_sameas},
      {"sequence", t_sequence},
      {"string", t_string},
      {"test", t_test},
      {"true", t_true},
      {"undefined", t_undefined},
      {"upper", t_upper},
  };
  return table;
}

}  // namespace

TestFn find_test(std::string_view name) {
  const auto& table = test_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

// ---- globals ----

Dict make_globals() {
  Dict g;
  g.set("range", Value::function("range", [](Interpreter& in, CallArgs& a) {
          Args args("range", a, {"start", "stop", "step"});
          int64_t start = 0, stop, step = args.get_int(2, 1);
          if (args.has(1)) {
            start = args.get_int(0, 0);
            stop = args.get_int(1, 0);
          } else {
            stop = args.get_int(0, 0);
          }
          if (step == 0) throw TemplateRuntimeError("range() arg 3 must not be zero");
          // Jinja2's sandbox (which transformers uses) refuses ranges over 100000 items.
          constexpr int64_t kMaxRange = 100000;
          std::vector<Value> items;
          for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (static_cast<int64_t>(items.size()) == kMaxRange) {
              throw TemplateRuntimeError(
                  fmt::format("range too big: the sandbox allows at most {} items", kMaxRange),
                  ErrorCode::kOutOfRange);
            }
            in.step();
            items.emplace_back(i);
            if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
          }
          return Value::list(std::move(items));
        }));
  auto make_dict = [](CallArgs& a) {
    Dict d;
    if (a.positional.size() > 1)
      throw TemplateRuntimeError("expected at most 1 positional argument");
    if (!a.positional.empty()) {
      if (!a.positional[0].is_dict()) throw TemplateRuntimeError("expected a mapping");
      for (const auto& [k, v] : a.positional[0].dict_data()) d.set(k, v);
    }
    for (auto& [k, v] : a.keyword) d.set(k, v);
    return d;
  };
  g.set("dict", Value::function("dict", [make_dict](Interpreter&, CallArgs& a) {
          return Value::dict(make_dict(a));
        }));
  g.set("namespace", Value::function("namespace", [make_dict](Interpreter& in, CallArgs& a) {
          Value ns = Value::make_namespace(make_dict(a));
          in.track_namespace(ns);
          return ns;
        }));
  g.set("raise_exception",
        Value::function("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
          std::string message = a.positional.empty() ? std::string() : a.positional[0].str();
          throw TemplateRuntimeError(message);
        }));
  g.set("strftime_now", Value::function("strftime_now", [](Interpreter& in, CallArgs& a) {
          Args args("strftime_now", a, {"format"});
          std::string format = args.get_string(0).value_or("");
          std::time_t now = in.options().now.value_or(std::time(nullptr));
          std::tm tm{};
          localtime_r(&now, &tm);
          if (format.empty()) return Value("");
          std::string out(format.size() * 4 + 64, '\0');
          size_t n = std::strftime(out.data(), out.size(), format.c_str(), &tm);
          if (n == 0)
            throw TemplateRuntimeError("strftime_now: format produced no output or is too long");
          out.resize(n);
          return Value(std::move(out));
        }));
  return g;
}

}  // namespace loom::jinja
