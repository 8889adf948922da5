// loom::jinja::Value — the dynamic value a Jinja template computes with, modelled on the Python
// objects Jinja2 sees when transformers renders a chat template: undefined, None, bool, int,
// float, str, list (and tuple), dict (insertion-ordered, string keys), callables (globals,
// macros, bound methods) and namespace objects.
//
// Ownership: scalars and strings are held by value; lists, dicts, namespaces and callables are
// shared (like Python references), so copying a Value is cheap and `ns.x = 1` is seen through
// every copy of `ns`. A template never mutates a list or dict it was given (transformers renders
// in Jinja2's immutable sandbox), so one context may be rendered by many threads at once.
// Thread-safety: a Value may be read concurrently; mutation (Dict::set) needs exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/error.h"

namespace loom::jinja {

class Value;
class Interpreter;

// An insertion-ordered mapping from string keys to values (Python dicts keep insertion order,
// and tojson must print keys in that order).
class Dict {
 public:
  using Entry = std::pair<std::string, Value>;

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Inserts at the end, or replaces in place when the key exists (like Python's d[k] = v).
  void set(std::string key, Value value);
  // Defined after Value (below): the vector's element type must be complete there, which
  // clang with libstdc++ enforces (GCC is lenient).
  size_t size() const;
  bool empty() const;
  std::vector<Entry>::const_iterator begin() const;
  std::vector<Entry>::const_iterator end() const;
  int depth() const { return depth_; }
  void clear();

 private:
  friend class Value;
  int depth_ = 1;  // set when the dict becomes a Value
  std::vector<Entry> entries_;
  // Built only for larger dicts (tool schemas); small ones are scanned.
  std::unordered_map<std::string, size_t> index_;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;  // only changes how the value prints: (1, 2) instead of [1, 2]
  int depth = 1;          // container nesting, see kMaxValueDepth
};

// Lists, tuples, dicts and namespaces may nest at most this deep when created, so that
// printing, comparing, serialising and destroying a value cannot exhaust the stack.
inline constexpr int kMaxValueDepth = 256;

// Positional and keyword arguments of one call, as Python would pass them.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFn = std::function<Value(Interpreter&, CallArgs&)>;

struct Function {
  std::string name;
  NativeFn call;
};

struct NamespaceData {
  Dict attrs;
};

// Undefined remembers what was looked up, so that using it in a way Jinja2 forbids gives the
// same kind of message Jinja2 does ("'foo' is undefined").
struct Undefined {
  std::string hint;
};

class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kFunction,
    kNamespace
  };

  Value() : v_(Undefined{}) {}
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}

  static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict(Dict d = {});
  static Value function(std::string name, NativeFn fn);
  static Value make_namespace(Dict attrs);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // Python's numbers: bool is an int subclass.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_function() const { return kind() == Kind::kFunction; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;    // bool or int
  double as_double() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }
  ListData& list_data() const { return *std::get<std::shared_ptr<ListData>>(v_); }
  const std::vector<Value>& items() const { return list_data().items; }
  Dict& dict_data() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  const Function& function_data() const { return *std::get<std::shared_ptr<Function>>(v_); }
  Dict& namespace_attrs() const { return std::get<std::shared_ptr<NamespaceData>>(v_)->attrs; }

  // Python truthiness: empty containers, 0, '', None and undefined are false.
  bool truthy() const;
  // Python's str(): what {{ value }} prints. Undefined prints as ''.
  std::string str() const;
  // Python's repr(): used for items inside printed lists and dicts.
  std::string repr() const;
  // Container nesting: 0 for scalars.
  int depth() const;
  // A Python-ish type name for error messages ("str", "int", "dict object").
  std::string type_name() const;

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string,
               std::shared_ptr<ListData>, std::shared_ptr<Dict>, std::shared_ptr<Function>,
               std::shared_ptr<NamespaceData>>
      v_;
};

// Python's ==, including 1 == 1.0 == True and Undefined == Undefined.
bool equals(const Value& a, const Value& b);
// Python's <, for numbers, strings and lists; throws TemplateRuntimeError otherwise.
bool less_than(const Value& a, const Value& b);

// Python's float repr (shortest round-trip digits, 1e+16 / 1e-05 switch points).
std::string python_float_repr(double d);

// The arguments of Python's json.dumps that transformers' tojson filter passes through.
struct JsonOptions {
  std::optional<std::string> indent;  // None: one line; otherwise the text of one indent level
  bool ensure_ascii = false;          // transformers' default (Jinja2's own tojson differs)
  bool sort_keys = false;
  // (item separator, key separator); Python's default is (", ", ": "), or (",", ": ") with indent.
  std::optional<std::pair<std::string, std::string>> separators;
  size_t max_bytes = SIZE_MAX;  // longer output is an error (kOutOfRange), not an allocation
};

// json.dumps(value, ...) exactly as Python prints it. Key order is the dict's insertion order.
std::string to_python_json(const Value& value, const JsonOptions& options = {});

// Errors raised while evaluating; the interpreter adds the template name and position and
// rethrows them as loom::Error with the same code. Limits use kOutOfRange; everything else is
// the template's (or its input's) fault: kInvalidArgument.
class TemplateRuntimeError : public std::exception {
 public:
  explicit TemplateRuntimeError(std::string message, ErrorCode code = ErrorCode::kInvalidArgument)
      : message_(std::move(message)), code_(code) {}
  const char* what() const noexcept override { return message_.c_str(); }
  ErrorCode code() const { return code_; }

 private:
  std::string message_;
  ErrorCode code_;
};

inline size_t Dict::size() const { return entries_.size(); }
inline bool Dict::empty() const { return entries_.empty(); }
inline std::vector<Dict::Entry>::const_iterator Dict::begin() const { return entries_.begin(); }
inline std::vector<Dict::Entry>::const_iterator Dict::end() const { return entries_.end(); }
inline void Dict::clear() {
  entries_.clear();
  index_.clear();
}

}  // namespace loom::jinja
