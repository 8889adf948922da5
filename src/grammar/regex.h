// Regular expressions for the grammar engine: an immutable AST over Unicode code points (matched
// as UTF-8 bytes by the lexer DFA, lexer.h), built programmatically by the grammar compilers or
// parsed from pattern text.
//
// Two parsers:
//   parse_ecma_pattern: JSON Schema "pattern" (ECMA-262 syntax, as draft 2020-12 prescribes):
//     classes, escapes (\d \w \s \D \W \S \t \n \r \f \v \0 \xHH \uHHHH \u{H..} \cX), groups
//     ((...), (?:...), (?<name>...)), quantifiers (* + ? {n} {n,} {n,m} and their lazy forms,
//     the same language), alternation, ^ and $ at the ends of top-level alternatives. A JSON
//     Schema pattern is a search: an unanchored side matches anything there. Lookaround,
//     backreferences, word boundaries and anchors elsewhere are kUnsupported, never ignored.
//   parse_regex: the same syntax as a whole-string match (the request's `regex` field).
// Errors are loom::Error naming the offset in the pattern.
// Thread-safety: nodes are immutable and shared; build and use from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace loom::grammar {

struct CodeRange {
  uint32_t lo = 0, hi = 0;  // inclusive
  bool operator==(const CodeRange&) const = default;
};

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

struct RegexNode;
using Regex = std::shared_ptr<const RegexNode>;

struct RegexNode {
  enum class Kind {
    kNothing,   // matches no string
    kEmpty,     // matches the empty string
    kClass,     // one code point in `ranges`
    kConcat,    // items in sequence
    kAlt,       // any of items
    kRepeat,    // sub, min..max times (max < 0: unbounded)
    kBytes,     // the raw bytes in `bytes` (not UTF-8 text: special-token terminals)
    kMultiple,  // a non-negative decimal integer (no leading zeros) divisible by `min`
  };
  Kind kind = Kind::kEmpty;
  std::vector<CodeRange> ranges;  // kClass: sorted, disjoint, not adjacent, no surrogates
  std::vector<Regex> items;       // kConcat, kAlt
  Regex sub;                      // kRepeat
  int64_t min = 0, max = 0;       // kRepeat
  std::string bytes;              // kBytes: non-empty
  uint64_t hash = 0;              // structural, set by the builders (equal nodes, equal hash)
};

// Builders. They simplify as they go (concat of one item is the item, nothing absorbs, ...).
Regex re_nothing();
Regex re_empty();
Regex re_class(std::vector<CodeRange> ranges, bool negate = false);
Regex re_char(uint32_t c);
Regex re_any_char();  // any code point
Regex re_literal(std::string_view utf8);
Regex re_concat(std::vector<Regex> items);
Regex re_alt(std::vector<Regex> items);
Regex re_repeat(Regex sub, int64_t min, int64_t max);
// Raw bytes, matched as they are (no UTF-8 encoding): used for the byte strings that stand for
// special tokens (see special_token_bytes in matcher.h), which no UTF-8 text can contain.
Regex re_bytes(std::string bytes);
// Non-negative decimal integers without leading zeros divisible by k (1 <= k <= kMaxMultiple):
// the k-state remainder automaton, which no regex of reasonable size spells out.
inline constexpr int64_t kMaxMultiple = 10000;
Regex re_multiple(int64_t k);
inline Regex re_star(Regex sub) {
  return re_repeat(std::move(sub), 0, -1);
}
inline Regex re_plus(Regex sub) {
  return re_repeat(std::move(sub), 1, -1);
}
inline Regex re_opt(Regex sub) {
  return re_repeat(std::move(sub), 0, 1);
}

// Canonical text of a node (for error messages and debugging).
std::string regex_to_string(const Regex& r);
// Structural equality (hash first, then the trees): how lexemes and alternatives deduplicate.
bool regex_equal(const Regex& a, const Regex& b);
// Whether the node can match the empty string / can match nothing at all.
bool regex_nullable(const Regex& r);

Regex parse_ecma_pattern(std::string_view pattern);
Regex parse_regex(std::string_view pattern);

// Normalises a set of ranges: sorted, merged, surrogates (D800-DFFF) removed.
std::vector<CodeRange> normalize_ranges(std::vector<CodeRange> ranges);

}  // namespace loom::grammar
