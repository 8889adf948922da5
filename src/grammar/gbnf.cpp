#include "grammar/gbnf.h"

#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace loom::grammar {
namespace {

using Seq = std::vector<int32_t>;

class GbnfCompiler {
 public:
  GbnfCompiler(std::string_view src, const GbnfOptions& o)
      : src_(src), o_(o), g_(std::make_shared<Grammar>()) {}

  std::shared_ptr<Grammar> run() {
    space(true);
    while (pos_ < src_.size()) {
      rule();
      space(true);
    }
    for (const auto& [name, r] : rules_) {
      (void)r;
      if (!defined_.count(name)) {
        syntax_at(first_use_[name], fmt::format("rule '{}' is used but never defined", name));
      }
    }
    auto root = rules_.find("root");
    if (root == rules_.end() || !defined_.count("root")) {
      fail(ErrorCode::kInvalidArgument, "grammar: no 'root' rule (where the output starts)");
    }
    g_->set_start(root->second);
    g_->finalize();
    return g_;
  }

 private:
  [[noreturn]] void syntax_at(size_t at, const std::string& what) const {
    const auto [line, col] = line_col(at);
    fail(ErrorCode::kInvalidArgument, "grammar: line {}, column {}: {}", line, col, what);
  }
  [[noreturn]] void syntax(const std::string& what) const { syntax_at(pos_, what); }

  std::pair<size_t, size_t> line_col(size_t at) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return {line, col};
  }

