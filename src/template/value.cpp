#include "template/value.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace loom::jinja {
namespace {

// Dicts at or below this size are scanned; larger ones keep a hash index.
constexpr size_t kIndexThreshold = 16;

}  // namespace

const Value* Dict::find(std::string_view key) const {
  return const_cast<Dict*>(this)->find(key);
}

Value* Dict::find(std::string_view key) {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
  if (!index_.empty()) {
    index_.emplace(entries_.back().first, entries_.size() - 1);
  } else if (entries_.size() > kIndexThreshold) {
    for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
  }
}

namespace {

int checked_depth(int child_depth) {
  if (child_depth + 1 > kMaxValueDepth) {
    throw TemplateRuntimeError(fmt::format("value nests deeper than {} levels", kMaxValueDepth),
                               ErrorCode::kOutOfRange);
  }
  return child_depth + 1;
}

template <typename Range, typename Get>
int max_child_depth(const Range& range, Get get) {
  int depth = 0;
  for (const auto& item : range) depth = std::max(depth, get(item).depth());
  return depth;
}

}  // namespace

int Value::depth() const {
  switch (kind()) {
    case Kind::kList:
      return list_data().depth;
    case Kind::kDict:
      return dict_data().depth();
    case Kind::kNamespace:
      return namespace_attrs().depth();
    default:
      return 0;
  }
}

Value Value::list(std::vector<Value> items) {
  int depth =
      checked_depth(max_child_depth(items, [](const Value& x) -> const Value& { return x; }));
  Value v;
  v.v_ = std::make_shared<ListData>(ListData{std::move(items), false, depth});
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.list_data().is_tuple = true;
  return v;
}

Value Value::dict(Dict d) {
  d.depth_ = checked_depth(
      max_child_depth(d, [](const Dict::Entry& e) -> const Value& { return e.second; }));
  Value v;
  v.v_ = std::make_shared<Dict>(std::move(d));
  return v;
}

Value Value::function(std::string name, NativeFn fn) {
  Value v;
  v.v_ = std::make_shared<Function>(Function{std::move(name), std::move(fn)});
  return v;
}

Value Value::make_namespace(Dict attrs) {
  attrs.depth_ = checked_depth(
      max_child_depth(attrs, [](const Dict::Entry& e) -> const Value& { return e.second; }));
  Value v;
  v.v_ = std::make_shared<NamespaceData>(NamespaceData{std::move(attrs)});
  return v;
}

int64_t Value::as_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  return std::get<int64_t>(v_);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return as_bool();
    case Kind::kInt:
      return as_int() != 0;
    case Kind::kFloat:
      return as_double() != 0.0;
    case Kind::kString:
      return !as_string().empty();
    case Kind::kList:
      return !items().empty();
    case Kind::kDict:
      return !dict_data().empty();
    case Kind::kFunction:
    case Kind::kNamespace:
      return true;
  }
  return false;
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form, then laid out the way Python's repr does:
  // positional when the decimal exponent is in [-4, 16), scientific otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  // Appends piecewise: GCC 12 warns falsely (-Wrestrict) on `"literal" + std::string`.
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      size_t int_len = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_len) {
        out += digits;
        out.append(int_len - digits.size(), '0');
        out += ".0";
      } else {
        out.append(digits, 0, int_len);
        out += '.';
        out.append(digits, int_len);
      }
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    }
    return out;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out.append(digits, 1);
  }
  out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out;
}

namespace {

std::string repr_string(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  out += quote;
  return out;
}

}  // namespace

std::string Value::str() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return as_string();
    default:
      return repr();
  }
}

namespace {

std::string repr_at(const Value& v, int depth) {
  // Namespaces can be chained by assignment after creation, so their depth is checked here.
  if (depth > 2 * kMaxValueDepth) {
    throw TemplateRuntimeError("value nests too deeply to print", ErrorCode::kOutOfRange);
  }
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.as_int());
    case Value::Kind::kFloat:
      return python_float_repr(v.as_double());
    case Value::Kind::kString:
      return repr_string(v.as_string());
    case Value::Kind::kList: {
      const ListData& l = v.list_data();
      std::string out = l.is_tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += repr_at(l.items[i], depth + 1);
      }
      if (l.is_tuple && l.items.size() == 1) out += ",";
      out += l.is_tuple ? ")" : "]";
      return out;
    }
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      const Dict& d = v.is_dict() ? v.dict_data() : v.namespace_attrs();
      std::string out = v.is_dict() ? "{" : "<Namespace {";
      bool first = true;
      for (const auto& [k, item] : d) {
        if (!first) out += ", ";
        first = false;
        out += repr_string(k) + ": " + repr_at(item, depth + 1);
      }
      return out + (v.is_dict() ? "}" : "}>");
    }
    case Value::Kind::kFunction:
      return fmt::format("<function {}>", v.function_data().name);
  }
  return "";
}

}  // namespace

