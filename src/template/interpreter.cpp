#include "template/interpreter.h"

#include <fmt/format.h>

#include "template/builtins.h"
#include "template/lexer.h"
#include "template/operators.h"
#include "template/text.h"

namespace loom::jinja {

class Interpreter::DepthGuard {
 public:
  explicit DepthGuard(Interpreter& in) : in_(in) {
    if (++in_.depth_ > in_.options_.limits.max_depth) {
      --in_.depth_;
      throw TemplateRuntimeError(fmt::format("template nesting or recursion deeper than {} levels",
                                             in_.options_.limits.max_depth),
                                 ErrorCode::kOutOfRange);
    }
  }
  ~DepthGuard() { --in_.depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  Interpreter& in_;
};

Interpreter::Interpreter(const std::string& source, const std::string& name,
                         const RenderOptions& options)
    : source_(source), name_(name), options_(options) {}

Interpreter::~Interpreter() {
  for (Value& ns : namespaces_) ns.namespace_attrs().clear();
}

void Interpreter::fail_at(size_t offset, const std::string& message, ErrorCode code) {
  throw Error(code, describe_location(source_, name_, offset) + ": " + message);
}

std::string Interpreter::render(const Body& root, const Dict& context) {
  context_ = &context;
  globals_ = make_globals();
  std::string out;
  out_ = &out;
  try {
    exec(root);
  } catch (const TemplateRuntimeError& e) {
    fail_at(0, e.what(), e.code());
  }
  return out;
}

void Interpreter::step(uint64_t n) {
  steps_ += n;
  if (steps_ > options_.limits.max_steps) {
    throw TemplateRuntimeError(
        fmt::format("template exceeded its budget of {} evaluation steps (endless loop?)",
                    options_.limits.max_steps),
        ErrorCode::kOutOfRange);
  }
}

void Interpreter::write(std::string_view text) {
  if (out_->size() + text.size() > options_.limits.max_output_bytes) {
    throw TemplateRuntimeError(fmt::format("template output exceeds the limit of {} bytes",
                                           options_.limits.max_output_bytes),
                               ErrorCode::kOutOfRange);
  }
  out_->append(text);
}

std::string Interpreter::capture(const Body& body) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  exec(body);
  out_ = saved;
  return buffer;
}

// ---- statements ----

Interpreter::Flow Interpreter::exec(const Body& body) {
  for (const StmtPtr& s : body) {
    Flow flow = exec_stmt(*s);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s) {
  try {
    DepthGuard guard(*this);
    step();
    switch (s.kind) {
      case Stmt::Kind::kText:
        write(s.text);
        return Flow::kNormal;
      case Stmt::Kind::kPrint:
        write(eval(*s.expr).str());
        return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches) {
          if (eval(*cond).truthy()) return exec(body);
        }
        return exec(s.else_body);
      case Stmt::Kind::kFor:
        return exec_for(s);
      case Stmt::Kind::kSet:
        assign(*s.target, eval(*s.expr));
        return Flow::kNormal;
      case Stmt::Kind::kSetBlock:
        assign(*s.target, apply_filters(s.filters, Value(capture(s.body))));
        return Flow::kNormal;
      case Stmt::Kind::kMacro: {
        const Stmt* macro = &s;
        scope_->vars.set(s.text, Value::function(s.text, [macro](Interpreter& in, CallArgs& args) {
                           return in.call_macro(*macro, args);
                         }));
        return Flow::kNormal;
      }
      case Stmt::Kind::kCallBlock: {
        const Expr& call = *s.expr;
        Value callee = eval(*call.args[0]);
        CallArgs args = eval_args(call.args, 1, call.kwargs, &call);
        args.keyword.emplace_back("caller", make_caller(s));
        write(this->call(callee, args).str());
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock:
        write(apply_filters(s.filters, Value(capture(s.body))).str());
        return Flow::kNormal;
      case Stmt::Kind::kWith: {
        Scope scope{scope_, {}};
        for (const auto& [target, value] : s.assigns) {
          Value v = eval(*value);  // evaluated in the enclosing scope, as Jinja2 does
          Scope* saved = scope_;
          scope_ = &scope;
          assign(*target, v);
          scope_ = saved;
        }
        Scope* saved = scope_;
        scope_ = &scope;
        Flow flow = exec(s.body);
        scope_ = saved;
        return flow;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kScope:
        return exec(s.body);
    }
  } catch (const TemplateRuntimeError& e) {
    fail_at(s.offset, e.what(), e.code());
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s) {
  std::vector<Value> items = iterate(eval(*s.expr));
  Scope* saved = scope_;
  if (s.cond) {
    std::vector<Value> kept;
    for (Value& item : items) {
      step();
      Scope scope{saved, {}};
      scope_ = &scope;
      assign(*s.target, item);
      bool keep = eval(*s.cond).truthy();
      scope_ = saved;
      if (keep) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.else_body);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    step();
    Scope scope{saved, {}};
    Dict loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(1));
    loop.set("depth0", Value(0));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)]
                               : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)]
                                   : Value::undefined("there is no next item"));
    loop.set("cycle", Value::function("loop.cycle", [i](Interpreter&, CallArgs& args) {
               if (args.positional.empty())
                 throw TemplateRuntimeError("no items for cycling given");
               return args.positional[static_cast<size_t>(i) % args.positional.size()];
             }));
    scope.vars.set("loop", Value::dict(std::move(loop)));
    scope_ = &scope;
    assign(*s.target, items[static_cast<size_t>(i)]);
    Flow flow = exec(s.body);
    scope_ = saved;
    if (flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::assign(const Expr& target, const Value& v) {
  switch (target.kind) {
    case Expr::Kind::kName:
      scope_->vars.set(target.name, v);
      return;
    case Expr::Kind::kTuple: {
      std::vector<Value> parts = iterate(v);
      if (parts.size() != target.args.size()) {
        throw TemplateRuntimeError(
            fmt::format("cannot unpack {} values into {} names", parts.size(), target.args.size()));
      }
      for (size_t i = 0; i < parts.size(); ++i) assign(*target.args[i], parts[i]);
      return;
    }
    case Expr::Kind::kGetAttr: {
      Value ns = lookup(target.args[0]->name);
      if (!ns.is_namespace())
        throw TemplateRuntimeError("cannot assign attribute on non-namespace object");
      ns.namespace_attrs().set(target.name, v);
      return;
    }
    default:
      throw TemplateRuntimeError("cannot assign to this expression");
  }
}

Value Interpreter::call_macro(const Stmt& macro, CallArgs& args) {
  DepthGuard guard(*this);
  if (args.positional.size() > macro.params.size() && !macro.catch_varargs) {
    throw TemplateRuntimeError(fmt::format("macro '{}' takes not more than {} argument(s)",
                                           macro.text, macro.params.size()));
  }
  Scope frame{&root_, {}};
  if (macro.catch_varargs) {
    std::vector<Value> extra;
    for (size_t i = macro.params.size(); i < args.positional.size(); ++i)
      extra.push_back(args.positional[i]);
    frame.vars.set("varargs", Value::tuple(std::move(extra)));
  }
  Dict extra_keywords;
  Scope* saved = scope_;
  scope_ = &frame;  // defaults may refer to earlier parameters
  for (size_t i = 0; i < macro.params.size(); ++i) {
    const MacroParam& p = macro.params[i];
    Value v = Value::undefined(fmt::format("'{}' is undefined", p.name));
    bool given = false;
    if (i < args.positional.size()) {
      v = args.positional[i];
      given = true;
    }
    for (auto& [key, value] : args.keyword) {
      if (key != p.name) continue;
      if (given)
        throw TemplateRuntimeError(
            fmt::format("macro '{}' got multiple values for argument '{}'", macro.text, key));
      v = value;
      given = true;
    }
    if (!given && p.default_value) v = eval(*p.default_value);
    frame.vars.set(p.name, std::move(v));
  }
  for (auto& [key, value] : args.keyword) {
    bool known = false;
    for (const MacroParam& p : macro.params) known = known || p.name == key;
    if (known) continue;
    if (key == "caller") {
      frame.vars.set("caller", value);
    } else if (macro.catch_kwargs) {
      extra_keywords.set(key, value);
    } else {
      throw TemplateRuntimeError(
          fmt::format("macro '{}' takes no keyword argument '{}'", macro.text, key));
    }
  }
  if (macro.catch_kwargs) frame.vars.set("kwargs", Value::dict(std::move(extra_keywords)));
  std::string text = capture(macro.body);
  scope_ = saved;
  return Value(std::move(text));
}

Value Interpreter::make_caller(const Stmt& call_block) {
  const Stmt* block = &call_block;
  Scope* site = scope_;  // the caller body sees the variables around the call block
  return Value::function("caller", [block, site](Interpreter& in, CallArgs& args) {
    DepthGuard guard(in);
    Scope frame{site, {}};
    for (size_t i = 0; i < block->params.size(); ++i) {
      const MacroParam& p = block->params[i];
      Value v;
      if (i < args.positional.size()) {
        v = args.positional[i];
      } else if (p.default_value) {
        v = in.eval(*p.default_value);
      }
      for (auto& [key, value] : args.keyword) {
        if (key == p.name) v = value;
      }
      frame.vars.set(p.name, std::move(v));
    }
    Scope* saved = in.scope_;
    in.scope_ = &frame;
    std::string text = in.capture(block->body);
    in.scope_ = saved;
    return Value(std::move(text));
  });
}

Value Interpreter::apply_filters(const std::vector<FilterCall>& filters, Value v) {
  for (const FilterCall& f : filters) {
    try {
      CallArgs args = eval_args(f.args, 0, f.kwargs);
      v = apply_filter(f.name, v, args);
    } catch (const TemplateRuntimeError& e) {
      fail_at(f.offset, e.what(), e.code());
    }
  }
  return v;
}

// ---- expressions ----

Value Interpreter::lookup(const std::string& name) const {
  for (const Scope* s = scope_; s; s = s->parent) {
    if (const Value* v = s->vars.find(name)) return *v;
  }
  if (const Value* v = context_->find(name)) return *v;
  if (const Value* v = globals_.find(name)) return *v;
  return Value::undefined(fmt::format("'{}' is undefined", name));
}

Value Interpreter::eval(const Expr& e) {
  try {
    DepthGuard guard(*this);
    step();
    return eval_inner(e);
  } catch (const TemplateRuntimeError& err) {
    fail_at(e.offset, err.what(), err.code());
  }
}

CallArgs Interpreter::eval_args(const std::vector<ExprPtr>& args, size_t first,
                                const std::vector<std::pair<std::string, ExprPtr>>& kwargs,
                                const Expr* call) {
  CallArgs out;
  for (size_t i = first; i < args.size(); ++i) out.positional.push_back(eval(*args[i]));
  for (const auto& [key, value] : kwargs) out.keyword.emplace_back(key, eval(*value));
  if (call && call->dyn_args) {
    for (Value& v : iterate(eval(*call->dyn_args))) out.positional.push_back(std::move(v));
  }
  if (call && call->dyn_kwargs) {
    Value d = eval(*call->dyn_kwargs);
    if (!d.is_dict()) throw TemplateRuntimeError("argument after ** must be a mapping");
    for (const auto& [key, value] : d.dict_data()) out.keyword.emplace_back(key, value);
  }
  return out;
}

Value Interpreter::eval_inner(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kName:
      return lookup(e.name);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      for (const ExprPtr& item : e.args) items.push_back(eval(*item));
      return e.kind == Expr::Kind::kList ? Value::list(std::move(items))
                                         : Value::tuple(std::move(items));
    }
    case Expr::Kind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value key = eval(*e.args[i]);
        d.set(key.is_string() ? key.as_string() : key.str(), eval(*e.args[i + 1]));
      }
      return Value::dict(std::move(d));
    }
    case Expr::Kind::kGetAttr:
      return get_attr(eval(*e.args[0]), e.name);
    case Expr::Kind::kGetItem:
      return get_item(eval(*e.args[0]), eval(*e.args[1]));
    case Expr::Kind::kSlice: {
      Value parts[3];
      for (size_t i = 0; i < 3; ++i) {
        if (e.args[i + 1]) parts[i] = eval(*e.args[i + 1]);
      }
      return slice(eval(*e.args[0]), parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall:
      return eval_call(e);
    case Expr::Kind::kFilter: {
      Value subject = eval(*e.args[0]);
      CallArgs args = eval_args(e.args, 1, e.kwargs, &e);
      return apply_filter(e.name, subject, args);
    }
    case Expr::Kind::kTest: {
      Value subject = eval(*e.args[0]);
      CallArgs args = eval_args(e.args, 1, e.kwargs, &e);
      return Value(apply_test(e.name, subject, args));
    }
    case Expr::Kind::kNeg:
      return negate(eval(*e.args[0]));
    case Expr::Kind::kPos: {
      Value v = eval(*e.args[0]);
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number())
        throw TemplateRuntimeError(
            fmt::format("bad operand type for unary +: '{}'", v.type_name()));
      return v.is_bool() ? Value(v.as_int()) : v;
    }
    case Expr::Kind::kNot:
      return Value(!eval(*e.args[0]).truthy());
    case Expr::Kind::kAnd: {
      Value left = eval(*e.args[0]);
      return left.truthy() ? eval(*e.args[1]) : left;
    }
    case Expr::Kind::kOr: {
      Value left = eval(*e.args[0]);
      return left.truthy() ? left : eval(*e.args[1]);
    }
    case Expr::Kind::kBinary: {
      Value left = eval(*e.args[0]);
      Value right = eval(*e.args[1]);
      return binary_op(e.name, left, right, options_.limits.max_output_bytes);
    }
    case Expr::Kind::kCompare:
      return eval_compare(e);
    case Expr::Kind::kCondExpr:
      if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
      if (e.args[2]) return eval(*e.args[2]);
      return Value::undefined(
          "the inline if-expression evaluated to false and has no else section");
  }
  return Value();
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.args[0]);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1]);
    const std::string& op = e.ops[i];
    bool result;
    if (op == "==") {
      result = equals(left, right);
    } else if (op == "!=") {
      result = !equals(left, right);
    } else if (op == "in") {
      result = contains(right, left);
    } else if (op == "notin") {
      result = !contains(right, left);
    } else {
      if (left.is_undefined()) fail_undefined(left);
      if (right.is_undefined()) fail_undefined(right);
      if (op == "<") {
        result = less_than(left, right);
      } else if (op == ">") {
        result = less_than(right, left);
      } else if (op == "<=") {
        result = less_than(left, right) || equals(left, right);
      } else {
        result = less_than(right, left) || equals(left, right);
      }
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Interpreter::eval_call(const Expr& e) {
  Value callee = eval(*e.args[0]);
  CallArgs args = eval_args(e.args, 1, e.kwargs, &e);
  return call(callee, args);
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_function()) {
    DepthGuard guard(*this);
    return callee.function_data().call(*this, args);
  }
  if (callee.is_undefined()) fail_undefined(callee);
  throw TemplateRuntimeError(fmt::format("'{}' object is not callable", callee.type_name()));
}

