// Python methods templates call on values: message.content.startswith('<tool'),
// tool.items(), name.split('.')... Only read-only methods exist: transformers renders in Jinja2's
// ImmutableSandboxedEnvironment, where list.append and dict.update are refused.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "template/builtins.h"
#include "template/interpreter.h"
#include "template/operators.h"
#include "template/text.h"

namespace loom::jinja {
namespace {

using Method = Value (*)(Interpreter&, const Value& self, CallArgs& args);

std::optional<std::string> optional_chars(const Args& args, size_t i) {
  return args.get_string(i);
}

Value m_strip(Interpreter&, const Value& s, CallArgs& a) {
  Args args("strip", a, {"chars"});
  return Value(text::strip(s.as_string(), true, true, optional_chars(args, 0)));
}
Value m_lstrip(Interpreter&, const Value& s, CallArgs& a) {
  Args args("lstrip", a, {"chars"});
  return Value(text::strip(s.as_string(), true, false, optional_chars(args, 0)));
}
Value m_rstrip(Interpreter&, const Value& s, CallArgs& a) {
  Args args("rstrip", a, {"chars"});
  return Value(text::strip(s.as_string(), false, true, optional_chars(args, 0)));
}

Value split_impl(const Value& s, CallArgs& a, bool from_right) {
  Args args(from_right ? "rsplit" : "split", a, {"sep", "maxsplit"});
  std::optional<std::string> sep = args.get_string(0);
  if (sep && sep->empty()) throw TemplateRuntimeError("empty separator");
  std::vector<Value> out;
  for (std::string& part : text::split(s.as_string(), sep, args.get_int(1, -1), from_right))
    out.emplace_back(std::move(part));
  return Value::list(std::move(out));
}
Value m_split(Interpreter&, const Value& s, CallArgs& a) {
  return split_impl(s, a, false);
}
Value m_rsplit(Interpreter&, const Value& s, CallArgs& a) {
  return split_impl(s, a, true);
}

Value m_splitlines(Interpreter&, const Value& s, CallArgs& a) {
  Args args("splitlines", a, {});
  std::vector<Value> out;
  for (std::string& line : text::splitlines(s.as_string())) out.emplace_back(std::move(line));
  return Value::list(std::move(out));
}

// startswith/endswith accept a string or a tuple of strings.
bool affix_matches(const Value& affix, const std::string& s, bool prefix, const char* name) {
  auto one = [&](const Value& v) {
    if (!v.is_string())
      throw TemplateRuntimeError(fmt::format("{} arg must be str or a tuple of str", name));
    const std::string& x = v.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0
                  : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    return std::any_of(affix.items().begin(), affix.items().end(), one);
  }
  return one(affix);
}
Value m_startswith(Interpreter&, const Value& s, CallArgs& a) {
  Args args("startswith", a, {"prefix"});
  return Value(affix_matches(args[0], s.as_string(), true, "startswith"));
}
Value m_endswith(Interpreter&, const Value& s, CallArgs& a) {
  Args args("endswith", a, {"suffix"});
  return Value(affix_matches(args[0], s.as_string(), false, "endswith"));
}

Value m_upper(Interpreter&, const Value& s, CallArgs& a) {
  Args args("upper", a, {});
  return Value(text::upper(s.as_string()));
}
Value m_lower(Interpreter&, const Value& s, CallArgs& a) {
  Args args("lower", a, {});
  return Value(text::lower(s.as_string()));
}
Value m_title(Interpreter&, const Value& s, CallArgs& a) {
  Args args("title", a, {});
  return Value(text::python_title(s.as_string()));
}
Value m_capitalize(Interpreter&, const Value& s, CallArgs& a) {
  Args args("capitalize", a, {});
  return Value(text::capitalize(s.as_string()));
}

Value m_replace(Interpreter&, const Value& s, CallArgs& a) {
  Args args("replace", a, {"old", "new", "count"});
  auto old_text = args.get_string(0), new_text = args.get_string(1);
  if (!old_text || !new_text) throw TemplateRuntimeError("replace() needs 'old' and 'new' strings");
  return Value(text::replace(s.as_string(), *old_text, *new_text, args.get_int(2, -1)));
}

// find/rfind/index return code point positions, as Python does.
int64_t find_impl(const Value& s, CallArgs& a, const char* name, bool from_right) {
  Args args(name, a, {"sub"});
  auto sub = args.get_string(0);
  if (!sub) throw TemplateRuntimeError(fmt::format("{}() needs a string", name));
  const std::string& str = s.as_string();
  size_t pos = from_right ? str.rfind(*sub) : str.find(*sub);
  if (pos == std::string::npos) return -1;
  return static_cast<int64_t>(text::code_point_count(std::string_view(str).substr(0, pos)));
}
Value m_find(Interpreter&, const Value& s, CallArgs& a) {
  return Value(find_impl(s, a, "find", false));
}
Value m_rfind(Interpreter&, const Value& s, CallArgs& a) {
  return Value(find_impl(s, a, "rfind", true));
}
Value m_index(Interpreter&, const Value& s, CallArgs& a) {
  int64_t i = find_impl(s, a, "index", false);
  if (i < 0) throw TemplateRuntimeError("substring not found");
  return Value(i);
}

Value m_count(Interpreter&, const Value& s, CallArgs& a) {
  Args args("count", a, {"sub"});
  auto sub = args.get_string(0);
  if (!sub) throw TemplateRuntimeError("count() needs a string");
  return Value(text::count(s.as_string(), *sub));
}

Value m_join(Interpreter&, const Value& s, CallArgs& a) {
  Args args("join", a, {"iterable"});
  std::string out;
  bool first = true;
  for (const Value& item : iterate(args[0])) {
    if (!item.is_string())
      throw TemplateRuntimeError(
          fmt::format("join: expected str instance, {} found", item.type_name()));
    if (!first) out += s.as_string();
    first = false;
    out += item.as_string();
  }
  return Value(std::move(out));
}

// str.format with "{}", "{0}" and "{name}" fields; format specs are not supported.
Value m_format(Interpreter&, const Value& s, CallArgs& a) {
  const std::string& f = s.as_string();
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    char c = f[i];
    if (c == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') ++i;
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < f.size() && f[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = f.find('}', i);
    if (close == std::string::npos)
      throw TemplateRuntimeError("format: single '{' encountered in format string");
    std::string field = f.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!.[") != std::string::npos) {
      throw TemplateRuntimeError("format: conversions and format specs are not supported");
    }
    const Value* v = nullptr;
    if (field.empty() ||
        std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      size_t index = auto_index++;
      if (!field.empty()) std::from_chars(field.data(), field.data() + field.size(), index);
      if (index >= a.positional.size())
        throw TemplateRuntimeError("format: replacement index out of range");
      v = &a.positional[index];
    } else {
      for (auto& [key, value] : a.keyword) {
        if (key == field) v = &value;
      }
      if (!v) throw TemplateRuntimeError(fmt::format("format: no argument named '{}'", field));
    }
    out += v->str();
    i = close;
  }
  return Value(std::move(out));
}

template <bool (*Pred)(std::string_view)>
Value m_is(Interpreter&, const Value& s, CallArgs& a) {
  Args args("is...", a, {});
  return Value(Pred(s.as_string()));
}

Value m_removeprefix(Interpreter&, const Value& s, CallArgs& a) {
  Args args("removeprefix", a, {"prefix"});
  std::string p = args.get_string(0).value_or("");
  const std::string& str = s.as_string();
  return Value(str.compare(0, p.size(), p) == 0 ? str.substr(p.size()) : str);
}
Value m_removesuffix(Interpreter&, const Value& s, CallArgs& a) {
  Args args("removesuffix", a, {"suffix"});
  std::string p = args.get_string(0).value_or("");
  const std::string& str = s.as_string();
  bool match =
      !p.empty() && str.size() >= p.size() && str.compare(str.size() - p.size(), p.size(), p) == 0;
  return Value(match ? str.substr(0, str.size() - p.size()) : str);
}

// ---- dict ----
Value m_items(Interpreter&, const Value& d, CallArgs& a) {
  Args args("items", a, {});
  std::vector<Value> out;
  for (const auto& [k, v] : d.dict_data()) out.push_back(Value::tuple({Value(k), v}));
  return Value::list(std::move(out));
}
Value m_keys(Interpreter&, const Value& d, CallArgs& a) {
  Args args("keys", a, {});
  return Value::list(iterate(d));
}
Value m_values(Interpreter&, const Value& d, CallArgs& a) {
  Args args("values", a, {});
  std::vector<Value> out;
  for (const auto& [k, v] : d.dict_data()) out.push_back(v);
  return Value::list(std::move(out));
}
Value m_get(Interpreter&, const Value& d, CallArgs& a) {
  Args args("get", a, {"key", "default"});
  if (args[0].is_string()) {
    if (const Value* v = d.dict_data().find(args[0].as_string())) return *v;
  }
  return args.has(1) ? args[1] : Value(nullptr);
}

// ---- list ----
Value m_list_index(Interpreter&, const Value& l, CallArgs& a) {
  Args args("index", a, {"value"});
  const auto& items = l.items();
  for (size_t i = 0; i < items.size(); ++i) {
    if (equals(items[i], args[0])) return Value(static_cast<int64_t>(i));
  }
  throw TemplateRuntimeError(fmt::format("{} is not in list", args[0].repr()));
}
Value m_list_count(Interpreter&, const Value& l, CallArgs& a) {
  Args args("count", a, {"value"});
  int64_t n = 0;
  for (const Value& item : l.items()) n += equals(item, args[0]) ? 1 : 0;
  return Value(n);
}

const std::map<std::string_view, Method>& string_methods() {
  static const std::map<std::string_view, Method> table = {
      {"capitalize", m_capitalize},
      {"count", m_count},
      {"endswith", m_endswith},
      {"find", m_find},
      {"format", m_format},
      {"index", m_index},
      {"isalnum", m_is<text::is_alnum>},
      {"isalpha", m_is<text::is_alpha>},
      {"isdigit", m_is<text::is_digit>},
      {"islower", m_is<text::is_lower>},
      {"isspace", m_is<text::is_space>},
      {"isupper", m_is<text::is_upper>},
      {"join", m_join},
      {"lower", m_lower},
      {"lstrip", m_lstrip},
      {"removeprefix", m_removeprefix},
      {"removesuffix", m_removesuffix},
      {"replace", m_replace},
      {"rfind", m_rfind},
      {"rsplit", m_rsplit},
      {"rstrip", m_rstrip},
      {"split", m_split},
      {"splitlines", m_splitlines},
      {"startswith", m_startswith},
      {"strip", m_strip},
      {"title", m_title},
      {"upper", m_upper},
  };
  return table;
}

const std::map<std::string_view, Method>& dict_methods() {
  static const std::map<std::string_view, Method> table = {
      {"get", m_get}, {"items", m_items}, {"keys", m_keys}, {"values", m_values}};
  return table;
}

const std::map<std::string_view, Method>& list_methods() {
  static const std::map<std::string_view, Method> table = {{"count", m_list_count},
                                                           {"index", m_list_index}};
  return table;
}

bool is_mutator(const Value& object, std::string_view name) {
  static const std::string_view kList[] = {"append", "clear",  "extend",  "insert",
                                           "pop",    "remove", "reverse", "sort"};
  static const std::string_view kDict[] = {"clear", "pop", "popitem", "setdefault", "update"};
  if (object.is_list())
    return std::find(std::begin(kList), std::end(kList), name) != std::end(kList);
  if (object.is_dict())
    return std::find(std::begin(kDict), std::end(kDict), name) != std::end(kDict);
  return false;
}

}  // namespace

std::optional<Value> find_method(const Value& object, const std::string& name) {
  const std::map<std::string_view, Method>* table = nullptr;
  if (object.is_string()) table = &string_methods();
  if (object.is_dict()) table = &dict_methods();
  if (object.is_list()) table = &list_methods();
  if (!table) return std::nullopt;
  auto it = table->find(name);
  if (it == table->end()) {
    if (is_mutator(object, name)) {
      // What the sandbox returns: an undefined that fails when called.
      return Value::undefined(fmt::format("access to attribute '{}' of '{}' object is unsafe", name,
                                          object.type_name()));
    }
    return std::nullopt;
  }
  Method method = it->second;
  return Value::function(
      name, [method, object](Interpreter& in, CallArgs& args) { return method(in, object, args); });
}

}  // namespace loom::jinja
