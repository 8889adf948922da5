#include "template/expr_parser.h"

#include <fmt/format.h>

#include "core/error.h"
#include "template/builtins.h"

namespace loom::jinja {

// ---- expressions ----
bool ExprParser::at_tuple_end(std::initializer_list<std::string_view> extra_ends) const {
  TokenKind k = cur().kind;
  if (k == TokenKind::kVarEnd || k == TokenKind::kBlockEnd || is_op(")")) return true;
  for (auto e : extra_ends) {
    if (is_name(e)) return true;
  }
  return false;
}

// Jinja2's parse_tuple: "a, b" is a tuple; "(a)" is just a.
ExprPtr ExprParser::parse_tuple(bool simplified, bool with_condexpr,
                                std::initializer_list<std::string_view> extra_ends,
                                bool explicit_parens) {
  size_t offset = cur().offset;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (at_tuple_end(extra_ends)) break;
    if (simplified) {
      items.push_back(parse_primary());
    } else {
      items.push_back(parse_expression(with_condexpr));
    }
    if (is_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) unexpected("an expression");
  }
  auto e = make(Expr::Kind::kTuple, offset);
  e->args = std::move(items);
  return e;
}

ExprPtr ExprParser::parse_expression(bool with_condexpr) {
  NestingGuard guard(*this);
  if (!with_condexpr) return parse_or();
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    auto e = make(Expr::Kind::kCondExpr, cur().offset);
    advance();
    ExprPtr cond = parse_or();
    ExprPtr otherwise;
    if (skip_name("else")) otherwise = parse_expression(true);
    e->args.push_back(std::move(expr));
    e->args.push_back(std::move(cond));
    e->args.push_back(std::move(otherwise));
    expr = std::move(e);
  }
  return expr;
}

ExprPtr ExprParser::binary(Expr::Kind kind, std::string op, ExprPtr left, ExprPtr right,
                           size_t offset) {
  auto e = make(kind, offset);
  e->name = std::move(op);
  e->args.push_back(std::move(left));
  e->args.push_back(std::move(right));
  return e;
}

