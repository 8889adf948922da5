// Jinja2's built-in filters (those chat templates use), with transformers' tojson.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "template/builtins.h"
#include "template/interpreter.h"
#include "template/operators.h"
#include "template/text.h"

namespace loom::jinja {
namespace {

std::string as_text(const Value& v) {
  return v.str();
}

// An indentation given as a width; absurd widths are refused rather than allocated.
std::string spaces(int64_t width) {
  constexpr int64_t kMaxIndent = 1024;
  if (width > kMaxIndent) {
    throw TemplateRuntimeError(fmt::format("indent wider than {} is not supported", kMaxIndent));
  }
  return std::string(static_cast<size_t>(std::max<int64_t>(0, width)), ' ');
}

// Jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0 (items before attributes).
Value get_path(Interpreter& in, const Value& item, const std::string& path) {
  Value v = item;
  for (const std::string& part : text::split(path, std::string("."), -1, false)) {
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
      int64_t index = 0;
      std::from_chars(part.data(), part.data() + part.size(), index);
      v = in.get_item(v, Value(index));
    } else {
      v = in.get_item(v, Value(part));
    }
  }
  return v;
}

// Jinja2 sorts, dedups and compares strings case-insensitively unless case_sensitive=true.
Value fold_case(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(text::lower(v.as_string()));
  return v;
}

Value f_abs(Interpreter&, const Value& v, CallArgs& a) {
  Args args("abs", a, {});
  if (v.is_float()) return Value(std::fabs(v.as_double()));
  if (v.is_number()) return v.as_int() < 0 ? negate(v) : Value(v.as_int());
  throw TemplateRuntimeError(fmt::format("bad operand type for abs(): '{}'", v.type_name()));
}

Value f_attr(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("attr", a, {"name"});
  return in.get_attr(v, args.get_string(0).value_or(""));
}

Value f_batch(Interpreter&, const Value& v, CallArgs& a) {
  Args args("batch", a, {"linecount", "fill_with"});
  int64_t size = args.get_int(0, 1);
  if (size <= 0) throw TemplateRuntimeError("batch size must be positive");
  std::vector<Value> out, current;
  for (Value& item : iterate(v)) {
    current.push_back(std::move(item));
    if (static_cast<int64_t>(current.size()) == size) {
      out.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (args.has(1)) {
      while (static_cast<int64_t>(current.size()) < size) current.push_back(args[1]);
    }
    out.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(out));
}

Value f_capitalize(Interpreter&, const Value& v, CallArgs& a) {
  Args args("capitalize", a, {});
  return Value(text::capitalize(as_text(v)));
}

Value f_length(Interpreter&, const Value& v, CallArgs& a) {
  Args args("length", a, {});
  return Value(length(v));
}

Value f_default(Interpreter&, const Value& v, CallArgs& a) {
  Args args("default", a, {"default_value", "boolean"});
  bool use_default = v.is_undefined() || (args.get_bool(1, false) && !v.truthy());
  if (!use_default) return v;
  return args.has(0) ? args[0] : Value("");
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& a) {
  Args args("dictsort", a, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) throw TemplateRuntimeError("dictsort expects a mapping");
  bool case_sensitive = args.get_bool(0, false);
  std::string by = args.get_string(1).value_or("key");
  if (by != "key" && by != "value")
    throw TemplateRuntimeError("dictsort: 'by' must be 'key' or 'value'");
  std::vector<Value> pairs;
  for (const auto& [k, item] : v.dict_data()) pairs.push_back(Value::tuple({Value(k), item}));
  size_t index = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    return less_than(fold_case(x.items()[index], case_sensitive),
                     fold_case(y.items()[index], case_sensitive));
  });
  if (args.get_bool(2, false)) std::reverse(pairs.begin(), pairs.end());
  return Value::list(std::move(pairs));
}

