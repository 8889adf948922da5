// Regular expressions over JSON text for the schema compiler (json_schema.cpp): strings as JSON
// encoders write them (a decoded character becomes each of its encodings), integer and decimal
// ranges as digit strings, and the string formats. See json_schema_regex.h.
#include "grammar/json_schema_regex.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/error.h"

namespace loom::grammar::schema_regex {

namespace {

// The JSON encodings of one character of `ranges`: raw when JSON allows it, and the escapes
// JSON encoders write (\" \\ \/ \b \f \n \r \t, \u00XX for other control characters).
Regex encoded_class_uncached(const std::vector<CodeRange>& ranges) {
  std::vector<CodeRange> raw;
  std::vector<Regex> alts;
  auto hexdig = [](unsigned v) {
    const char lower = "0123456789abcdef"[v];
    if (lower >= 'a')
      return re_class({{static_cast<uint32_t>(lower), static_cast<uint32_t>(lower)},
                       {static_cast<uint32_t>(lower - 32), static_cast<uint32_t>(lower - 32)}});
    return re_char(static_cast<uint32_t>(lower));
  };
  const bool all_controls = !ranges.empty() && ranges[0].lo == 0 && ranges[0].hi >= 0x1F;
  if (all_controls) {  // compactly: every \u00XX with XX < 0x20, and the short escapes
    alts.push_back(re_concat({re_literal("\\u00"), re_class({{'0', '1'}}),
                              re_class({{'0', '9'}, {'a', 'f'}, {'A', 'F'}})}));
    alts.push_back(re_concat(
        {re_char('\\'), re_class({{'b', 'b'}, {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}})}));
  }
  for (CodeRange r : ranges) {
    for (uint32_t c = r.lo; !all_controls && c <= std::min<uint32_t>(r.hi, 0x1F); ++c) {
      const char* short_escape = c == 8    ? "\\b"
                                 : c == 12 ? "\\f"
                                 : c == 10 ? "\\n"
                                 : c == 13 ? "\\r"
                                 : c == 9  ? "\\t"
                                           : nullptr;
      if (short_escape != nullptr) alts.push_back(re_literal(short_escape));
      alts.push_back(re_concat({re_literal("\\u00"), hexdig(c >> 4), hexdig(c & 15)}));
    }
    if (r.hi < 0x20) continue;
    CodeRange rest{std::max<uint32_t>(r.lo, 0x20), r.hi};
    raw.push_back(rest);
    if (rest.lo <= '"' && '"' <= rest.hi) alts.push_back(re_literal("\\\""));
    if (rest.lo <= '\\' && '\\' <= rest.hi) alts.push_back(re_literal("\\\\"));
    if (rest.lo <= '/' && '/' <= rest.hi) alts.push_back(re_literal("\\/"));
  }
  // Raw: everything but '"' and '\'.
  std::vector<CodeRange> allowed;
  for (CodeRange r : raw) {
    for (CodeRange part : std::vector<CodeRange>{
             {r.lo, std::min<uint32_t>(r.hi, '"' - 1)},
             {std::max<uint32_t>(r.lo, '"' + 1), std::min<uint32_t>(r.hi, '\\' - 1)},
             {std::max<uint32_t>(r.lo, '\\' + 1), r.hi}}) {
      if (part.lo <= part.hi) allowed.push_back(part);
    }
  }
  alts.push_back(re_class(std::move(allowed)));
  return re_alt(std::move(alts));
}

// encoded_class, remembered per thread: schemas encode the same classes (each character of
// every property name, the same pattern classes) many times, and building one allocates a
// dozen nodes. Regex nodes are immutable, so a remembered one is shared safely.
Regex encoded_class(const std::vector<CodeRange>& ranges) {
  thread_local std::unordered_map<std::string, Regex> memo;
  std::string key(reinterpret_cast<const char*>(ranges.data()), ranges.size() * sizeof(CodeRange));
  if (auto it = memo.find(key); it != memo.end()) return it->second;
  if (memo.size() >= 4096) memo.clear();
  Regex r = encoded_class_uncached(ranges);
  memo.emplace(std::move(key), r);
  return r;
}

}  // namespace

// A regex over decoded characters -> the same language over their JSON encodings.
Regex encode(const Regex& r) {
  switch (r->kind) {
    case RegexNode::Kind::kNothing:
    case RegexNode::Kind::kEmpty:
    case RegexNode::Kind::kBytes:
    case RegexNode::Kind::kMultiple:
      return r;
    case RegexNode::Kind::kClass:
      return encoded_class(r->ranges);
    case RegexNode::Kind::kConcat: {
      std::vector<Regex> items;
      for (const Regex& x : r->items) items.push_back(encode(x));
      return re_concat(std::move(items));
    }
    case RegexNode::Kind::kAlt: {
      std::vector<Regex> items;
      for (const Regex& x : r->items) items.push_back(encode(x));
      return re_alt(std::move(items));
    }
    case RegexNode::Kind::kRepeat:
      return re_repeat(encode(r->sub), r->min, r->max);
  }
  return r;
}

Regex any_encoded_char() {
  static const Regex r = encoded_class({{0, kMaxCodePoint}});
  return r;
}

Regex quoted(const Regex& content) {
  return re_concat({re_char('"'), content, re_char('"')});
}

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Integer ranges as regexes (no leading zeros, "-" for negatives).

namespace {

// Digit strings of equal length between lo and hi (leading zeros allowed).
Regex digits_between(std::string_view lo, std::string_view hi) {
  if (lo.empty()) return re_empty();
  const uint32_t a = static_cast<uint32_t>(lo[0]), b = static_cast<uint32_t>(hi[0]);
  if (a == b) return re_concat({re_char(a), digits_between(lo.substr(1), hi.substr(1))});
  const size_t rest = lo.size() - 1;
  const std::string zeros(rest, '0'), nines(rest, '9');
  std::vector<Regex> alts;
  alts.push_back(re_concat({re_char(a), digits_between(lo.substr(1), nines)}));
  if (b > a + 1) {
    alts.push_back(re_concat(
        {re_class({{a + 1, b - 1}}), re_repeat(re_class({{'0', '9'}}), static_cast<int64_t>(rest),
                                               static_cast<int64_t>(rest))}));
  }
  alts.push_back(re_concat({re_char(b), digits_between(zeros, hi.substr(1))}));
  return re_alt(std::move(alts));
}

}  // namespace

// Non-negative integers in [lo, hi] (hi < 0: unbounded), written without leading zeros.
Regex naturals(uint64_t lo, int64_t hi) {
  if (hi >= 0 && lo > static_cast<uint64_t>(hi)) return re_nothing();
  const std::string slo = std::to_string(lo);
  const std::string shi = hi >= 0 ? std::to_string(hi) : std::string();
  const size_t max_len = hi >= 0 ? shi.size() : slo.size();
  std::vector<Regex> alts;
  for (size_t len = slo.size(); len <= max_len; ++len) {
    std::string a = slo;  // the smallest number of len digits
    if (len != slo.size()) {
      a.assign(len, '0');
      a[0] = '1';
    }
    const std::string b = hi >= 0 && len == shi.size() ? shi : std::string(len, '9');
    if (a <= b) alts.push_back(digits_between(a, b));
  }
  if (hi < 0) {  // and every number with more digits
    alts.push_back(
        re_concat({re_class({{'1', '9'}}),
                   re_repeat(re_class({{'0', '9'}}), static_cast<int64_t>(max_len), -1)}));
  }
  return re_alt(std::move(alts));
}

// Integers in [lo, hi] (nullopt: unbounded on that side).
Regex integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  std::vector<Regex> alts;
  // Non-negative part.
  if (!hi || *hi >= 0) {
    const uint64_t a = lo && *lo > 0 ? static_cast<uint64_t>(*lo) : 0;
    alts.push_back(naturals(a, hi ? *hi : -1));
  }
  // Negative part: -x for x in [max(1, -hi), -lo].
  if (!lo || *lo < 0) {
    const uint64_t a = hi && *hi < 0 ? static_cast<uint64_t>(-(*hi + 1)) + 1 : 1;
    const int64_t b = lo ? -(*lo + 1) + 1 : -1;  // -lo without overflow for INT64_MIN+1..
    alts.push_back(re_concat({re_char('-'), naturals(a, b)}));
  }
  return re_alt(std::move(alts));
}

