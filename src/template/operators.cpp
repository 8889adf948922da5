#include "template/operators.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>

#include "template/text.h"

namespace loom::jinja {
namespace {

[[noreturn]] void type_error(const std::string& op, const Value& a, const Value& b) {
  throw TemplateRuntimeError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op,
                                         a.type_name(), b.type_name()));
}

[[noreturn]] void overflow() {
  throw TemplateRuntimeError("integer overflow (loom's integers are 64-bit)");
}

// Wraps __builtin_*_overflow so the result is read only after the builtin wrote it.
template <typename Op>
int64_t checked(Op op, int64_t a, int64_t b) {
  int64_t r;
  if (op(a, b, &r)) overflow();
  return r;
}
constexpr auto kAdd = [](int64_t a, int64_t b, int64_t* r) {
  return __builtin_add_overflow(a, b, r);
};
constexpr auto kSub = [](int64_t a, int64_t b, int64_t* r) {
  return __builtin_sub_overflow(a, b, r);
};
constexpr auto kMul = [](int64_t a, int64_t b, int64_t* r) {
  return __builtin_mul_overflow(a, b, r);
};

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) throw TemplateRuntimeError("integer division or modulo by zero");
  if (a == INT64_MIN && b == -1) overflow();
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
  if (b == 0) throw TemplateRuntimeError("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value repeat(const Value& seq, int64_t times, size_t max_bytes) {
  if (times <= 0) return seq.is_string() ? Value("") : Value::list();
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(times) > max_bytes / s.size()) {
      throw TemplateRuntimeError("string repetition exceeds the output size limit",
                                 ErrorCode::kOutOfRange);
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return Value(std::move(out));
  }
  const auto& items = seq.items();
  if (!items.empty() && static_cast<uint64_t>(times) > max_bytes / 8 / items.size()) {
    throw TemplateRuntimeError("list repetition exceeds the size limit", ErrorCode::kOutOfRange);
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return seq.list_data().is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

// One "%[(key)][flags][width][.precision]type" conversion of Python's printf-style formatting.
std::string format_one(const Value& v, const std::string& flags, size_t width, int precision,
                       char type) {
  bool left = flags.find('-') != std::string::npos;
  bool zero = flags.find('0') != std::string::npos && !left;
  std::string sign = flags.find('+') != std::string::npos   ? "+"
                     : flags.find(' ') != std::string::npos ? " "
                                                            : "";
  bool alt = flags.find('#') != std::string::npos;
  std::string body;
  bool numeric = true;
  auto need_number = [&](bool integer) {
    if (!v.is_number() ||
        (integer && v.is_float() && (type == 'x' || type == 'X' || type == 'o'))) {
      throw TemplateRuntimeError(fmt::format("%{} format: a {} is required, not {}", type,
                                             integer ? "integer" : "real number", v.type_name()));
    }
  };
  switch (type) {
    case 's':
    case 'r': {
      numeric = false;
      body = type == 's' ? v.str() : v.repr();
      if (precision >= 0) {
        std::vector<std::string> cps = text::code_points(body);
        if (static_cast<size_t>(precision) < cps.size()) {
          body.clear();
          for (int k = 0; k < precision; ++k) body += cps[static_cast<size_t>(k)];
        }
      }
      break;
    }
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
      need_number(true);
      int64_t n = v.is_float() ? static_cast<int64_t>(v.as_double()) : v.as_int();
      uint64_t magnitude = n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
      const char* prefix = "";
      if (type == 'x' || type == 'X') {
        body = type == 'x' ? fmt::format("{:x}", magnitude) : fmt::format("{:X}", magnitude);
        if (alt) prefix = type == 'x' ? "0x" : "0X";
      } else if (type == 'o') {
        body = fmt::format("{:o}", magnitude);
        if (alt) prefix = "0o";
      } else {
        body = fmt::format("{}", magnitude);
      }
      if (precision > 0 && body.size() < static_cast<size_t>(precision)) {
        body.insert(0, static_cast<size_t>(precision) - body.size(), '0');
      }
      sign = n < 0 ? "-" : sign;
      sign += prefix;
      break;
    }
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G': {
      need_number(false);
      double d = v.as_double();
      int p = precision < 0 ? 6 : precision;
      std::string spec = fmt::format("{{:{}.{}{}}}", alt ? "#" : "", p, type);
      body = fmt::format(fmt::runtime(spec), std::fabs(d));
      sign = std::signbit(d) && !std::isnan(d) ? "-" : sign;
      break;
    }
    case 'c':
      numeric = false;
      if (v.is_string() && text::code_point_count(v.as_string()) == 1) {
        body = v.as_string();
      } else if (v.is_int() && v.as_int() >= 0 && v.as_int() < 0x80) {
        body = std::string(1, static_cast<char>(v.as_int()));
      } else {
        throw TemplateRuntimeError("%c requires an ASCII code or a single character");
      }
      break;
    default:
      throw TemplateRuntimeError(fmt::format("unsupported format character '{}'", type));
  }
  if (!numeric) sign.clear();
  size_t length = text::code_point_count(body) + sign.size();
  if (length >= width) return sign + body;
  size_t pad = width - length;
  if (left) return sign + body + std::string(pad, ' ');
  if (zero && numeric) return sign + std::string(pad, '0') + body;
  return std::string(pad, ' ') + sign + body;
}