Value f_escape(Interpreter&, const Value& v, CallArgs& a) {
  Args args("escape", a, {});
  std::string out;
  for (char c : as_text(v)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(std::move(out));
}

Value f_first(Interpreter&, const Value& v, CallArgs& a) {
  Args args("first", a, {});
  std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Interpreter&, const Value& v, CallArgs& a) {
  Args args("last", a, {});
  std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

std::optional<double> parse_float(std::string s) {
  s = text::strip(s, true, true);
  if (!s.empty() && s[0] == '+') s.erase(0, 1);
  double d;
  auto res = std::from_chars(s.data(), s.data() + s.size(), d);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return d;
}

Value f_float(Interpreter&, const Value& v, CallArgs& a) {
  Args args("float", a, {"default"});
  Value fallback = args.has(0) ? args[0] : Value(0.0);
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    if (auto d = parse_float(v.as_string())) return Value(*d);
  }
  return fallback;
}

Value f_int(Interpreter&, const Value& v, CallArgs& a) {
  Args args("int", a, {"default", "base"});
  Value fallback = args.has(0) ? args[0] : Value(0);
  int base = static_cast<int>(args.get_int(1, 10));
  if (v.is_float()) {
    double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_number()) return Value(v.as_int());
  if (!v.is_string()) return fallback;
  std::string s = text::strip(v.as_string(), true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.erase(0, 1);
  if (base == 16 && s.size() > 2 && (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0)) s.erase(0, 2);
  int64_t n = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), n, base);
  if (!s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size())
    return Value(negative ? -n : n);
  // Jinja2 falls back to int(float(value)).
  if (auto d = parse_float(v.as_string()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18) {
    return Value(static_cast<int64_t>(*d));
  }
  return fallback;
}

Value f_format(Interpreter&, const Value& v, CallArgs& a) {
  if (!a.keyword.empty())
    throw TemplateRuntimeError("format filter: keyword arguments are not supported");
  Value args = a.positional.size() == 1 && a.positional[0].is_dict() ? a.positional[0]
                                                                     : Value::tuple(a.positional);
  return binary_op("%", Value(as_text(v)), args, SIZE_MAX);
}

Value f_indent(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("indent", a, {"width", "first", "blank"});
  std::string indentation =
      args.has(0) && args[0].is_string() ? args[0].as_string() : spaces(args.get_int(0, 4));
  bool first = args.get_bool(1, false), blank = args.get_bool(2, false);
  // Jinja2 appends a newline before splitting, so a trailing newline is kept.
  std::vector<std::string> lines = text::splitlines(as_text(v) + "\n");
  if (lines.size() * indentation.size() > in.options().limits.max_output_bytes) {
    throw TemplateRuntimeError("indent result exceeds the output size limit",
                               ErrorCode::kOutOfRange);
  }
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (blank || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
  }
  if (first) out = indentation + out;
  return Value(std::move(out));
}

Value f_items(Interpreter&, const Value& v, CallArgs& a) {
  Args args("items", a, {});
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict())
    throw TemplateRuntimeError(
        fmt::format("can only get item pairs from a mapping, not {}", v.type_name()));
  std::vector<Value> pairs;
  for (const auto& [k, item] : v.dict_data()) pairs.push_back(Value::tuple({Value(k), item}));
  return Value::list(std::move(pairs));
}

Value f_join(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("join", a, {"d", "attribute"});
  std::string sep = args.has(0) ? args[0].str() : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += args.has(1) ? get_path(in, item, args[1].str()).str() : item.str();
  }
  return Value(std::move(out));
}

Value f_list(Interpreter&, const Value& v, CallArgs& a) {
  Args args("list", a, {});
  return Value::list(iterate(v));
}

Value f_lower(Interpreter&, const Value& v, CallArgs& a) {
  Args args("lower", a, {});
  return Value(text::lower(as_text(v)));
}

Value f_upper(Interpreter&, const Value& v, CallArgs& a) {
  Args args("upper", a, {});
  return Value(text::upper(as_text(v)));
}