Regex digits1() {
  return re_plus(re_class({{'0', '9'}}));
}
Regex integer_regex() {
  return integer_range(std::nullopt, std::nullopt);
}
namespace {

Regex fraction_part() {
  return re_concat({re_char('.'), digits1()});
}
Regex exponent_part() {
  return re_concat(
      {re_class({{'e', 'e'}, {'E', 'E'}}), re_opt(re_class({{'+', '+'}, {'-', '-'}})), digits1()});
}

}  // namespace

Regex number_regex() {
  return re_concat({integer_regex(), re_opt(fraction_part()), re_opt(exponent_part())});
}

namespace {

// |d| as a plain decimal: integer digits and fraction digits (no trailing zeros), from the
// shortest text that reads back as d (what the schema's author wrote, e.g. 99.99).
std::pair<std::string, std::string> plain_decimal(double d) {
  std::string s = fmt::format("{}", std::abs(d));
  int exp10 = 0;
  if (const size_t e = s.find_first_of("eE"); e != std::string::npos) {
    exp10 = std::stoi(s.substr(e + 1));
    s.resize(e);
  }
  std::string digits = s;
  size_t point = s.find('.');
  if (point != std::string::npos) {
    digits.erase(point, 1);
  } else {
    point = s.size();
  }
  const long long at = static_cast<long long>(point) + exp10;  // position of the point
  if (at <= 0) {
    digits = std::string(static_cast<size_t>(-at), '0') + digits;
    point = 0;
  } else if (static_cast<size_t>(at) > digits.size()) {
    digits += std::string(static_cast<size_t>(at) - digits.size(), '0');
    point = digits.size();
  } else {
    point = static_cast<size_t>(at);
  }
  const size_t nz = std::min(digits.find_first_not_of('0'), point);  // leading zeros
  std::string ip = nz == point ? std::string(1, '0') : digits.substr(nz, point - nz);
  std::string fp = digits.substr(point);
  while (!fp.empty() && fp.back() == '0') fp.pop_back();
  return {ip, fp};
}

// Fraction digit strings f (after the point, non-empty) with 0.f > 0.b (b: no trailing zeros,
// non-empty).
Regex fraction_greater(const std::string& b) {
  std::vector<Regex> alts;
  const Regex any = re_star(re_class({{'0', '9'}}));
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] == '9') continue;
    alts.push_back(re_concat(
        {re_literal(b.substr(0, i)), re_class({{static_cast<uint32_t>(b[i]) + 1, '9'}}), any}));
  }
  alts.push_back(re_concat({re_literal(b), any, re_class({{'1', '9'}}), any}));
  return re_alt(std::move(alts));
}
// ... with 0.f < 0.b.
Regex fraction_less(const std::string& b) {
  std::vector<Regex> alts;
  const Regex any = re_star(re_class({{'0', '9'}}));
  for (size_t i = 0; i < b.size(); ++i) {
    if (i > 0) alts.push_back(re_literal(b.substr(0, i)));  // a shorter prefix: b goes on
    if (b[i] == '0') continue;
    alts.push_back(re_concat(
        {re_literal(b.substr(0, i)), re_class({{'0', static_cast<uint32_t>(b[i]) - 1}}), any}));
  }
  return re_alt(std::move(alts));
}

}  // namespace

