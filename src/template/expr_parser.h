// Internal to the parser: the token cursor and the expression grammar, shared by the statement
// parser (parser.cpp). Expressions follow Jinja2's precedence, loosest first:
// `x if c else y`, or, and, not, comparisons and `in`, + -, ~, * / // %, **, unary - +,
// then postfix (.attr, [index], call), filters `|f` and tests `is t`.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "template/ast.h"
#include "template/lexer.h"
#include "template/parser.h"

namespace loom::jinja {

class ExprParser {
 public:
  ExprParser(const std::vector<Token>& tokens, const std::string& source, const std::string& name)
      : tokens_(tokens), source_(source), name_(name) {}

  // Jinja2's parse_tuple: "a, b" is a tuple, "(a)" is a; `simplified` parses primaries only
  // (assignment targets); extra_ends are names that end the tuple ("in" in a for loop).
  bool at_tuple_end(std::initializer_list<std::string_view> extra_ends) const;
  ExprPtr parse_tuple(bool simplified, bool with_condexpr,
                      std::initializer_list<std::string_view> extra_ends,
                      bool explicit_parens = false);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr left, ExprPtr right, size_t offset);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  void parse_call_args(Expr* e);
  ExprPtr parse_call(ExprPtr node);
  ExprPtr parse_filter(ExprPtr subject);
  std::vector<FilterCall> parse_filter_chain();
  ExprPtr parse_test(ExprPtr subject);
  ExprPtr parse_filter_expr(ExprPtr node);

 protected:
  // ---- token helpers ----
  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool is_op(std::string_view op, size_t n = 0) const {
    return peek(n).kind == TokenKind::kOp && peek(n).text == op;
  }
  bool is_name(std::string_view name, size_t n = 0) const {
    return peek(n).kind == TokenKind::kName && peek(n).text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kData:
        return "template data";
      case TokenKind::kVarBegin:
        return "'{{'";
      case TokenKind::kVarEnd:
        return "end of print statement '}}'";
      case TokenKind::kBlockBegin:
        return "'{%'";
      case TokenKind::kBlockEnd:
        return "end of statement block '%}'";
      case TokenKind::kName:
        return "'" + t.text + "'";
      case TokenKind::kString:
        return "string literal";
      case TokenKind::kInt:
        return "integer literal";
      case TokenKind::kFloat:
        return "float literal";
      case TokenKind::kOp:
        return "'" + t.text + "'";
      case TokenKind::kEnd:
        return "end of template";
    }
    return "token";
  }

  [[noreturn]] void fail_at(size_t offset, const std::string& message) const {
    fail(ErrorCode::kInvalidArgument, "{}: {}", describe_location(source_, name_, offset), message);
  }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail_at(cur().offset, fmt::format("expected {}, got {}", expected, describe(cur())));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected(fmt::format("'{}'", op));
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::kName) unexpected("a name");
    std::string name = cur().text;
    advance();
    return name;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::kBlockEnd) unexpected("end of statement block '%}'");
    advance();
  }

  struct NestingGuard {
    NestingGuard(ExprParser& p) : parser(p) {
      if (++parser.nesting_ > kMaxNesting) {
        parser.fail_at(parser.cur().offset,
                       fmt::format("template nests deeper than {} levels", kMaxNesting));
      }
    }
    ~NestingGuard() { --parser.nesting_; }
    ExprParser& parser;
  };

  ExprPtr make(Expr::Kind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }
  StmtPtr make_stmt(Stmt::Kind kind, size_t offset) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->offset = offset;
    return s;
  }

  const std::vector<Token>& tokens_;
  const std::string& source_;
  const std::string& name_;
  size_t pos_ = 0;
  int nesting_ = 0;
  std::set<std::string> names_seen_;  // every variable name referenced (for macro varargs)
};

}  // namespace loom::jinja