// Python's `format % args` (and Jinja's format filter): a tuple supplies the values in order,
// a dict supplies %(key)s values, anything else is the single value.
std::string percent_format(const std::string& format, const Value& args) {
  std::vector<Value> values;
  if (args.is_list() && args.list_data().is_tuple) {
    values = args.items();
  } else {
    values.push_back(args);
  }
  std::string out;
  size_t next = 0;
  bool used_mapping = false;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    auto at_end = [&] {
      if (++i >= format.size()) throw TemplateRuntimeError("incomplete format");
    };
    at_end();
    if (format[i] == '%') {
      out += '%';
      continue;
    }
    const Value* v = nullptr;
    if (format[i] == '(') {
      size_t close = format.find(')', i);
      if (close == std::string::npos) throw TemplateRuntimeError("incomplete format key");
      if (!args.is_dict()) throw TemplateRuntimeError("format requires a mapping");
      v = args.dict_data().find(format.substr(i + 1, close - i - 1));
      if (!v)
        throw TemplateRuntimeError(
            fmt::format("format key '{}' not found", format.substr(i + 1, close - i - 1)));
      used_mapping = true;
      i = close;
      at_end();
    }
    std::string flags;
    while (std::string_view("-+ 0#").find(format[i]) != std::string_view::npos) {
      flags += format[i];
      at_end();
    }
    size_t width = 0;
    while (format[i] >= '0' && format[i] <= '9') {
      width = std::min<size_t>(width * 10 + static_cast<size_t>(format[i] - '0'), 4096);
      at_end();
    }
    int precision = -1;
    if (format[i] == '.') {
      precision = 0;
      at_end();
      while (format[i] >= '0' && format[i] <= '9') {
        precision = std::min(precision * 10 + (format[i] - '0'), 4096);
        at_end();
      }
    }
    if (!v) {
      if (next >= values.size())
        throw TemplateRuntimeError("not enough arguments for format string");
      v = &values[next++];
    }
    out += format_one(*v, flags, width, precision, format[i]);
  }
  if (!used_mapping && next < values.size() && !(values.size() == 1 && values[0].is_dict())) {
    throw TemplateRuntimeError("not all arguments converted during string formatting");
  }
  return out;
}

int64_t python_index(int64_t i, int64_t n) {
  return i < 0 ? i + n : i;
}

}  // namespace

void fail_undefined(const Value& v) {
  std::string hint = v.undefined_hint();
  throw TemplateRuntimeError(hint.empty() ? "value is undefined" : hint);
}

Value negate(const Value& v) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return Value(-v.as_double());
  if (v.is_number()) {
    if (v.as_int() == INT64_MIN) overflow();
    return Value(-v.as_int());
  }
  throw TemplateRuntimeError(fmt::format("bad operand type for unary -: '{}'", v.type_name()));
}