// Decimal numbers in JSON syntax without an exponent that are >= bound (at_least) or <= bound.
Regex decimal_bound(double bound, bool at_least) {
  const auto decimal = plain_decimal(bound);
  const std::string& ip = decimal.first;
  const std::string& fp = decimal.second;
  const uint64_t a = std::stoull(ip);
  const Regex frac_any = re_opt(re_concat({re_char('.'), digits1()}));
  const Regex zeros = re_opt(re_concat({re_char('.'), re_plus(re_char('0'))}));
  // |v| compared with |bound| = a.fp: "beyond" (further from zero) or "within".
  auto magnitude = [&](bool beyond) {
    std::vector<Regex> alts;
    if (beyond) {
      alts.push_back(re_concat({naturals(a + 1, -1), frac_any}));
      alts.push_back(re_concat(
          {re_literal(ip), fp.empty() ? frac_any
                                      : re_alt({re_concat({re_char('.'), fraction_greater(fp)}),
                                                re_concat({re_char('.'), re_literal(fp),
                                                           re_star(re_char('0'))})})}));
    } else {
      if (a > 0) alts.push_back(re_concat({naturals(0, static_cast<int64_t>(a) - 1), frac_any}));
      alts.push_back(re_concat(
          {re_literal(ip),
           fp.empty() ? zeros
                      : re_opt(re_concat(
                            {re_char('.'),
                             re_alt({fraction_less(fp),
                                     re_concat({re_literal(fp), re_star(re_char('0'))})})}))}));
    }
    return re_alt(std::move(alts));
  };
  const Regex nonneg_all = re_concat({naturals(0, -1), frac_any});
  const Regex neg_all = re_concat({re_char('-'), nonneg_all});
  if (bound >= 0) {
    // v >= b: non-negative beyond-or-equal; v <= b: all negatives, non-negatives within.
    return at_least ? magnitude(true) : re_alt({neg_all, magnitude(false)});
  }
  // b < 0: v >= b: non-negatives, negatives within |b|; v <= b: negatives beyond |b|.
  return at_least ? re_alt({nonneg_all, re_concat({re_char('-'), magnitude(false)})})
                  : re_concat({re_char('-'), magnitude(true)});
}

