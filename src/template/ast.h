// The syntax tree of a parsed template. Nodes are plain structs owned by their parent through
// unique_ptr; a parsed tree is never modified, so many renders may walk it at once.
// Each node records the byte offset it came from, for error messages.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace loom::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kList,      // args = items
    kTuple,     // args = items
    kDict,      // args = key0, value0, key1, value1...
    kGetAttr,   // args[0].name
    kGetItem,   // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]], missing parts are null
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs)
    kTest,      // args[0] is name(args[1..], kwargs)
    kNeg,       // -args[0]
    kPos,       // +args[0]
    kNot,       // not args[0]
    kBinary,    // args[0] name args[1] for + - * / // % ** ~
    kAnd,       // args[0] and args[1]
    kOr,        // args[0] or args[1]
    kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ... (==, !=, <, <=, >, >=, in, notin)
    kCondExpr,  // args[0] if args[1] else args[2] (args[2] may be null)
  };

  Kind kind;
  size_t offset = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr dyn_args;    // f(*xs): xs, or null
  ExprPtr dyn_kwargs;  // f(**d): d, or null
  std::vector<std::string> ops;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// A filter applied by a {% filter %} block or a block {% set x | f %}.
struct FilterCall {
  std::string name;
  size_t offset = 0;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when the parameter has no default
};

struct Stmt {
  enum class Kind {
    kText,         // text
    kPrint,        // {{ expr }}
    kIf,           // branches (cond, body); else_body
    kFor,          // for target in expr [if cond]: body, else_body
    kSet,          // set target = expr
    kSetBlock,     // set target: body | filters
    kMacro,        // macro text(params): body
    kCallBlock,    // call(params) expr: body
    kFilterBlock,  // filter filters: body
    kWith,         // with assigns: body
    kBreak,
    kContinue,
    kScope,  // a tag whose body renders as is ({% generation %}, from transformers)
  };

  Kind kind;
  size_t offset = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr target;
  ExprPtr cond;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  // A macro whose body mentions `varargs` / `kwargs` accepts extra positional / keyword
  // arguments into them (Jinja2 decides this the same way, from the body).
  bool catch_varargs = false;
  bool catch_kwargs = false;
  std::vector<FilterCall> filters;
  std::vector<std::pair<ExprPtr, ExprPtr>> assigns;
};

}  // namespace loom::jinja