Value binary_op(const std::string& op, const Value& a, const Value& b, size_t max_bytes) {
  if (op == "~") {
    std::string s = a.str();
    s += b.str();
    return Value(std::move(s));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  bool numbers = a.is_number() && b.is_number();
  bool any_float = a.is_float() || b.is_float();
  if (op == "+") {
    if (numbers) {
      if (any_float) return Value(a.as_double() + b.as_double());
      return Value(checked(kAdd, a.as_int(), b.as_int()));
    }
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > max_bytes) {
        throw TemplateRuntimeError("string exceeds the output size limit", ErrorCode::kOutOfRange);
      }
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list()) {
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return a.list_data().is_tuple ? Value::tuple(std::move(items))
                                    : Value::list(std::move(items));
    }
    type_error(op, a, b);
  }
  if (op == "-") {
    if (!numbers) type_error(op, a, b);
    if (any_float) return Value(a.as_double() - b.as_double());
    return Value(checked(kSub, a.as_int(), b.as_int()));
  }
  if (op == "*") {
    if (numbers) {
      if (any_float) return Value(a.as_double() * b.as_double());
      return Value(checked(kMul, a.as_int(), b.as_int()));
    }
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool()))
      return repeat(a, b.as_int(), max_bytes);
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))
      return repeat(b, a.as_int(), max_bytes);
    type_error(op, a, b);
  }
  if (op == "/") {
    if (!numbers) type_error(op, a, b);
    if (b.as_double() == 0) throw TemplateRuntimeError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//") {
    if (!numbers) type_error(op, a, b);
    if (any_float) {
      if (b.as_double() == 0) throw TemplateRuntimeError("float floor division by zero");
      return Value(std::floor(a.as_double() / b.as_double()));
    }
    return Value(floor_div(a.as_int(), b.as_int()));
  }
  if (op == "%") {
    if (a.is_string()) return Value(percent_format(a.as_string(), b));
    if (!numbers) type_error(op, a, b);
    if (any_float) {
      double y = b.as_double();
      if (y == 0) throw TemplateRuntimeError("float modulo");
      double m = std::fmod(a.as_double(), y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value(m);
    }
    return Value(floor_mod(a.as_int(), b.as_int()));
  }
  if (op == "**") {
    if (!numbers) type_error(op, a, b);
    if (!any_float && b.as_int() >= 0) {
      int64_t base = a.as_int(), exp = b.as_int(), result = 1;
      while (exp > 0) {
        if (exp & 1) result = checked(kMul, result, base);
        exp >>= 1;
        if (exp > 0) base = checked(kMul, base, base);
      }
      return Value(result);
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  throw TemplateRuntimeError(fmt::format("unknown operator {}", op));
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!item.is_string()) {
        throw TemplateRuntimeError(
            fmt::format("'in <string>' requires string as left operand, not {}", item.type_name()));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : container.items()) {
        if (equals(v, item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return item.is_string() && container.dict_data().find(item.as_string()) != nullptr;
    default:
      throw TemplateRuntimeError(
          fmt::format("argument of type '{}' is not iterable", container.type_name()));
  }
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, unused] : v.dict_data()) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (std::string& cp : text::code_points(v.as_string())) chars.emplace_back(std::move(cp));
      return chars;
    }
    default:
      throw TemplateRuntimeError(fmt::format("'{}' object is not iterable", v.type_name()));
  }
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(text::code_point_count(v.as_string()));
    case Value::Kind::kList:
      return static_cast<int64_t>(v.items().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict_data().size());
    default:
      throw TemplateRuntimeError(fmt::format("object of type '{}' has no len()", v.type_name()));
  }
}

Value slice(const Value& v, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto as_index = [](const Value& x, const char* what) -> std::optional<int64_t> {
    if (x.is_undefined() || x.is_none()) return std::nullopt;
    if (!x.is_int() && !x.is_bool()) {
      throw TemplateRuntimeError(fmt::format("slice {} must be an integer or None", what));
    }
    return x.as_int();
  };
  int64_t step = as_index(step_v, "step").value_or(1);
  if (step == 0) throw TemplateRuntimeError("slice step cannot be zero");
  if (v.is_undefined()) fail_undefined(v);
  std::vector<size_t> offsets;
  int64_t n;
  if (v.is_string()) {
    offsets = text::code_point_offsets(v.as_string());
    n = static_cast<int64_t>(offsets.size()) - 1;
  } else if (v.is_list()) {
    n = static_cast<int64_t>(v.items().size());
  } else {
    throw TemplateRuntimeError(fmt::format("'{}' object is not subscriptable", v.type_name()));
  }
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> i, int64_t fallback) {
    if (!i) return fallback;
    int64_t x = python_index(*i, n);
    if (step > 0) return std::clamp<int64_t>(x, 0, n);
    return std::clamp<int64_t>(x, -1, n - 1);
  };
  int64_t start = clamp(as_index(start_v, "start"), step > 0 ? 0 : n - 1);
  int64_t stop = clamp(as_index(stop_v, "stop"), step > 0 ? n : -1);
  std::vector<int64_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(i);
  if (v.is_string()) {
    const std::string& s = v.as_string();
    std::string out;
    for (int64_t i : picks)
      out.append(s, offsets[static_cast<size_t>(i)],
                 offsets[static_cast<size_t>(i) + 1] - offsets[static_cast<size_t>(i)]);
    return Value(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i : picks) out.push_back(v.items()[static_cast<size_t>(i)]);
  return v.list_data().is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace loom::jinja