// ---------------------------------------------------------------------------------------------
// Formats (RFC 3339 dates and times, ...), over decoded characters, whole-string.

// RFC 3339 full-date with real calendar days: 29 and 30 in every month but February, 31 in
// the long months, February 29 in leap years (divisible by 4, centuries by 400).
constexpr const char* kDate =
    "(\\d{4}-((0[1-9]|1[0-2])-(0[1-9]|1\\d|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|"
    "(\\d\\d(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)";

std::optional<Regex> format_regex(std::string_view format) {
  if (format == "regex") {
    // Whether a string is a valid regular expression is not a regular (or context-free with
    // our lexemes) property.
    fail(ErrorCode::kUnsupported, "format 'regex' cannot be expressed as a grammar");
  }
  static const std::map<std::string, std::string, std::less<>> kFormats = {
      {"date", kDate},
      {"time",
       "([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d+)?([Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)"},
      {"date-time", std::string(kDate) + "[Tt]([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d+)?(["
                                         "Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)"},
      {"duration",
       "P(\\d+W|(\\d+Y(\\d+M)?(\\d+D)?|\\d+M(\\d+D)?|\\d+D)(T(\\d+H(\\d+M)?(\\d+S)?|\\d+M(\\d+S)?|"
       "\\d+S))?|T(\\d+H(\\d+M)?(\\d+S)?|\\d+M(\\d+S)?|\\d+S))"},
      {"email",
       "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
       "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+"},
      {"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"},
      {"ipv4",
       "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}"},
      {"ipv6",
       "(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|"
       "([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|"
       "([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}"
       "){1,4}|"
       "([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|"
       ":((:[0-9a-fA-F]{1,4}){1,7}|:))"},
      {"hostname",
       "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
       "*"},
      {"uri", "[A-Za-z][A-Za-z0-9+.-]*:[^\\s\"<>\\\\^`{|}]*"},
      {"uri-reference", "[^\\s\"<>\\\\^`{|}]*"},
      {"iri", "[A-Za-z][A-Za-z0-9+.-]*:[^\\s\"<>\\\\^`{|}]*"},
      {"iri-reference", "[^\\s\"<>\\\\^`{|}]*"},
      // RFC 6570: literals, and {expressions} with an operator and variable specs.
      {"uri-template",
       "([^\\x00-\\x20\"'%<>\\\\^`{|}]|%[0-9A-Fa-f]{2}|\\{[+#./"
       ";?&=,!@|]?[A-Za-z0-9_.%]+(:[1-9]\\d{0,3}|\\*)?"
       "(,[A-Za-z0-9_.%]+(:[1-9]\\d{0,3}|\\*)?)*\\})*"},
      {"json-pointer", "(/([^~/]|~[01])*)*"},
      {"relative-json-pointer", "(0|[1-9][0-9]*)(#|(/([^~/]|~[01])*)*)"},
      {"idn-email", "[^@\\s]+@[^@\\s]+"},
      {"idn-hostname", "[^\\s.]+(\\.[^\\s.]+)*"},
  };
  static const std::map<std::string, Regex, std::less<>> kParsed = [] {
    std::map<std::string, Regex, std::less<>> m;
    for (const auto& [name, text] : kFormats) m.emplace(name, parse_regex(text));
    return m;
  }();
  auto it = kParsed.find(format);
  if (it == kParsed.end()) return std::nullopt;
  return it->second;
}

}  // namespace loom::grammar::schema_regex