ExprPtr ExprParser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    size_t offset = cur().offset;
    advance();
    left = binary(Expr::Kind::kOr, "or", std::move(left), parse_and(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    size_t offset = cur().offset;
    advance();
    left = binary(Expr::Kind::kAnd, "and", std::move(left), parse_not(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_not() {
  if (is_name("not")) {
    auto e = make(Expr::Kind::kNot, cur().offset);
    advance();
    NestingGuard guard(*this);
    e->args.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr ExprParser::parse_compare() {
  size_t offset = cur().offset;
  ExprPtr first = parse_math1();
  std::vector<std::string> ops;
  std::vector<ExprPtr> operands;
  while (true) {
    if (cur().kind == TokenKind::kOp &&
        (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
         cur().text == ">" || cur().text == ">=")) {
      ops.push_back(cur().text);
      advance();
    } else if (is_name("in")) {
      ops.push_back("in");
      advance();
    } else if (is_name("not") && is_name("in", 1)) {
      ops.push_back("notin");
      advance();
      advance();
    } else {
      break;
    }
    operands.push_back(parse_math1());
  }
  if (ops.empty()) return first;
  auto e = make(Expr::Kind::kCompare, offset);
  e->args.push_back(std::move(first));
  for (auto& o : operands) e->args.push_back(std::move(o));
  e->ops = std::move(ops);
  return e;
}

ExprPtr ExprParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    std::string op = cur().text;
    size_t offset = cur().offset;
    advance();
    left = binary(Expr::Kind::kBinary, op, std::move(left), parse_concat(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    size_t offset = cur().offset;
    advance();
    left = binary(Expr::Kind::kBinary, "~", std::move(left), parse_math2(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    std::string op = cur().text;
    size_t offset = cur().offset;
    advance();
    left = binary(Expr::Kind::kBinary, op, std::move(left), parse_pow(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    size_t offset = cur().offset;
    advance();
    left = binary(Expr::Kind::kBinary, "**", std::move(left), parse_unary(true), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_unary(bool with_filter) {
  NestingGuard guard(*this);
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    node = make(is_op("-") ? Expr::Kind::kNeg : Expr::Kind::kPos, cur().offset);
    advance();
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr ExprParser::parse_primary() {
  const Token& t = cur();
  size_t offset = t.offset;
  switch (t.kind) {
    case TokenKind::kName: {
      auto e = make(Expr::Kind::kLiteral, offset);
      if (t.text == "true" || t.text == "True") {
        e->literal = Value(true);
      } else if (t.text == "false" || t.text == "False") {
        e->literal = Value(false);
      } else if (t.text == "none" || t.text == "None") {
        e->literal = Value(nullptr);
      } else {
        e->kind = Expr::Kind::kName;
        e->name = t.text;
        names_seen_.insert(t.text);
      }
      advance();
      return e;
    }
    case TokenKind::kString: {
      std::string s;
      while (cur().kind == TokenKind::kString) {  // adjacent literals concatenate
        s += cur().text;
        advance();
      }
      auto e = make(Expr::Kind::kLiteral, offset);
      e->literal = Value(std::move(s));
      return e;
    }
    case TokenKind::kInt:
    case TokenKind::kFloat: {
      auto e = make(Expr::Kind::kLiteral, offset);
      e->literal = t.kind == TokenKind::kInt ? Value(t.int_value) : Value(t.float_value);
      advance();
      return e;
    }
    case TokenKind::kOp:
      if (t.text == "(") {
        advance();
        ExprPtr e = parse_tuple(false, true, {}, true);
        expect_op(")");
        return e;
      }
      if (t.text == "[") {
        advance();
        auto e = make(Expr::Kind::kList, offset);
        while (!is_op("]")) {
          if (!e->args.empty()) expect_op(",");
          if (is_op("]")) break;
          e->args.push_back(parse_expression(true));
        }
        expect_op("]");
        return e;
      }
      if (t.text == "{") {
        advance();
        auto e = make(Expr::Kind::kDict, offset);
        while (!is_op("}")) {
          if (!e->args.empty()) expect_op(",");
          if (is_op("}")) break;
          e->args.push_back(parse_expression(true));
          expect_op(":");
          e->args.push_back(parse_expression(true));
        }
        expect_op("}");
        return e;
      }
      break;
    default:
      break;
  }
  unexpected("an expression");
}

ExprPtr ExprParser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".")) {
      size_t offset = cur().offset;
      advance();
      if (cur().kind == TokenKind::kName) {
        auto e = make(Expr::Kind::kGetAttr, offset);
        e->name = cur().text;
        e->args.push_back(std::move(node));
        node = std::move(e);
      } else if (cur().kind == TokenKind::kInt) {
        auto e = make(Expr::Kind::kGetItem, offset);
        auto index = make(Expr::Kind::kLiteral, cur().offset);
        index->literal = Value(cur().int_value);
        e->args.push_back(std::move(node));
        e->args.push_back(std::move(index));
        node = std::move(e);
      } else {
        unexpected("an attribute name");
      }
      advance();
    } else if (is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_subscript(ExprPtr node) {
  size_t offset = cur().offset;
  advance();                   // '['
  std::vector<ExprPtr> parts;  // start, stop, step; a plain index has one part
  bool is_slice = false;
  if (!is_op(":")) parts.push_back(parse_expression(true));
  if (is_op(":")) {
    is_slice = true;
    if (parts.empty()) parts.push_back(nullptr);
    advance();
    parts.push_back(is_op("]") || is_op(":") ? nullptr : parse_expression(true));
    if (skip_op(":")) {
      parts.push_back(is_op("]") ? nullptr : parse_expression(true));
    } else {
      parts.push_back(nullptr);
    }
  }
  expect_op("]");
  auto e = make(is_slice ? Expr::Kind::kSlice : Expr::Kind::kGetItem, offset);
  e->args.push_back(std::move(node));
  for (auto& p : parts) e->args.push_back(std::move(p));
  return e;
}

void ExprParser::parse_call_args(Expr* e) {
  expect_op("(");
  bool need_comma = false;
  while (!is_op(")")) {
    if (need_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (is_op("*") || is_op("**")) {
      bool keywords = is_op("**");
      advance();
      ExprPtr& slot = keywords ? e->dyn_kwargs : e->dyn_args;
      if (slot)
        fail_at(cur().offset, keywords ? "only one **kwargs per call" : "only one *args per call");
      slot = parse_expression(true);
    } else if (e->dyn_args || e->dyn_kwargs) {
      fail_at(cur().offset, "arguments after *args or **kwargs are not supported");
    } else if (cur().kind == TokenKind::kName && is_op("=", 1)) {
      std::string key = cur().text;
      advance();
      advance();
      e->kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!e->kwargs.empty()) fail_at(cur().offset, "positional argument after keyword argument");
      e->args.push_back(parse_expression(true));
    }
    need_comma = true;
  }
  expect_op(")");
}

ExprPtr ExprParser::parse_call(ExprPtr node) {
  auto e = make(Expr::Kind::kCall, cur().offset);
  e->args.push_back(std::move(node));
  parse_call_args(e.get());
  return e;
}

// "name(args)" after a '|' (the '|' already consumed), possibly dotted.
ExprPtr ExprParser::parse_filter(ExprPtr subject) {
  auto e = make(Expr::Kind::kFilter, cur().offset);
  e->name = expect_name();
  while (is_op(".")) {
    advance();
    e->name += '.';
    e->name += expect_name();
  }
  if (!find_filter(e->name)) fail_at(e->offset, fmt::format("no filter named '{}'", e->name));
  e->args.push_back(std::move(subject));
  if (is_op("(")) parse_call_args(e.get());
  return e;
}

std::vector<FilterCall> ExprParser::parse_filter_chain() {
  std::vector<FilterCall> chain;
  do {
    ExprPtr f = parse_filter(nullptr);
    FilterCall call;
    call.name = f->name;
    call.offset = f->offset;
    for (size_t i = 1; i < f->args.size(); ++i) call.args.push_back(std::move(f->args[i]));
    call.kwargs = std::move(f->kwargs);
    chain.push_back(std::move(call));
  } while (skip_op("|"));
  return chain;
}

ExprPtr ExprParser::parse_test(ExprPtr subject) {
  size_t offset = cur().offset;
  advance();  // 'is'
  bool negated = skip_name("not");
  auto e = make(Expr::Kind::kTest, offset);
  e->name = expect_name();
  if (!find_test(e->name)) fail_at(offset, fmt::format("no test named '{}'", e->name));
  e->args.push_back(std::move(subject));
  if (is_op("(")) {
    parse_call_args(e.get());
  } else {
    TokenKind k = cur().kind;
    bool arg_start = k == TokenKind::kName || k == TokenKind::kString || k == TokenKind::kInt ||
                     k == TokenKind::kFloat || is_op("(") || is_op("[") || is_op("{");
    if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail_at(cur().offset, "tests cannot be chained with 'is'");
      e->args.push_back(parse_postfix(parse_primary()));
    }
  }
  if (!negated) return e;
  auto n = make(Expr::Kind::kNot, offset);
  n->args.push_back(std::move(e));
  return n;
}

ExprPtr ExprParser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      advance();
      node = parse_filter(std::move(node));
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

}  // namespace loom::jinja