  bool eof() const { return pos_ >= src_.size(); }
  char peek(size_t k = 0) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }

  // Blanks and comments; newlines too when `newlines`.
  void space(bool newlines) {
    while (!eof()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (!eof() && peek() != '\n' && peek() != '\r') ++pos_;
      } else {
        break;
      }
    }
  }

  static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  }

  std::string name() {
    const size_t start = pos_;
    while (!eof() && word_char(peek())) ++pos_;
    if (pos_ == start) syntax("expected a rule name");
    return std::string(src_.substr(start, pos_ - start));
  }

  int32_t rule_ref(const std::string& n, size_t at) {
    auto it = rules_.find(n);
    if (it != rules_.end()) return it->second;
    const int32_t r = g_->add_rule(n);
    rules_.emplace(n, r);
    first_use_.emplace(n, at);
    return r;
  }

  void add(int32_t rule, Seq rhs) {
    symbols_ += rhs.size() + 1;
    if (symbols_ > o_.max_symbols) {
      fail(ErrorCode::kOutOfRange, "grammar: more than {} symbols once repetitions are expanded",
           o_.max_symbols);
    }
    g_->add_production(rule, std::move(rhs));
  }

  int32_t fresh(const std::string& base) {
    return g_->add_rule(fmt::format("{}#{}", base, ++n_fresh_));
  }

  void rule() {
    const size_t at = pos_;
    const std::string n = name();
    space(false);
    if (src_.substr(pos_, 3) != "::=") syntax(fmt::format("expected '::=' after '{}'", n));
    pos_ += 3;
    space(true);
    if (defined_.count(n)) syntax_at(at, fmt::format("rule '{}' is defined twice", n));
    defined_.insert(n);
    const int32_t r = rule_ref(n, at);
    current_ = n;
    for (Seq& alt : alternates(false)) add(r, std::move(alt));
    space(false);
    if (peek() == '\r') ++pos_;
    if (peek() == '\n') {
      ++pos_;
    } else if (!eof()) {
      syntax(fmt::format("unexpected '{}' (expected a newline or the end of the grammar)",
                         std::string(1, peek())));
    }
  }

  std::vector<Seq> alternates(bool nested) {
    std::vector<Seq> alts;
    alts.push_back(sequence(nested));
    while (peek() == '|') {
      ++pos_;
      space(true);
      alts.push_back(sequence(nested));
    }
    return alts;
  }

  // One code point of a literal or class, escapes decoded.
  uint32_t character() {
    if (eof()) syntax("unexpected end of the grammar");
    const auto c = static_cast<unsigned char>(peek());
    if (c == '\\') {
      ++pos_;
      const char e = peek();
      ++pos_;
      switch (e) {
        case 'n':
          return '\n';
        case 'r':
          return '\r';
        case 't':
          return '\t';
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
          return static_cast<uint32_t>(e);
        case 'x':
          return hex(2);
        case 'u':
          return hex(4);
        case 'U':
          return hex(8);
        default:
          syntax_at(pos_ - 2, fmt::format("unknown escape '\\{}'", std::string(1, e)));
      }
    }
    // UTF-8.
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + static_cast<size_t>(len) > src_.size()) syntax("invalid UTF-8");
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(src_[pos_ + static_cast<size_t>(k)]);
      if ((b & 0xC0) != 0x80) syntax("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    pos_ += static_cast<size_t>(len);
    return cp;
  }

  uint32_t hex(int digits) {
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      const char h = peek();
      int d = h >= '0' && h <= '9'   ? h - '0'
              : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                     : -1;
      if (d < 0) syntax(fmt::format("expected {} hexadecimal digits", digits));
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) {
      syntax(fmt::format("U+{:X} is not a character", v));
    }
    return v;
  }

  int32_t lex(const Regex& r) { return Grammar::lexeme(g_->add_lexeme(r)); }

  // The symbols of one element (a literal is several).
  Seq element(bool nested) {
    const size_t at = pos_;
    const char c = peek();
    if (c == '"') {
      ++pos_;
      Seq s;
      while (peek() != '"') {
        if (eof()) syntax_at(at, "unterminated string literal");
        s.push_back(lex(re_char(character())));
      }
      ++pos_;
      return s;
    }
    if (c == '[') {
      ++pos_;
      bool negate = false;
      if (peek() == '^') {
        negate = true;
        ++pos_;
      }
      std::vector<CodeRange> ranges;
      while (peek() != ']') {
        if (eof()) syntax_at(at, "unterminated character class");
        const uint32_t lo = character();
        uint32_t hi = lo;
        if (peek() == '-' && peek(1) != ']' && pos_ + 1 < src_.size()) {
          ++pos_;
          hi = character();
          if (hi < lo) syntax_at(at, "a character range whose end comes before its start");
        }
        ranges.push_back({lo, hi});
      }
      ++pos_;
      const Regex cls = re_class(std::move(ranges), negate);
      if (cls->kind == RegexNode::Kind::kNothing) syntax_at(at, "a class that matches nothing");
      return {lex(cls)};
    }
    if (c == '.') {
      ++pos_;
      return {lex(re_any_char())};
    }
    if (c == '(') {
      ++pos_;
      space(true);
      const int32_t r = fresh(current_);
      for (Seq& alt : alternates(true)) add(r, std::move(alt));
      if (peek() != ')') syntax_at(at, "unclosed '('");
      ++pos_;
      return {r};
    }
    if (c == '<') return {token(at)};
    if (c == '!') {
      fail(ErrorCode::kUnsupported,
           "grammar: line {}, column {}: negated tokens (!<...>) are not supported",
           line_col(at).first, line_col(at).second);
    }
    if (word_char(c)) {
      const std::string n = name();
      return {rule_ref(n, at)};
    }
    (void)nested;
    syntax(fmt::format("unexpected '{}'", std::string(1, c)));
  }

  int32_t token(size_t at) {
    const size_t close = src_.find('>', pos_ + 1);
    if (close == std::string_view::npos) syntax_at(at, "unterminated token reference '<...>'");
    const std::string_view inner = src_.substr(pos_, close + 1 - pos_);
    pos_ = close + 1;
    if (o_.tokenizer == nullptr) {
      syntax_at(at, fmt::format("token {} needs the model's tokenizer", inner));
    }
    const tokenizer::Tokenizer& tok = *o_.tokenizer;
    if (inner.size() > 4 && inner[1] == '[' && inner[inner.size() - 2] == ']') {
      int64_t id = 0;
      for (size_t k = 2; k + 2 < inner.size(); ++k) {
        if (inner[k] < '0' || inner[k] > '9' || id > (int64_t{1} << 24)) {
          syntax_at(at, fmt::format("bad token id in {}", inner));
        }
        id = id * 10 + (inner[k] - '0');
      }
      if (id >= static_cast<int64_t>(tok.vocab_size())) {
        syntax_at(
            at, fmt::format("token id {} is outside the vocabulary [0, {})", id, tok.vocab_size()));
      }
      const auto i = static_cast<int32_t>(id);
      if (tok.is_special(i)) return lex(re_bytes(special_token_bytes(i)));
      const auto bytes = tok.token_bytes(i);
      if (!bytes || bytes->empty()) syntax_at(at, fmt::format("token {} has no text", id));
      return lex(re_literal(*bytes));
    }
    if (!tok.token_to_id(inner)) {
      syntax_at(at, fmt::format("the vocabulary has no token {}", inner));
    }
    return lex(token_or_text(&tok, inner));
  }

  Seq sequence(bool nested) {
    Seq out;
    while (true) {
      space(nested);
      if (eof()) break;
      const char c = peek();
      if (c == '|' || c == ')' || c == '\n' || c == '\r') break;
      Seq item = element(nested);
      // Postfix repetition.
      while (!eof() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{')) {
        item = repeat(std::move(item));
      }
      out.insert(out.end(), item.begin(), item.end());
    }
    return out;
  }

  int64_t count() {
    const size_t at = pos_;
    int64_t v = 0;
    if (!(peek() >= '0' && peek() <= '9')) syntax("expected a number");
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > o_.max_repeat) {
        fail(ErrorCode::kOutOfRange, "grammar: line {}, column {}: repetition count above {}",
             line_col(at).first, line_col(at).second, o_.max_repeat);
      }
      ++pos_;
    }
    return v;
  }

  Seq repeat(Seq item) {
    const size_t at = pos_;
    const char op = peek();
    ++pos_;
    int64_t min = 0, max = -1;
    if (op == '+') {
      min = 1;
    } else if (op == '?') {
      max = 1;
    } else if (op == '{') {
      space(false);
      if (peek() != ',') min = count();
      space(false);
      if (peek() == ',') {
        ++pos_;
        space(false);
        max = peek() == '}' ? -1 : count();
      } else {
        max = min;
      }
      space(false);
      if (peek() != '}') syntax_at(at, "expected '}' to close the repetition");
      ++pos_;
      if (max >= 0 && max < min) syntax_at(at, "a repetition whose maximum is below its minimum");
    }
    // The item as one symbol.
    int32_t x;
    if (item.size() == 1) {
      x = item[0];
    } else {
      x = fresh(current_);
      add(x, item);
    }
    Seq out(static_cast<size_t>(min), x);
    symbols_ += static_cast<size_t>(min);
    if (max < 0) {  // x*: left recursive, which Earley parses in linear space
      const int32_t star = fresh(current_);
      add(star, {});
      add(star, {star, x});
      out.push_back(star);
    } else if (max > min) {  // up to max - min more: opt_k ::= () | x opt_{k-1}
      int32_t tail = fresh(current_);
      add(tail, {});
      add(tail, {x});
      for (int64_t k = 1; k < max - min; ++k) {
        const int32_t t = fresh(current_);
        add(t, {});
        add(t, {x, tail});
        tail = t;
      }
      out.push_back(tail);
    }
    return out;
  }

  std::string_view src_;
  size_t pos_ = 0;
  GbnfOptions o_;
  std::shared_ptr<Grammar> g_;
  std::map<std::string, int32_t> rules_;
  std::map<std::string, size_t> first_use_;
  std::set<std::string> defined_;
  std::string current_;
  size_t symbols_ = 0;
  int n_fresh_ = 0;
};

}  // namespace

