// The tree-walking evaluator. One Interpreter renders one template once: it owns the render's
// variable scopes, output buffer and work counters, and is never shared between threads
// (the syntax tree it walks is shared and read-only).
//
// Scoping follows Jinja2: each for-loop iteration, macro call, call-block body and `with` gets
// a fresh scope; `set` writes to the innermost one, so a `set` inside a loop is not seen after
// it (templates use namespace() for that). Lookups go scopes -> render context -> globals.
//
// Safety: every statement, expression and loop iteration costs a step; nesting (including macro
// recursion) is bounded; output is bounded. Exceeding a limit is a loom::Error (kOutOfRange).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>

#include "template/ast.h"
#include "template/options.h"
#include "template/value.h"

namespace loom::jinja {

class Interpreter {
 public:
  Interpreter(const std::string& source, const std::string& name, const RenderOptions& options);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string render(const Body& root, const Dict& context);

  // ---- used by the built-ins ----
  Value call(const Value& callee, CallArgs& args);
  Value apply_filter(const std::string& name, const Value& subject, CallArgs& args);
  bool apply_test(const std::string& name, const Value& subject, CallArgs& args);
  Value get_attr(const Value& object, const std::string& name);
  Value get_item(const Value& object, const Value& key);
  // Charges n units of work; throws once the budget is spent.
  void step(uint64_t n = 1);
  const RenderOptions& options() const { return options_; }
  // Namespaces are the only values a template can mutate, so the only way to build a reference
  // cycle (ns.self = [ns]); they are emptied when the render ends to break any such cycle.
  void track_namespace(const Value& ns) { namespaces_.push_back(ns); }

 private:
  struct Scope {
    Scope* parent;
    Dict vars;
  };
  enum class Flow { kNormal, kBreak, kContinue };
  class DepthGuard;

  Flow exec(const Body& body);
  Flow exec_stmt(const Stmt& s);
  Flow exec_for(const Stmt& s);
  void exec_set(const Stmt& s);
  Value eval(const Expr& e);
  Value eval_inner(const Expr& e);
  Value eval_call(const Expr& e);
  Value eval_compare(const Expr& e);
  // Evaluates args[first..] and kwargs, then spreads `call`'s *args / **kwargs if it has them.
  CallArgs eval_args(const std::vector<ExprPtr>& args, size_t first,
                     const std::vector<std::pair<std::string, ExprPtr>>& kwargs,
                     const Expr* call = nullptr);
  Value apply_filters(const std::vector<FilterCall>& filters, Value v);

  Value lookup(const std::string& name) const;
  void assign(const Expr& target, const Value& v);
  Value call_macro(const Stmt& macro, CallArgs& args);
  Value make_caller(const Stmt& call_block);
  // Runs `body` with output captured into the returned string.
  std::string capture(const Body& body);
  void write(std::string_view text);
  [[noreturn]] void fail_at(size_t offset, const std::string& message, ErrorCode code);

  const std::string& source_;
  const std::string& name_;
  const RenderOptions& options_;
  const Dict* context_ = nullptr;
  Dict globals_;
  Scope root_{nullptr, {}};
  Scope* scope_ = &root_;
  std::string* out_ = nullptr;
  std::vector<Value> namespaces_;
  uint64_t steps_ = 0;
  int depth_ = 0;
};

}  // namespace loom::jinja