Value f_map(Interpreter& in, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  Value attribute, fallback;
  for (auto& [key, value] : a.keyword) {
    if (key == "attribute") {
      attribute = value;
    } else if (key == "default") {
      fallback = value;
    } else if (attribute.is_undefined() && a.positional.empty()) {
      throw TemplateRuntimeError(fmt::format("map: unexpected keyword argument '{}'", key));
    }
  }
  if (!attribute.is_undefined()) {
    for (const Value& item : iterate(v)) {
      Value x = get_path(in, item, attribute.str());
      out.push_back(x.is_undefined() && !fallback.is_undefined() ? fallback : x);
    }
    return Value::list(std::move(out));
  }
  if (a.positional.empty() || !a.positional[0].is_string())
    throw TemplateRuntimeError("map: expected a filter name or attribute=");
  std::string filter = a.positional[0].as_string();
  for (const Value& item : iterate(v)) {
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    out.push_back(in.apply_filter(filter, item, rest));
  }
  return Value::list(std::move(out));
}

Value min_max(Interpreter& in, const Value& v, CallArgs& a, const char* name, bool want_max) {
  Args args(name, a, {"case_sensitive", "attribute"});
  bool cs = args.get_bool(0, false);
  std::vector<Value> items = iterate(v);
  if (items.empty())
    return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
  auto key = [&](const Value& x) {
    return fold_case(args.has(1) ? get_path(in, x, args[1].str()) : x, cs);
  };
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    bool better = want_max ? less_than(key(items[best]), key(items[i]))
                           : less_than(key(items[i]), key(items[best]));
    if (better) best = i;
  }
  return items[best];
}
Value f_max(Interpreter& in, const Value& v, CallArgs& a) {
  return min_max(in, v, a, "max", true);
}
Value f_min(Interpreter& in, const Value& v, CallArgs& a) {
  return min_max(in, v, a, "min", false);
}

// select / reject / selectattr / rejectattr share Jinja2's select_or_reject.
Value select_or_reject(Interpreter& in, const Value& v, CallArgs& a, bool with_attr, bool keep_if) {
  std::vector<Value> pos = a.positional;
  std::string attribute;
  if (with_attr) {
    if (pos.empty()) throw TemplateRuntimeError("selectattr/rejectattr need an attribute name");
    attribute = pos[0].str();
    pos.erase(pos.begin());
  }
  std::string test;
  if (!pos.empty()) {
    test = pos[0].str();
    pos.erase(pos.begin());
  }
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value subject = with_attr ? get_path(in, item, attribute) : item;
    bool ok;
    if (test.empty()) {
      ok = subject.truthy();
    } else {
      CallArgs targs{pos, a.keyword};
      ok = in.apply_test(test, subject, targs);
    }
    if (ok == keep_if) out.push_back(item);
  }
  return Value::list(std::move(out));
}
Value f_select(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, false, true);
}
Value f_reject(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, false, false);
}
Value f_selectattr(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, true, true);
}
Value f_rejectattr(Interpreter& in, const Value& v, CallArgs& a) {
  return select_or_reject(in, v, a, true, false);
}

