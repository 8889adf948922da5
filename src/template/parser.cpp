#include "template/parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "template/expr_parser.h"

namespace loom::jinja {
namespace {

class Parser : public ExprParser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& source, const std::string& name)
      : ExprParser(tokens, source, name) {}

  Body parse_root() {
    std::string end_tag;
    return parse_body({}, &end_tag);
  }

 private:
  // ---- statements ----

  // Parses until "{% <one of ends>"; consumes "{%" and the end tag's name and stores it in
  // *found. With no ends, parses to the end of the template.
  Body parse_body(std::initializer_list<std::string_view> ends, std::string* found) {
    NestingGuard guard(*this);
    Body body;
    size_t start = cur().offset;
    while (true) {
      const Token& t = cur();
      switch (t.kind) {
        case TokenKind::kData: {
          auto s = make_stmt(Stmt::Kind::kText, t.offset);
          s->text = t.text;
          body.push_back(std::move(s));
          advance();
          break;
        }
        case TokenKind::kVarBegin: {
          auto s = make_stmt(Stmt::Kind::kPrint, t.offset);
          advance();
          s->expr = parse_tuple(false, true, {});
          if (cur().kind != TokenKind::kVarEnd) unexpected("end of print statement '}}'");
          advance();
          body.push_back(std::move(s));
          break;
        }
        case TokenKind::kBlockBegin: {
          advance();
          if (cur().kind == TokenKind::kName &&
              std::find(ends.begin(), ends.end(), cur().text) != ends.end()) {
            *found = cur().text;
            advance();
            return body;
          }
          body.push_back(parse_statement());
          break;
        }
        case TokenKind::kEnd: {
          if (ends.size() == 0) return body;
          std::string names;
          for (auto e : ends) names += (names.empty() ? "'" : " or '") + std::string(e) + "'";
          fail_at(
              start,
              fmt::format("unexpected end of template: the block is never closed (looking for {})",
                          names));
        }
        default:
          unexpected("template data or a tag");
      }
    }
  }