std::shared_ptr<Grammar> compile_gbnf(std::string_view text, const GbnfOptions& options) {
  GbnfCompiler c(text, options);
  return c.run();
}

std::shared_ptr<Grammar> compile_regex_grammar(std::string_view pattern) {
  const Regex r = parse_regex(pattern);
  auto g = std::make_shared<Grammar>();
  const int32_t root = g->add_rule("root");
  if (r->kind != RegexNode::Kind::kNothing) {
    // A lexeme must consume input: the non-empty part of the language, by intersection.
    LexemeSpec spec(r);
    if (regex_nullable(r)) spec.components.push_back({re_plus(re_any_char()), false});
    g->add_production(root, {Grammar::lexeme(g->add_lexeme(spec))});
  }
  if (regex_nullable(r)) g->add_production(root, {});
  if (r->kind == RegexNode::Kind::kNothing) {
    fail(ErrorCode::kInvalidArgument, "regex: '{}' matches no string", pattern);
  }
  g->set_start(root);
  g->finalize();
  return g;
}

std::string special_token_bytes_or_text(const tokenizer::Tokenizer* tok, std::string_view text) {
  if (tok != nullptr) {
    if (auto id = tok->token_to_id(text); id && tok->is_special(*id)) {
      return special_token_bytes(*id);
    }
  }
  return std::string(text);
}

Regex token_or_text(const tokenizer::Tokenizer* tok, std::string_view text) {
  if (tok != nullptr) {
    if (auto id = tok->token_to_id(text); id && tok->is_special(*id)) {
      return re_bytes(special_token_bytes(*id));
    }
  }
  return re_literal(text);
}

}  // namespace loom::grammar
