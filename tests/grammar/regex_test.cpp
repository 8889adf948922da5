// Regexes through the lexer DFA: literal, class, Unicode (UTF-8 byte sequences), quantifier and
// alternation semantics; JSON Schema's search semantics for "pattern"; errors for what cannot
// be expressed.
#include "grammar/regex.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "grammar/lexer.h"

namespace loom::grammar {
namespace {

// Whether `r` matches all of `text`.
bool full_match(const Regex& r, std::string_view text) {
  if (regex_nullable(r) && text.empty()) return true;
  if (regex_nullable(r)) {
    // The lexer refuses nullable lexemes; "x" + r + "x" tests the rest.
    Lexer lx({re_concat({re_char('\x01'), r})});
    IdSet all(1);
    all.set(0);
    Lexer::State s = lx.next(lx.start(all), 1);
    for (char c : text) s = lx.next(s, static_cast<uint8_t>(c));
    return s != Lexer::kDead && !lx.accepting(s).empty();
  }
  Lexer lx({r});
  IdSet all(1);
  all.set(0);
  Lexer::State s = lx.start(all);
  for (char c : text) s = lx.next(s, static_cast<uint8_t>(c));
  return s != Lexer::kDead && !lx.accepting(s).empty();
}

TEST(Regex, LiteralsClassesAndQuantifiers) {
  const Regex r = parse_regex("a[b-d]+x{2,3}(yz|w)?");
  EXPECT_TRUE(full_match(r, "abxx"));
  EXPECT_TRUE(full_match(r, "adcbxxxyz"));
  EXPECT_TRUE(full_match(r, "abxxw"));
  EXPECT_FALSE(full_match(r, "axx"));
  EXPECT_FALSE(full_match(r, "abxxxx"));
  EXPECT_FALSE(full_match(r, "abxxy"));
  EXPECT_TRUE(full_match(parse_regex("\\d{3}-\\w+\\s?\\.$"), "123-a_Z9."));
  EXPECT_FALSE(full_match(parse_regex("[^a-c]"), "b"));
  EXPECT_TRUE(full_match(parse_regex("[^a-c]"), "\xe4\xb8\xad"));  // one character, 3 bytes
  EXPECT_TRUE(full_match(parse_regex("x{2}"), "xx"));
  EXPECT_TRUE(full_match(parse_regex("a{,2}"), "a{,2}")) << "not a quantifier: literal braces";
}

TEST(Regex, UnicodeRangesAsUtf8) {
  const Regex r = parse_regex("[\\u00e9-\\u4e2d\\u{1F600}]+");
  EXPECT_TRUE(full_match(r, "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"));
  EXPECT_FALSE(full_match(r, "\xc3\xa8"));
  EXPECT_FALSE(full_match(r, "\xe4\xb8\xae"));
  // Every code point of a wide range, at its UTF-8 length boundaries.
  const Regex any = re_repeat(re_class({{0x70, 0x10FFFF}}), 1, -1);
  for (uint32_t cp :
       {0x70u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    EXPECT_TRUE(full_match(any, s)) << std::hex << cp;
  }
  EXPECT_FALSE(full_match(any, "\xed\xa0\x80")) << "a surrogate is not UTF-8";
  EXPECT_FALSE(full_match(any, "\xc0\xaf")) << "an overlong form is not UTF-8";
}

TEST(Regex, EcmaPatternsSearch) {
  const Regex p = parse_ecma_pattern("ab+c");
  EXPECT_TRUE(full_match(p, "xxabbbcyy"));
  EXPECT_FALSE(full_match(p, "xxacyy"));
  const Regex anchored = parse_ecma_pattern("^[A-Z]{2}\\d$");
  EXPECT_TRUE(full_match(anchored, "AB1"));
  EXPECT_FALSE(full_match(anchored, "xAB1"));
  EXPECT_FALSE(full_match(anchored, "AB12"));
  const Regex alt = parse_ecma_pattern("^a$|b");
  EXPECT_TRUE(full_match(alt, "a"));
  EXPECT_TRUE(full_match(alt, "xbx"));
  EXPECT_FALSE(full_match(alt, "ax"));
  EXPECT_TRUE(full_match(parse_ecma_pattern("^$"), ""));
}

// Intersection and complement: [a-z]+ and .{2,4}, but not "abc" and nothing containing "zz".
TEST(Regex, IntersectionAndComplementLexemes) {
  LexemeSpec spec;
  spec.components.push_back({parse_regex("[a-z]+"), false});
  spec.components.push_back({parse_regex(".{2,4}"), false});
  spec.components.push_back({parse_regex("abc"), true});
  spec.components.push_back({parse_ecma_pattern("zz"), true});
  Lexer lx({spec});
  IdSet all(1);
  all.set(0);
  auto match = [&](std::string_view text) {
    Lexer::State s = lx.start(all);
    for (char c : text) s = lx.next(s, static_cast<uint8_t>(c));
    return s != Lexer::kDead && !lx.accepting(s).empty();
  };
  EXPECT_TRUE(match("ab"));
  EXPECT_TRUE(match("abcd"));
  EXPECT_TRUE(match("xyz"));
  EXPECT_FALSE(match("abc"));
  EXPECT_FALSE(match("a"));
  EXPECT_FALSE(match("abcde"));
  EXPECT_FALSE(match("azz"));
  EXPECT_FALSE(match("a1"));
  Lexer::State s = lx.start(all);
  for (char c : std::string("a1")) s = lx.next(s, static_cast<uint8_t>(c));
  EXPECT_EQ(s, Lexer::kDead) << "a positive component died: the whole lexeme is dead";
}

TEST(Regex, WhatCannotBeExpressedIsAnError) {
  for (const char* p : {"(?=a)b", "(?!a)", "(a)\\1", "\\bword", "a^b", "\\p{L}"}) {
    try {
      parse_ecma_pattern(p);
      ADD_FAILURE() << p;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnsupported) << p << ": " << e.what();
    }
  }
  for (const char* p : {"(ab", "ab)", "[a-", "a**", "[z-a]", "\\", "x{3,1}"}) {
    try {
      parse_ecma_pattern(p);
      ADD_FAILURE() << p;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << p << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("offset"), std::string::npos) << e.what();
    }
  }
  const std::string deep(1000, '(');
  EXPECT_THROW(parse_ecma_pattern(deep), Error);
  EXPECT_THROW(Lexer({parse_regex("(a{1000}){1000}")}), Error) << "bounded automaton size";
}

}  // namespace
}  // namespace loom::grammar
