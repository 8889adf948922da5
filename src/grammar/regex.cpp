#include "grammar/regex.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace loom::grammar {

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
  return h * 0xFF51AFD7ED558CCDULL;
}

Regex make(RegexNode n) {
  uint64_t h = mix(0x51ED27E1u, static_cast<uint64_t>(n.kind));
  for (const CodeRange& r : n.ranges) h = mix(mix(h, r.lo), r.hi);
  for (const Regex& x : n.items) h = mix(h, x->hash);
  if (n.sub) h = mix(h, n.sub->hash);
  h = mix(mix(h, static_cast<uint64_t>(n.min)), static_cast<uint64_t>(n.max));
  for (unsigned char c : n.bytes) h = mix(h, c);
  n.hash = h;
  return std::make_shared<const RegexNode>(std::move(n));
}

}  // namespace

std::vector<CodeRange> normalize_ranges(std::vector<CodeRange> ranges) {
  std::vector<CodeRange> split;
  for (CodeRange r : ranges) {
    if (r.lo > r.hi || r.lo > kMaxCodePoint) continue;
    r.hi = std::min(r.hi, kMaxCodePoint);
    // Surrogates are not characters (UTF-8 cannot carry them).
    if (r.lo < 0xD800 && r.hi >= 0xD800) {
      if (r.hi > 0xDFFF) split.push_back({0xE000, r.hi});
      r.hi = 0xD7FF;
    } else if (r.lo >= 0xD800 && r.lo <= 0xDFFF) {
      if (r.hi <= 0xDFFF) continue;
      r.lo = 0xE000;
    }
    split.push_back(r);
  }
  std::sort(split.begin(), split.end(), [](CodeRange a, CodeRange b) { return a.lo < b.lo; });
  std::vector<CodeRange> out;
  for (CodeRange r : split) {
    if (!out.empty() && r.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

Regex re_nothing() {
  static const Regex r = make({RegexNode::Kind::kNothing, {}, {}, nullptr, 0, 0, {}});
  return r;
}

Regex re_empty() {
  static const Regex r = make({RegexNode::Kind::kEmpty, {}, {}, nullptr, 0, 0, {}});
  return r;
}

Regex re_class(std::vector<CodeRange> ranges, bool negate) {
  ranges = normalize_ranges(std::move(ranges));
  if (negate) {
    std::vector<CodeRange> inv;
    uint32_t next = 0;
    for (CodeRange r : ranges) {
      if (r.lo > next) inv.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodePoint) inv.push_back({next, kMaxCodePoint});
    ranges = normalize_ranges(std::move(inv));
  }
  if (ranges.empty()) return re_nothing();
  RegexNode n;
  n.kind = RegexNode::Kind::kClass;
  n.ranges = std::move(ranges);
  return make(std::move(n));
}

Regex re_char(uint32_t c) {
  return re_class({{c, c}});
}

Regex re_any_char() {
  static const Regex r = re_class({{0, kMaxCodePoint}});
  return r;
}

Regex re_literal(std::string_view s) {
  std::vector<Regex> items;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t n = 1;
    if (c >= 0xF0) {
      cp = c & 0x07;
      n = 4;
    } else if (c >= 0xE0) {
      cp = c & 0x0F;
      n = 3;
    } else if (c >= 0xC0) {
      cp = c & 0x1F;
      n = 2;
    }
    for (size_t k = 1; k < n && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    items.push_back(re_char(cp));
    i += n;
  }
  return re_concat(std::move(items));
}

Regex re_concat(std::vector<Regex> items) {
  std::vector<Regex> flat;
  for (Regex& r : items) {
    if (r->kind == RegexNode::Kind::kNothing) return re_nothing();
    if (r->kind == RegexNode::Kind::kEmpty) continue;
    if (r->kind == RegexNode::Kind::kConcat) {
      flat.insert(flat.end(), r->items.begin(), r->items.end());
    } else {
      flat.push_back(std::move(r));
    }
  }
  if (flat.empty()) return re_empty();
  if (flat.size() == 1) return flat[0];
  RegexNode n;
  n.kind = RegexNode::Kind::kConcat;
  n.items = std::move(flat);
  return make(std::move(n));
}

Regex re_alt(std::vector<Regex> items) {
  std::vector<Regex> flat;
  std::vector<CodeRange> chars;  // single-class alternatives merge into one class
  bool has_empty = false;
  for (Regex& r : items) {
    switch (r->kind) {
      case RegexNode::Kind::kNothing:
        break;
      case RegexNode::Kind::kEmpty:
        has_empty = true;
        break;
      case RegexNode::Kind::kClass:
        chars.insert(chars.end(), r->ranges.begin(), r->ranges.end());
        break;
      case RegexNode::Kind::kAlt:
        for (const Regex& x : r->items) {
          if (x->kind == RegexNode::Kind::kClass) {
            chars.insert(chars.end(), x->ranges.begin(), x->ranges.end());
          } else if (x->kind == RegexNode::Kind::kEmpty) {
            has_empty = true;
          } else {
            flat.push_back(x);
          }
        }
        break;
      default:
        flat.push_back(std::move(r));
    }
  }
  if (!chars.empty()) flat.insert(flat.begin(), re_class(std::move(chars)));
  // Identical alternatives are one.
  std::vector<Regex> uniq;
  for (Regex& r : flat) {
    if (std::any_of(uniq.begin(), uniq.end(), [&](const Regex& u) { return regex_equal(u, r); }))
      continue;
    uniq.push_back(std::move(r));
  }
  if (uniq.empty()) return has_empty ? re_empty() : re_nothing();
  Regex body;
  if (uniq.size() == 1) {
    body = uniq[0];
  } else {
    RegexNode n;
    n.kind = RegexNode::Kind::kAlt;
    n.items = std::move(uniq);
    body = make(std::move(n));
  }
  return has_empty && !regex_nullable(body) ? re_opt(body) : body;
}

Regex re_bytes(std::string bytes) {
  if (bytes.empty()) return re_empty();
  RegexNode n;
  n.kind = RegexNode::Kind::kBytes;
  n.bytes = std::move(bytes);
  return make(std::move(n));
}

Regex re_multiple(int64_t k) {
  if (k < 1 || k > kMaxMultiple) {
    fail(ErrorCode::kOutOfRange, "multiple of {}: must be in [1, {}]", k, kMaxMultiple);
  }
  RegexNode n;
  n.kind = RegexNode::Kind::kMultiple;
  n.min = n.max = k;
  return make(std::move(n));
}

Regex re_repeat(Regex sub, int64_t min, int64_t max) {
  if (max >= 0 && max < min) return re_nothing();
  if (max == 0) return re_empty();
  if (sub->kind == RegexNode::Kind::kNothing) return min == 0 ? re_empty() : re_nothing();
  if (sub->kind == RegexNode::Kind::kEmpty) return re_empty();
  if (min == 1 && max == 1) return sub;
  RegexNode n;
  n.kind = RegexNode::Kind::kRepeat;
  n.sub = std::move(sub);
  n.min = min;
  n.max = max;
  return make(std::move(n));
}

bool regex_nullable(const Regex& r) {
  switch (r->kind) {
    case RegexNode::Kind::kNothing:
    case RegexNode::Kind::kClass:
    case RegexNode::Kind::kBytes:
    case RegexNode::Kind::kMultiple:
      return false;
    case RegexNode::Kind::kEmpty:
      return true;
    case RegexNode::Kind::kConcat:
      return std::all_of(r->items.begin(), r->items.end(), regex_nullable);
    case RegexNode::Kind::kAlt:
      return std::any_of(r->items.begin(), r->items.end(), regex_nullable);
    case RegexNode::Kind::kRepeat:
      return r->min == 0 || regex_nullable(r->sub);
  }
  return false;
}

bool regex_equal(const Regex& a, const Regex& b) {
  if (a == b) return true;
  if (a->hash != b->hash || a->kind != b->kind || a->min != b->min || a->max != b->max ||
      a->ranges != b->ranges || a->bytes != b->bytes || a->items.size() != b->items.size() ||
      (a->sub == nullptr) != (b->sub == nullptr)) {
    return false;
  }
  for (size_t i = 0; i < a->items.size(); ++i) {
    if (!regex_equal(a->items[i], b->items[i])) return false;
  }
  return a->sub == nullptr || regex_equal(a->sub, b->sub);
}

std::string regex_to_string(const Regex& r) {
  switch (r->kind) {
    case RegexNode::Kind::kNothing:
      return "[]";
    case RegexNode::Kind::kEmpty:
      return "()";
    case RegexNode::Kind::kClass: {
      if (r->ranges.size() == 1 && r->ranges[0].lo == r->ranges[0].hi) {
        const uint32_t c = r->ranges[0].lo;
        if (c >= 0x20 && c < 0x7F &&
            std::string_view("\\[](){}|*+?.^$-").find(static_cast<char>(c)) ==
                std::string_view::npos) {
          return std::string(1, static_cast<char>(c));
        }
        return fmt::format("\\u{{{:x}}}", c);
      }
      std::string s = "[";
      for (CodeRange x : r->ranges) {
        s += x.lo == x.hi ? fmt::format("\\u{{{:x}}}", x.lo)
                          : fmt::format("\\u{{{:x}}}-\\u{{{:x}}}", x.lo, x.hi);
      }
      return s + "]";
    }
    case RegexNode::Kind::kConcat: {
      std::string s = "(";
      for (const Regex& x : r->items) s += regex_to_string(x);
      return s + ")";
    }
    case RegexNode::Kind::kAlt: {
      std::string s = "(";
      for (size_t i = 0; i < r->items.size(); ++i) {
        if (i) s += "|";
        s += regex_to_string(r->items[i]);
      }
      return s + ")";
    }
    case RegexNode::Kind::kRepeat:
      return fmt::format("({}){{{},{}}}", regex_to_string(r->sub), r->min,
                         r->max < 0 ? std::string() : std::to_string(r->max));
    case RegexNode::Kind::kMultiple:
      return fmt::format("<multiple of {}>", r->min);
    case RegexNode::Kind::kBytes: {
      std::string s = "<bytes";
      for (unsigned char c : r->bytes) s += fmt::format(" {:02x}", c);
      return s + ">";
    }
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// ECMA-262 pattern parser.

namespace {

const std::vector<CodeRange>& digit_ranges() {
  static const std::vector<CodeRange> r = {{'0', '9'}};
  return r;
}
const std::vector<CodeRange>& word_ranges() {
  static const std::vector<CodeRange> r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  return r;
}
const std::vector<CodeRange>& space_ranges() {
  // ECMA-262 WhiteSpace and LineTerminator.
  static const std::vector<CodeRange> r = {
      {0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
      {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
  return r;
}

std::vector<CodeRange> complement(const std::vector<CodeRange>& r) {
  return re_class(r, true)->ranges;
}

class PatternParser {
 public:
  PatternParser(std::string_view p, bool search) : p_(p), search_(search) {}

  Regex parse() {
    std::vector<Regex> alts;
    for (;;) {
      alts.push_back(top_alternative());
      if (at_end()) break;
      if (peek() == '|') {
        ++pos_;
        continue;
      }
      if (peek() == ')') fail_at("unmatched ')'");
      fail_at("unexpected character");
    }
    return re_alt(std::move(alts));
  }

 private:
  [[noreturn]] void fail_at(std::string_view what, ErrorCode code = ErrorCode::kInvalidArgument) {
    fail(code, "pattern {:?}: {} at offset {}", std::string(p_.substr(0, 200)), what, pos_);
  }
  bool at_end() const { return pos_ >= p_.size(); }
  char peek() const { return p_[pos_]; }

  // A top-level alternative: ^ may open it and $ may close it.
  Regex top_alternative() {
    bool anchored_start = false, anchored_end = false;
    if (!at_end() && peek() == '^') {
      anchored_start = true;
      ++pos_;
    }
    std::vector<Regex> items;
    while (!at_end() && peek() != '|' && peek() != ')') {
      if (peek() == '$') {
        ++pos_;
        if (!at_end() && peek() != '|' && peek() != ')') {
          fail_at("'$' before the end of an alternative is not supported", ErrorCode::kUnsupported);
        }
        anchored_end = true;
        break;
      }
      items.push_back(quantified());
    }
    Regex body = re_concat(std::move(items));
    if (!search_) return body;
    std::vector<Regex> parts;
    if (!anchored_start) parts.push_back(re_star(re_any_char()));
    parts.push_back(body);
    if (!anchored_end) parts.push_back(re_star(re_any_char()));
    return re_concat(std::move(parts));
  }

  Regex alternation() {  // inside a group
    std::vector<Regex> alts;
    for (;;) {
      std::vector<Regex> items;
      while (!at_end() && peek() != '|' && peek() != ')') {
        if (peek() == '^' || peek() == '$') {
          fail_at("an anchor inside a group is not supported", ErrorCode::kUnsupported);
        }
        items.push_back(quantified());
      }
      alts.push_back(re_concat(std::move(items)));
      if (!at_end() && peek() == '|') {
        ++pos_;
        continue;
      }
      break;
    }
    return re_alt(std::move(alts));
  }

  // Reads {n}, {n,}, {n,m} at pos_ into min/max; false (pos_ unchanged) if it is not one.
  bool brace_quantifier(int64_t& min, int64_t& max) {
    size_t i = pos_ + 1;
    auto number = [&](int64_t& out) {
      size_t start = i;
      out = 0;
      while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9') {
        out = std::min<int64_t>(out * 10 + (p_[i] - '0'), int64_t{1} << 40);
        ++i;
      }
      return i > start;
    };
    if (!number(min)) return false;
    max = min;
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!number(max)) max = -1;
    }
    if (i >= p_.size() || p_[i] != '}') return false;
    pos_ = i + 1;
    return true;
  }

  Regex quantified() {
    Regex atom_re = atom();
    while (!at_end()) {
      int64_t min = 0, max = 0;
      const char c = peek();
      if (c == '*') {
        min = 0, max = -1;
        ++pos_;
      } else if (c == '+') {
        min = 1, max = -1;
        ++pos_;
      } else if (c == '?') {
        min = 0, max = 1;
        ++pos_;
      } else if (c == '{' && brace_quantifier(min, max)) {
        if (max >= 0 && max < min) fail_at("quantifier {n,m} with m < n");
      } else {
        break;
      }
      if (!at_end() && peek() == '?') ++pos_;  // lazy: the same language
      atom_re = re_repeat(std::move(atom_re), min, max);
      if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?')) {
        fail_at("nothing to repeat");
      }
      if (!at_end() && peek() == '{') {
        int64_t a, b;
        const size_t save = pos_;
        if (brace_quantifier(a, b)) {
          pos_ = save;
          fail_at("nothing to repeat");
        }
      }
    }
    return atom_re;
  }

  uint32_t hex_digits(size_t n) {
    uint32_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      if (at_end() || !std::isxdigit(static_cast<unsigned char>(peek()))) {
        fail_at("expected a hex digit");
      }
      const char h = peek();
      v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
      ++pos_;
    }
    return v;
  }

  // The code point of a UTF-8 character at pos_ (the pattern text is UTF-8).
  uint32_t utf8_char() {
    const auto c = static_cast<unsigned char>(p_[pos_]);
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      if (pos_ + k >= p_.size()) fail_at("invalid UTF-8");
      cp = (cp << 6) | (static_cast<unsigned char>(p_[pos_ + k]) & 0x3F);
    }
    pos_ += n;
    return cp;
  }

  // An escape after '\'; returns either a class (ranges) or a single code point.
  struct Escape {
    std::vector<CodeRange> ranges;
    bool is_class = false;
    uint32_t cp = 0;
  };
  Escape escape(bool in_class) {
    if (at_end()) fail_at("a trailing backslash");
    const char c = p_[pos_++];
    Escape e;
    switch (c) {
      case 'd':
        e.ranges = digit_ranges();
        e.is_class = true;
        return e;
      case 'D':
        e.ranges = complement(digit_ranges());
        e.is_class = true;
        return e;
      case 'w':
        e.ranges = word_ranges();
        e.is_class = true;
        return e;
      case 'W':
        e.ranges = complement(word_ranges());
        e.is_class = true;
        return e;
      case 's':
        e.ranges = space_ranges();
        e.is_class = true;
        return e;
      case 'S':
        e.ranges = complement(space_ranges());
        e.is_class = true;
        return e;
      case 't':
        e.cp = '\t';
        return e;
      case 'n':
        e.cp = '\n';
        return e;
      case 'r':
        e.cp = '\r';
        return e;
      case 'f':
        e.cp = '\f';
        return e;
      case 'v':
        e.cp = '\v';
        return e;
      case '0':
        if (!at_end() && std::isdigit(static_cast<unsigned char>(peek()))) {
          fail_at("octal escapes are not supported", ErrorCode::kUnsupported);
        }
        e.cp = 0;
        return e;
      case 'b':
        if (in_class) {
          e.cp = '\b';
          return e;
        }
        --pos_;
        fail_at("word boundaries (\\b) are not supported", ErrorCode::kUnsupported);
      case 'B':
        --pos_;
        fail_at("\\B is not supported", ErrorCode::kUnsupported);
      case 'x':
        e.cp = hex_digits(2);
        return e;
      case 'u':
        if (!at_end() && peek() == '{') {
          ++pos_;
          uint32_t v = 0;
          size_t digits = 0;
          while (!at_end() && peek() != '}') {
            v = std::min<uint32_t>(v * 16 + hex_digits(1), 0x110000);
            ++digits;
          }
          if (at_end() || digits == 0 || v > kMaxCodePoint) fail_at("bad \\u{...} escape");
          ++pos_;
          e.cp = v;
          return e;
        }
        {
          uint32_t v = hex_digits(4);
          // A surrogate pair written as two escapes is one character.
          if (v >= 0xD800 && v <= 0xDBFF && pos_ + 6 <= p_.size() && p_[pos_] == '\\' &&
              p_[pos_ + 1] == 'u') {
            const size_t save = pos_;
            pos_ += 2;
            const uint32_t lo = hex_digits(4);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              e.cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
              return e;
            }
            pos_ = save;
          }
          e.cp = v;
          return e;
        }
      case 'c': {
        if (at_end() || !std::isalpha(static_cast<unsigned char>(peek())))
          fail_at("bad \\c escape");
        e.cp = static_cast<uint32_t>(p_[pos_++]) % 32;
        return e;
      }
      case 'p':
      case 'P':
        --pos_;
        fail_at("Unicode property escapes (\\p{...}) are not supported", ErrorCode::kUnsupported);
      case 'k':
        --pos_;
        fail_at("named backreferences are not supported", ErrorCode::kUnsupported);
      default:
        if (c >= '1' && c <= '9') {
          --pos_;
          fail_at("backreferences are not supported", ErrorCode::kUnsupported);
        }
        --pos_;
        e.cp = utf8_char();  // an identity escape: \. \/ \- \\ ...
        return e;
    }
  }

  Regex char_class() {  // after '['
    bool negate = false;
    if (!at_end() && peek() == '^') {
      negate = true;
      ++pos_;
    }
    std::vector<CodeRange> ranges;
    bool first = true;
    for (;;) {
      if (at_end()) fail_at("unterminated character class");
      if (peek() == ']' && !first) {
        ++pos_;
        break;
      }
      if (peek() == ']' && first) {  // ECMA: "[]" is the empty class, "[^]" any character
        ++pos_;
        break;
      }
      first = false;
      // One class atom, possibly the start of a range.
      auto atom_at = [&](Escape& out) {
        if (peek() == '\\') {
          ++pos_;
          out = escape(true);
        } else {
          out.cp = utf8_char();
          out.is_class = false;
        }
      };
      Escape lo;
      atom_at(lo);
      if (!lo.is_class && pos_ + 1 < p_.size() && peek() == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        Escape hi;
        atom_at(hi);
        if (hi.is_class) {  // [a-\d]: Annex B reads the '-' literally
          ranges.push_back({lo.cp, lo.cp});
          ranges.push_back({'-', '-'});
          ranges.insert(ranges.end(), hi.ranges.begin(), hi.ranges.end());
          continue;
        }
        if (hi.cp < lo.cp) fail_at("character class range out of order");
        ranges.push_back({lo.cp, hi.cp});
        continue;
      }
      if (lo.is_class) {
        ranges.insert(ranges.end(), lo.ranges.begin(), lo.ranges.end());
      } else {
        ranges.push_back({lo.cp, lo.cp});
      }
    }
    return re_class(std::move(ranges), negate);
  }

  Regex atom() {
    const char c = peek();
    if (c == '(') {
      if (++depth_ > kMaxDepth) fail_at("groups nest too deep", ErrorCode::kOutOfRange);
      ++pos_;
      if (!at_end() && peek() == '?') {
        ++pos_;
        if (!at_end() && peek() == ':') {
          ++pos_;
        } else if (!at_end() && peek() == '<' && pos_ + 1 < p_.size() && p_[pos_ + 1] != '=' &&
                   p_[pos_ + 1] != '!') {
          const size_t close = p_.find('>', pos_);
          if (close == std::string_view::npos) fail_at("unterminated group name");
          pos_ = close + 1;
        } else {
          --pos_;
          fail_at("lookaround assertions are not supported", ErrorCode::kUnsupported);
        }
      }
      Regex inner = alternation();
      if (at_end() || peek() != ')') fail_at("missing ')'");
      ++pos_;
      --depth_;
      return inner;
    }
    if (c == '[') {
      ++pos_;
      return char_class();
    }
    if (c == '.') {
      ++pos_;
      return re_class({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}, true);
    }
    if (c == '\\') {
      ++pos_;
      Escape e = escape(false);
      return e.is_class ? re_class(std::move(e.ranges)) : re_char(e.cp);
    }
    if (c == '*' || c == '+' || c == '?') fail_at("nothing to repeat");
    if (c == '^' || c == '$') {
      fail_at("an anchor inside the pattern is not supported", ErrorCode::kUnsupported);
    }
    if (c == '{') {
      int64_t a, b;
      const size_t save = pos_;
      if (brace_quantifier(a, b)) {
        pos_ = save;
        fail_at("nothing to repeat");
      }
    }
    return re_char(utf8_char());
  }

  static constexpr int kMaxDepth = 256;
  std::string_view p_;
  bool search_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Regex parse_ecma_pattern(std::string_view pattern) {
  return PatternParser(pattern, /*search=*/true).parse();
}

Regex parse_regex(std::string_view pattern) {
  return PatternParser(pattern, /*search=*/false).parse();
}

}  // namespace loom::grammar
