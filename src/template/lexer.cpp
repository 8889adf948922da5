#include "template/lexer.h"

#include <fmt/format.h>

#include <charconv>

#include "core/error.h"

namespace loom::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& name, const ParseOptions& options)
      : src_(src), name_(name), options_(options) {}

  std::vector<Token> run() {
    bool line_starting = true;  // Jinja2: did the text consumed last end with a newline?
    size_t pos = 0;
    while (pos < src_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit(TokenKind::kData, src_.substr(pos), pos);
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')
                      ? src_[tag + 2]
                      : 0;
      size_t raw_end = kind == '%' ? match_raw_begin(tag) : std::string::npos;
      std::string text = src_.substr(pos, tag - pos);
      strip_before_tag(text, sign, kind != '{', line_starting);
      if (!text.empty()) emit(TokenKind::kData, std::move(text), pos);
      size_t inner = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = skip_comment(tag, inner);
      } else if (raw_end != std::string::npos) {
        pos = lex_raw(tag, raw_end);
      } else {
        pos = lex_tag(tag, inner, kind == '%');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back(Token{TokenKind::kEnd, "", src_.size()});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail_at(size_t offset, const std::string& message) {
    fail(ErrorCode::kInvalidArgument, "{}: {}", describe_location(src_, name_, offset), message);
  }

  void emit(TokenKind kind, std::string text, size_t offset) {
    tokens_.push_back(Token{kind, std::move(text), offset});
  }

  size_t find_tag(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#'))
        return p;
    }
    return std::string::npos;
  }

  size_t skip_spaces(size_t p) const {
    while (p < src_.size() && is_space(src_[p])) ++p;
    return p;
  }

  // Jinja2's OptionalLStrip rule for the data before a tag.
  void strip_before_tag(std::string& text, char sign, bool lstrip_applies,
                        bool line_starting) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      text.resize(end);
    } else if (sign != '+' && options_.lstrip_blocks && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && l_pos < text.size()) {
        bool blank = true;
        for (size_t i = l_pos; i < text.size(); ++i) blank = blank && is_space(text[i]);
        if (blank) text.resize(l_pos);
      }
    }
  }

  // The end of a closing delimiter starting at p ("-%}" / "+%}" / "%}"), with Jinja2's
  // whitespace handling after it; npos if none starts at p.
  size_t match_close(size_t p, bool block) const {
    std::string_view rest = std::string_view(src_).substr(p);
    const char* close = block ? "%}" : "}}";
    if (rest.size() >= 3 && rest[0] == '-' && rest.substr(1, 2) == close) return skip_spaces(p + 3);
    if (block && rest.size() >= 3 && rest[0] == '+' && rest.substr(1, 2) == close) return p + 3;
    if (rest.substr(0, 2) == close) {
      size_t end = p + 2;
      if (block && options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      return end;
    }
    return std::string::npos;
  }

  // "{% raw %}" (with optional signs): returns the offset after it, or npos.
  size_t match_raw_begin(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = skip_spaces(p);
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p = skip_spaces(p + 3);
    // Jinja2 does not apply trim_blocks after "raw %}".
    if (src_.compare(p, 3, "-%}") == 0) return skip_spaces(p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  size_t skip_comment(size_t tag, size_t inner) {
    size_t close = src_.find("#}", inner);
    if (close == std::string::npos) fail_at(tag, "missing end of comment tag");
    size_t end = close + 2;
    if (close > inner && src_[close - 1] == '-') return skip_spaces(end);
    if (close > inner && src_[close - 1] == '+') return end;
    if (options_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
    return end;
  }

  size_t lex_raw(size_t tag, size_t body) {
    for (size_t p = find_tag(body); p != std::string::npos; p = find_tag(p + 1)) {
      if (src_[p + 1] != '%') continue;
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_spaces(q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      size_t end = match_close(skip_spaces(q + 6), true);
      if (end == std::string::npos) continue;
      std::string text = src_.substr(body, p - body);
      strip_before_tag(text, sign, true, body > 0 && src_[body - 1] == '\n');
      if (!text.empty()) emit(TokenKind::kData, std::move(text), body);
      return end;
    }
    fail_at(tag, "missing end of raw directive");
  }

  size_t lex_tag(size_t tag, size_t p, bool block) {
    emit(block ? TokenKind::kBlockBegin : TokenKind::kVarBegin, "", tag);
    int depth =
        0;  // open brackets: a closing delimiter inside them is not one (Jinja2 does the same)
    while (true) {
      p = skip_spaces(p);
      if (p >= src_.size()) {
        fail_at(tag, block ? "unexpected end of template: block tag is not closed with '%}'"
                           : "unexpected end of template: expression is not closed with '}}'");
      }
      if (depth == 0) {
        size_t end = match_close(p, block);
        if (end != std::string::npos) {
          emit(block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "", p);
          return end;
        }
      }
      char c = src_[p];
      if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        size_t start = p;
        while (p < src_.size() && is_name_char(src_[p])) ++p;
        emit(TokenKind::kName, src_.substr(start, p - start), start);
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "*",
                                           "/",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                           ".",  ":",  "|",  ",",  "=",  "<",  ">", ";"};
        const char* op = nullptr;
        for (const char* candidate : kOps) {
          if (src_.compare(p, std::char_traits<char>::length(candidate), candidate) == 0) {
            op = candidate;
            break;
          }
        }
        if (!op) fail_at(p, fmt::format("unexpected character '{}'", c));
        if (*op == '(' || *op == '[' || *op == '{') ++depth;
        if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) --depth;
        emit(TokenKind::kOp, op, p);
        p += std::char_traits<char>::length(op);
      }
    }
  }

  size_t scan_digits(size_t p) const {
    // (\d+_)*\d+
    size_t q = p;
    while (q < src_.size() && is_digit(src_[q])) {
      while (q < src_.size() && is_digit(src_[q])) ++q;
      if (q + 1 < src_.size() && src_[q] == '_' && is_digit(src_[q + 1])) ++q;
    }
    return q;
  }

  size_t lex_number(size_t start) {
    size_t p = scan_digits(start);
    bool is_float = false;
    bool after_dot = start > 0 && src_[start - 1] == '.';  // Jinja2: "x.0.1" is two lookups
    if (!after_dot) {
      size_t q = p;
      if (q + 1 < src_.size() && src_[q] == '.' && is_digit(src_[q + 1])) {
        q = scan_digits(q + 1);
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (r < src_.size() && is_digit(src_[r])) {
          q = scan_digits(r);
          is_float = true;
        }
      }
      if (is_float) p = q;
    }
    std::string digits;
    for (size_t i = start; i < p; ++i) {
      if (src_[i] != '_') digits += src_[i];
    }
    Token token{is_float ? TokenKind::kFloat : TokenKind::kInt, digits, start};
    if (is_float) {
      auto res = std::from_chars(digits.data(), digits.data() + digits.size(), token.float_value);
      if (res.ec != std::errc()) fail_at(start, "float literal out of range");
    } else {
      auto res = std::from_chars(digits.data(), digits.data() + digits.size(), token.int_value);
      if (res.ec != std::errc()) fail_at(start, "integer literal does not fit in 64 bits");
    }
    tokens_.push_back(std::move(token));
    return p;
  }

  // Decodes like Python's "unicode-escape" codec, which Jinja2 applies to string literals.
  size_t lex_string(size_t start) {
    char quote = src_[start];
    std::string out;
    size_t p = start + 1;
    auto hex = [&](size_t at, int n, uint32_t* cp) {
      if (at + static_cast<size_t>(n) > src_.size()) return false;
      auto res = std::from_chars(src_.data() + at, src_.data() + at + n, *cp, 16);
      return res.ec == std::errc() && res.ptr == src_.data() + at + n;
    };
    while (true) {
      if (p >= src_.size()) fail_at(start, "unterminated string literal");
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) fail_at(start, "unterminated string literal");
      char e = src_[p + 1];
      p += 2;
      uint32_t cp = 0;
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (!hex(p, n, &cp) || cp > 0x10FFFF) fail_at(p - 2, "invalid escape in string literal");
          append_utf8(out, cp);
          p += static_cast<size_t>(n);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            cp = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7';
                 ++i, ++p) {
              cp = cp * 8 + static_cast<uint32_t>(src_[p] - '0');
            }
            append_utf8(out, cp);
          } else {
            out += '\\';  // Python keeps unknown escapes as written
            out += e;
          }
      }
    }
    emit(TokenKind::kString, std::move(out), start);
    return p + 1;
  }

  const std::string& src_;
  const std::string& name_;
  const ParseOptions& options_;
  std::vector<Token> tokens_;
};

}  // namespace

std::string normalize_source(std::string_view source, const ParseOptions& options) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!options.keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& source, const std::string& name,
                            const ParseOptions& options) {
  return Lexer(source, name, options).run();
}

std::string describe_location(const std::string& source, const std::string& name, size_t offset) {
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return fmt::format("template '{}', line {}, column {}", name, line, offset - line_start + 1);
}

}  // namespace loom::jinja