  StmtPtr parse_statement() {
    const Token& t = cur();
    if (t.kind != TokenKind::kName) unexpected("a statement name");
    std::string tag = t.text;
    size_t offset = t.offset;
    advance();
    if (tag == "if") return parse_if(offset);
    if (tag == "for") return parse_for(offset);
    if (tag == "set") return parse_set(offset);
    if (tag == "macro") return parse_macro(offset);
    if (tag == "call") return parse_call_block(offset);
    if (tag == "filter") return parse_filter_block(offset);
    if (tag == "with") return parse_with(offset);
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_at(offset, fmt::format("'{}' outside of a loop", tag));
      expect_block_end();
      return make_stmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, offset);
    }
    if (tag == "generation") {
      // transformers' AssistantTracker tag: marks assistant text for masks, renders as is.
      expect_block_end();
      auto s = make_stmt(Stmt::Kind::kScope, offset);
      std::string found;
      s->body = parse_body({"endgeneration"}, &found);
      expect_block_end();
      return s;
    }
    if (tag.rfind("end", 0) == 0 || tag == "else" || tag == "elif") {
      fail_at(offset, fmt::format("unexpected '{}': no open block expects it here", tag));
    }
    fail_at(offset, fmt::format("unknown tag '{}'", tag));
  }

  StmtPtr parse_if(size_t offset) {
    auto s = make_stmt(Stmt::Kind::kIf, offset);
    while (true) {
      ExprPtr cond = parse_tuple(false, false, {});
      expect_block_end();
      std::string found;
      Body body = parse_body({"elif", "else", "endif"}, &found);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (found == "elif") continue;
      if (found == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"}, &found);
      }
      expect_block_end();
      return s;
    }
  }

  StmtPtr parse_for(size_t offset) {
    auto s = make_stmt(Stmt::Kind::kFor, offset);
    s->target = parse_assign_target(false, {"in"});
    if (!skip_name("in")) unexpected("'in'");
    s->expr = parse_tuple(false, false, {"recursive"});
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) fail_at(cur().offset, "recursive loops are not supported");
    expect_block_end();
    std::string found;
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"}, &found);
    --loop_depth_;
    if (found == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, &found);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(size_t offset) {
    ExprPtr target = parse_assign_target(true, {});
    if (skip_op("=")) {
      auto s = make_stmt(Stmt::Kind::kSet, offset);
      s->target = std::move(target);
      s->expr = parse_tuple(false, true, {});
      expect_block_end();
      return s;
    }
    auto s = make_stmt(Stmt::Kind::kSetBlock, offset);
    s->target = std::move(target);
    if (is_op("|")) {
      advance();
      s->filters = parse_filter_chain();
    }
    expect_block_end();
    std::string found;
    s->body = parse_body({"endset"}, &found);
    expect_block_end();
    return s;
  }

  void parse_signature(std::vector<MacroParam>* params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params->empty()) expect_op(",");
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      params->push_back(std::move(p));
    }
    expect_op(")");
  }

  StmtPtr parse_macro(size_t offset) {
    auto s = make_stmt(Stmt::Kind::kMacro, offset);
    s->text = expect_name();
    parse_signature(&s->params);
    expect_block_end();
    std::string found;
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    std::set<std::string> outer_names = std::move(names_seen_);
    names_seen_.clear();
    s->body = parse_body({"endmacro"}, &found);
    s->catch_varargs = names_seen_.count("varargs") > 0;
    s->catch_kwargs = names_seen_.count("kwargs") > 0;
    names_seen_.merge(outer_names);
    loop_depth_ = saved_loops;
    if (cur().kind == TokenKind::kName && cur().text == s->text) advance();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(size_t offset) {
    auto s = make_stmt(Stmt::Kind::kCallBlock, offset);
    if (is_op("(")) parse_signature(&s->params);
    s->expr = parse_expression(true);
    if (s->expr->kind != Expr::Kind::kCall)
      fail_at(s->expr->offset, "expected a call after 'call'");
    expect_block_end();
    std::string found;
    s->body = parse_body({"endcall"}, &found);
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(size_t offset) {
    auto s = make_stmt(Stmt::Kind::kFilterBlock, offset);
    s->filters = parse_filter_chain();
    expect_block_end();
    std::string found;
    s->body = parse_body({"endfilter"}, &found);
    expect_block_end();
    return s;
  }

  StmtPtr parse_with(size_t offset) {
    auto s = make_stmt(Stmt::Kind::kWith, offset);
    while (cur().kind != TokenKind::kBlockEnd) {
      if (!s->assigns.empty()) expect_op(",");
      ExprPtr target = parse_assign_target(false, {});
      expect_op("=");
      s->assigns.emplace_back(std::move(target), parse_expression(true));
    }
    expect_block_end();
    std::string found;
    s->body = parse_body({"endwith"}, &found);
    expect_block_end();
    return s;
  }

  // A name, a tuple of names ("k, v"), or with_namespace, "ns.attr".
  ExprPtr parse_assign_target(bool with_namespace,
                              std::initializer_list<std::string_view> extra_ends) {
    if (with_namespace && cur().kind == TokenKind::kName && is_op(".", 1)) {
      auto e = make(Expr::Kind::kGetAttr, cur().offset);
      auto ns = make(Expr::Kind::kName, cur().offset);
      ns->name = expect_name();
      advance();  // '.'
      e->name = expect_name();
      e->args.push_back(std::move(ns));
      return e;
    }
    size_t offset = cur().offset;
    ExprPtr target = parse_tuple(true, true, extra_ends);
    auto assignable = [](const Expr& e) { return e.kind == Expr::Kind::kName; };
    bool ok = assignable(*target);
    if (target->kind == Expr::Kind::kTuple) {
      ok = !target->args.empty();
      for (const auto& item : target->args) ok = ok && assignable(*item);
    }
    if (!ok) fail_at(offset, "can only assign to names or tuples of names");
    if (target->kind == Expr::Kind::kName &&
        (target->name == "true" || target->name == "false" || target->name == "none")) {
      fail_at(offset, fmt::format("cannot assign to '{}'", target->name));
    }
    return target;
  }

  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(const std::vector<Token>& tokens, const std::string& source,
                    const std::string& name) {
  return Parser(tokens, source, name).parse_root();
}

}  // namespace loom::jinja