Value Interpreter::apply_filter(const std::string& name, const Value& subject, CallArgs& args) {
  FilterFn filter = find_filter(name);
  if (!filter) throw TemplateRuntimeError(fmt::format("no filter named '{}'", name));
  step();
  return filter(*this, subject, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& subject, CallArgs& args) {
  TestFn test = find_test(name);
  if (!test) throw TemplateRuntimeError(fmt::format("no test named '{}'", name));
  step();
  return test(*this, subject, args);
}

namespace {

Value no_attribute(const Value& object, const std::string& name) {
  return Value::undefined(
      fmt::format("'{} object' has no attribute '{}'", object.type_name(), name));
}

}  // namespace

Value Interpreter::get_attr(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      fail_undefined(object);
    case Value::Kind::kDict: {
      // Jinja2 tries the Python attribute first, so d.items is the method even if d has an
      // "items" key; d['items'] is the key.
      if (auto method = find_method(object, name)) return *method;
      if (const Value* v = object.dict_data().find(name)) return *v;
      return no_attribute(object, name);
    }
    case Value::Kind::kNamespace:
      if (const Value* v = object.namespace_attrs().find(name)) return *v;
      return no_attribute(object, name);
    default:
      if (auto method = find_method(object, name)) return *method;
      return no_attribute(object, name);
  }
}

Value Interpreter::get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::kUndefined:
      fail_undefined(object);
    case Value::Kind::kDict:
      if (key.is_string()) {
        if (const Value* v = object.dict_data().find(key.as_string())) return *v;
        if (auto method = find_method(object, key.as_string())) return *method;
      }
      return Value::undefined(fmt::format("'dict object' has no attribute {}", key.repr()));
    case Value::Kind::kNamespace:
      if (key.is_string()) return get_attr(object, key.as_string());
      break;
    case Value::Kind::kList:
    case Value::Kind::kString:
      if (key.is_int() || key.is_bool()) {
        int64_t n = length(object);
        int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
        if (i < 0 || i >= n) {
          return Value::undefined(
              fmt::format("{} object has no element {}", object.type_name(), key.as_int()));
        }
        if (object.is_list()) return object.items()[static_cast<size_t>(i)];
        return slice(object, Value(i), Value(i + 1), Value());
      }
      if (key.is_string()) return get_attr(object, key.as_string());
      break;
    default:
      break;
  }
  return Value::undefined(
      fmt::format("'{} object' has no attribute {}", object.type_name(), key.repr()));
}

}  // namespace loom::jinja