Value f_replace(Interpreter&, const Value& v, CallArgs& a) {
  Args args("replace", a, {"old", "new", "count"});
  int64_t count = args.has(2) && !args[2].is_none() ? args.get_int(2, -1) : -1;
  return Value(text::replace(as_text(v), args[0].str(), args[1].str(), count));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs& a) {
  Args args("reverse", a, {});
  if (v.is_string()) {
    std::vector<std::string> cps = text::code_points(v.as_string());
    std::string out;
    for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
    return Value(std::move(out));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_round(Interpreter&, const Value& v, CallArgs& a) {
  Args args("round", a, {"precision", "method"});
  if (!v.is_number()) throw TemplateRuntimeError("round expects a number");
  int64_t precision = args.get_int(0, 0);
  // A double has at most 17 significant digits: more precision cannot change it.
  if (precision > 17) return Value(v.as_double());
  if (precision < -308) return Value(0.0 * v.as_double());
  double scale = std::pow(10.0, static_cast<double>(precision));
  std::string method = args.get_string(1).value_or("common");
  double x = v.as_double() * scale;
  if (method == "common") {
    x = std::nearbyint(x);  // Python's round() rounds half to even
  } else if (method == "ceil") {
    x = std::ceil(x);
  } else if (method == "floor") {
    x = std::floor(x);
  } else {
    throw TemplateRuntimeError("round: method must be 'common', 'ceil' or 'floor'");
  }
  return Value(x / scale);
}

Value f_safe(Interpreter&, const Value& v, CallArgs& a) {
  Args args("safe", a, {});
  return Value(as_text(v));
}

Value f_sort(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("sort", a, {"reverse", "case_sensitive", "attribute"});
  bool reverse = args.get_bool(0, false), cs = args.get_bool(1, false);
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) {
    in.step();
    Value key = args.has(2) ? get_path(in, item, args[2].str()) : item;
    keyed.emplace_back(fold_case(key, cs), std::move(item));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less_than(y.first, x.first) : less_than(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value f_string(Interpreter&, const Value& v, CallArgs& a) {
  Args args("string", a, {});
  return Value(as_text(v));
}

Value f_sum(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("sum", a, {"attribute", "start"});
  Value total = args.has(1) ? args[1] : Value(0);
  for (const Value& item : iterate(v)) {
    total = binary_op("+", total, args.has(0) ? get_path(in, item, args[0].str()) : item,
                      in.options().limits.max_output_bytes);
  }
  return total;
}

Value f_title(Interpreter&, const Value& v, CallArgs& a) {
  Args args("title", a, {});
  return Value(text::jinja_title(as_text(v)));
}

Value f_tojson(Interpreter& in, const Value& v, CallArgs& a) {
  // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
  // sort_keys=False), not Jinja2's HTML-safe one.
  Args args("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions options;
  options.ensure_ascii = args.get_bool(0, false);
  if (args.has(1) && !args[1].is_none()) {
    options.indent = args[1].is_string() ? args[1].as_string() : spaces(args.get_int(1, 0));
  }
  if (args.has(2) && !args[2].is_none()) {
    const Value& sep = args[2];
    if (!sep.is_list() || sep.items().size() != 2 || !sep.items()[0].is_string() ||
        !sep.items()[1].is_string()) {
      throw TemplateRuntimeError("tojson: separators must be a pair of strings");
    }
    options.separators = std::make_pair(sep.items()[0].as_string(), sep.items()[1].as_string());
  }
  options.sort_keys = args.get_bool(3, false);
  options.max_bytes = in.options().limits.max_output_bytes;
  return Value(to_python_json(v, options));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& a) {
  Args args("trim", a, {"chars"});
  return Value(text::strip(as_text(v), true, true, args.get_string(0)));
}

Value f_unique(Interpreter& in, const Value& v, CallArgs& a) {
  Args args("unique", a, {"case_sensitive", "attribute"});
  bool cs = args.get_bool(0, false);
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v)) {
    in.step();
    Value key = fold_case(args.has(1) ? get_path(in, item, args[1].str()) : item, cs);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs& a) {
  Args args("wordcount", a, {});
  // Python's \w+: runs of letters, digits and underscores.
  int64_t words = 0;
  bool in_word = false;
  for (const std::string& cp : text::code_points(as_text(v))) {
    bool word_char = cp == "_" || text::is_alnum(cp);
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value(words);
}

const std::map<std::string_view, FilterFn>& filter_table() {
  static const std::map<std::string_view, FilterFn> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"batch", f_batch},
      {"capitalize", f_capitalize},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"format", f_format},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"sort", f_sort},
      {"string", f_string},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"unique", f_unique},
      {"upper", f_upper},
      {"wordcount", f_wordcount},
  };
  return table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto& table = filter_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace loom::jinja