std::string Value::repr() const {
  return repr_at(*this, 0);
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return list_data().is_tuple ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kFunction:
      return "function";
    case Kind::kNamespace:
      return "Namespace";
  }
  return "object";
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_string() == b.as_string();
    case Value::Kind::kList: {
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!equals(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      const Dict& x = a.dict_data();
      const Dict& y = b.dict_data();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = y.find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kFunction:
      return &a.function_data() == &b.function_data();
    case Value::Kind::kNamespace:
      return &a.namespace_attrs() == &b.namespace_attrs();
    default:
      return false;
  }
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string())
    return a.as_string() < b.as_string();  // UTF-8 order is code point order
  if (a.is_list() && b.is_list()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw TemplateRuntimeError(fmt::format("'<' not supported between instances of '{}' and '{}'",
                                         a.type_name(), b.type_name()));
}

namespace {

// Python's json.dumps string escaping: '"', '\\' and control characters are escaped; with
// ensure_ascii, so is everything outside ASCII (as \uXXXX, surrogate pairs above U+FFFF).
void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
          out += fmt::format("\\u{:04x}", c);
        } else if (ensure_ascii && c >= 0x80) {
          // Decode one UTF-8 sequence (invalid bytes are written as U+FFFD's escape).
          int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
          uint32_t cp = len == 1 ? 0xFFFD : (c & (0x7F >> len));
          for (int k = 1; k < len; ++k) {
            if (i + 1 >= s.size() || (static_cast<unsigned char>(s[i + 1]) & 0xC0) != 0x80) {
              cp = 0xFFFD;
              break;
            }
            cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F);
          }
          if (cp >= 0x10000) {
            cp -= 0x10000;
            out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
          } else {
            out += fmt::format("\\u{:04x}", cp);
          }
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

struct JsonWriter {
  const JsonOptions& options;
  std::string item_sep;
  std::string key_sep;
  std::string out;

  void check_size() {
    if (out.size() > options.max_bytes) {
      throw TemplateRuntimeError("tojson output exceeds the output size limit",
                                 ErrorCode::kOutOfRange);
    }
  }

  void newline(int level) {
    check_size();
    if (!options.indent) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += *options.indent;
  }

  void dump(const Value& v, int level) {
    switch (v.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return;
      case Value::Kind::kBool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out += std::to_string(v.as_int());
        return;
      case Value::Kind::kFloat: {
        double d = v.as_double();
        if (std::isnan(d)) {
          out += "NaN";
        } else if (std::isinf(d)) {
          out += d < 0 ? "-Infinity" : "Infinity";
        } else {
          out += python_float_repr(d);
        }
        return;
      }
      case Value::Kind::kString:
        json_string(out, v.as_string(), options.ensure_ascii);
        return;
      case Value::Kind::kList: {
        const auto& items = v.items();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          dump(items[i], level + 1);
        }
        newline(level);
        out += ']';
        return;
      }
      case Value::Kind::kDict: {
        const Dict& d = v.dict_data();
        if (d.empty()) {
          out += "{}";
          return;
        }
        std::vector<const Dict::Entry*> entries;
        for (const auto& e : d) entries.push_back(&e);
        if (options.sort_keys) {
          std::stable_sort(
              entries.begin(), entries.end(),
              [](const Dict::Entry* x, const Dict::Entry* y) { return x->first < y->first; });
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          newline(level + 1);
          json_string(out, entries[i]->first, options.ensure_ascii);
          out += key_sep;
          dump(entries[i]->second, level + 1);
        }
        newline(level);
        out += '}';
        return;
      }
      default:
        throw TemplateRuntimeError(
            fmt::format("Object of type {} is not JSON serializable", v.type_name()));
    }
  }
};

}  // namespace

std::string to_python_json(const Value& value, const JsonOptions& options) {
  JsonWriter writer{options, options.indent ? "," : ", ", ": ", {}};
  if (options.separators) {
    writer.item_sep = options.separators->first;
    writer.key_sep = options.separators->second;
  }
  writer.dump(value, 0);
  writer.check_size();
  return std::move(writer.out);
}

}  // namespace loom::jinja
