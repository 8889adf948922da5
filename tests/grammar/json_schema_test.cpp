// JSON Schema -> grammar: what the compiled grammar accepts, keyword by keyword, for the
// keywords whose encoding is not obvious (fractional bounds, whole multiples, not, if/then/else,
// property counts and names), and clear errors for what cannot be expressed.
#include "grammar/json_schema.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "grammar/matcher.h"

namespace loom::grammar {
namespace {

using Json = nlohmann::ordered_json;

std::shared_ptr<const TokenVocab> byte_vocab() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 255; ++b) bytes.emplace_back(1, static_cast<char>(b));
  bytes.emplace_back("<eos>");
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  return std::make_shared<const TokenVocab>(bytes, text, std::vector<int32_t>{255});
}

struct Schema {
  std::shared_ptr<CompiledGrammar> g;
  explicit Schema(const char* text)
      : g(std::make_shared<CompiledGrammar>(compile_json_schema(Json::parse(text)))) {}
  bool accepts(std::string_view s) const {
    Matcher m(g, byte_vocab());
    return m.consume_bytes(s) && m.can_stop();
  }
};

TEST(JsonSchema, FractionalBounds) {
  Schema s(R"({"type": "number", "minimum": 0.25, "maximum": 99.99})");
  for (const char* ok : {"0.25", "0.250", "0.3", "1", "99", "99.99", "99.9899", "42.5"}) {
    EXPECT_TRUE(s.accepts(ok)) << ok;
  }
  for (const char* bad : {"0.24", "0.2499", "-1", "99.991", "100", "0", "0.1"}) {
    EXPECT_FALSE(s.accepts(bad)) << bad;
  }
  Schema neg(R"({"type": "number", "minimum": -2.75, "exclusiveMaximum": 0})");
  for (const char* ok : {"-2.75", "-2.7", "-0.0001", "-1"}) EXPECT_TRUE(neg.accepts(ok)) << ok;
  for (const char* bad : {"-2.76", "0", "-0", "0.0", "1"}) EXPECT_FALSE(neg.accepts(bad)) << bad;
  EXPECT_THROW(Schema(R"({"type": "number", "exclusiveMinimum": 0.5})"), Error);
}

TEST(JsonSchema, WholeMultiples) {
  Schema s(R"({"type": "integer", "multipleOf": 7, "minimum": -20, "maximum": 100})");
  for (const char* ok : {"0", "7", "-14", "98", "49"}) EXPECT_TRUE(s.accepts(ok)) << ok;
  for (const char* bad : {"8", "-21", "105", "07", "1.0"}) EXPECT_FALSE(s.accepts(bad)) << bad;
  Schema n(R"({"type": "number", "multipleOf": 1})");
  EXPECT_TRUE(n.accepts("12"));
  EXPECT_TRUE(n.accepts("12.00"));
  EXPECT_FALSE(n.accepts("12.5"));
  Schema both(R"({"allOf": [{"multipleOf": 4}, {"multipleOf": 6}]})");
  EXPECT_TRUE(both.accepts("24"));
  EXPECT_FALSE(both.accepts("12.5"));
  EXPECT_FALSE(both.accepts("18"));
  EXPECT_THROW(Schema(R"({"type": "number", "multipleOf": 0.01})"), Error);  // float semantics
}

TEST(JsonSchema, NotIfThenElseAndProperties) {
  Schema not_obj(R"({"not": {"type": "object"}})");
  EXPECT_TRUE(not_obj.accepts("[1]"));
  EXPECT_FALSE(not_obj.accepts("{}"));
  Schema not_req(R"({"type": "object", "not": {"required": ["a"]}})");
  EXPECT_TRUE(not_req.accepts(R"({"b": 1})"));
  EXPECT_FALSE(not_req.accepts(R"({"a": 1})"));
  Schema cond(R"({"type": "object", "properties": {"kind": {"enum": ["x", "y"]}, "n": {}},
    "if": {"properties": {"kind": {"const": "x"}}}, "then": {"required": ["n"]}})");
  EXPECT_TRUE(cond.accepts(R"({"kind": "x", "n": 1})"));
  EXPECT_FALSE(cond.accepts(R"({"kind": "x"})"));
  EXPECT_TRUE(cond.accepts(R"({"kind": "y"})"));
  Schema counts(R"({"type": "object", "minProperties": 1, "maxProperties": 2,
    "propertyNames": {"pattern": "^[a-z]+$"}})");
  EXPECT_TRUE(counts.accepts(R"({"ab": 1})"));
  EXPECT_TRUE(counts.accepts(R"({"ab": 1, "c": 2})"));
  EXPECT_FALSE(counts.accepts("{}"));
  EXPECT_FALSE(counts.accepts(R"({"a": 1, "b": 2, "c": 3})"));
  EXPECT_FALSE(counts.accepts(R"({"A": 1})"));
  Schema deps(R"({"type": "object", "dependentRequired": {"a": ["b"]}})");
  EXPECT_TRUE(deps.accepts(R"({"b": 1})"));
  EXPECT_TRUE(deps.accepts(R"({"a": 1, "b": 2})"));
  EXPECT_FALSE(deps.accepts(R"({"a": 1})"));
}

TEST(JsonSchema, SeveralPatternProperties) {
  // A key matching both patterns satisfies both schemas; one matching none, additional.
  Schema s(R"({"type": "object", "patternProperties": {"^a": {"type": "integer"},
    "b$": {"minimum": 10}}, "additionalProperties": {"type": "string"}})");
  for (const char* ok : {R"({"ax": 1})", R"({"ab": 12})", R"({"xb": 20})", R"({"xb": "s"})",
                         R"({"zz": "s", "ab": 10})"}) {
    EXPECT_TRUE(s.accepts(ok)) << ok;
  }
  for (const char* bad :
       {R"({"ab": 5})", R"({"ab": "x"})", R"({"xb": 5})", R"({"zz": 1})", R"({"ax": "s"})"}) {
    EXPECT_FALSE(s.accepts(bad)) << bad;
  }
}

// An undeclared key is any string that is no declared key in any of the encodings the grammar
// writes ("/" or "\\/", a newline as "\\n", "\\u000a" or "\\u000A"): a declared key written
// either way is still that key, and takes its schema.
TEST(JsonSchema, UndeclaredKeysAreEveryOtherStringInAnyEncoding) {
  Schema s(R"({"type": "object", "properties": {"name": {"type": "string"},
    "a/b": {"type": "boolean"}, "x\ny": {"type": "null"}},
    "additionalProperties": {"type": "integer"}})");
  for (const char* ok :
       {R"({"name": "x"})", R"({"nam": 1})", R"({"names": 2})", R"({"": 3})", R"({"naME": 4})",
        R"({"a/b": true})", R"({"a\/b": false})", R"({"x\ny": null})", R"({"x\u000ay": null})",
        R"({"x\u000Ay": null})", R"({"a/": 5})", R"({"x\n": 6})", R"({"name": "x", "zz": 1})"}) {
    EXPECT_TRUE(s.accepts(ok)) << ok;
  }
  for (const char* bad : {R"({"name": 1})", R"({"a/b": 1})", R"({"a\/b": 1})", R"({"x\ny": 1})",
                          R"({"x\u000ay": 1})", R"({"x\u000Ay": 1})", R"({"x\u000ay": "s"})"}) {
    EXPECT_FALSE(s.accepts(bad)) << bad;
  }
}

// maxLength 32767 is common (MaskBench: 71 schemas above 4096); a plain string's counted
// repetition is built a character at a time as text arrives, and stays exact at its bounds.
TEST(JsonSchema, LongStringBoundsAreExactAndBuiltLazily) {
  auto text = [](size_t n, const std::string& unit = "x") {
    std::string s = "\"";
    for (size_t i = 0; i < n; ++i) s += unit;
    return s + "\"";
  };
  Schema big(R"({"type": "string", "maxLength": 1000000})");  // 40M NFA states if eager
  EXPECT_TRUE(big.accepts(text(3000)));
  Schema s(R"({"type": "string", "minLength": 5000, "maxLength": 5002})");
  EXPECT_FALSE(s.accepts(text(4999)));
  EXPECT_TRUE(s.accepts(text(5000)));
  EXPECT_TRUE(s.accepts(text(5002)));
  EXPECT_FALSE(s.accepts(text(5003)));
  EXPECT_TRUE(s.accepts(text(2500, "\\n\u00e9")));  // escapes and UTF-8: one character each
  EXPECT_FALSE(s.accepts(text(2502, "\\n\u00e9")));
  // At the bound only the closing quote may follow.
  Matcher m(s.g, byte_vocab());
  ASSERT_TRUE(m.consume_bytes(text(5002).substr(0, 5003)));
  IdSet mask;
  m.fill_mask(mask);
  for (int b = 0; b < 255; ++b) EXPECT_EQ(mask.test(static_cast<size_t>(b)), b == '"') << b;
  // A lexeme that cannot end within the lexer's state limit is refused when compiled.
  EXPECT_THROW(Schema(R"({"type": "string", "minLength": 30000})"), Error);
  // Beside a pattern the components are intersected, each count built up front: still bounded.
  try {
    Schema(R"({"type": "string", "pattern": "^a", "maxLength": 5000})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("beside a pattern"), std::string::npos) << e.what();
  }
}

// oneOf needs provably disjoint branches: an enum none of whose values passes the other branch
// is (MaskBench's colour definitions: names beside a "#rrggbb" pattern).
TEST(JsonSchema, OneOfEnumBesidePatternIsDisjoint) {
  Schema s(R"({"oneOf": [{"type": "string", "pattern": "^#[0-9a-f]{6}$"},
                          {"enum": ["red", "green", 7]}]})");
  for (const char* ok : {R"("#00ff00")", R"("red")", "7"}) EXPECT_TRUE(s.accepts(ok)) << ok;
  for (const char* bad : {R"("blue")", R"("#00ff0")", "8"}) EXPECT_FALSE(s.accepts(bad)) << bad;
  // "abc" passes both branches, so exactly one rejects it.
  Schema both(R"({"oneOf": [{"type": "string", "pattern": "^a"}, {"enum": ["abc", "x"]}]})");
  for (const char* ok : {R"("ab")", R"("x")"}) EXPECT_TRUE(both.accepts(ok)) << ok;
  for (const char* bad : {R"("abc")", R"("y")"}) EXPECT_FALSE(both.accepts(bad)) << bad;
}

TEST(JsonSchema, EnumOfObjectsKeepsTheValuesTheSiblingsAllow) {
  // Each listed value is checked against the schema beside the enum, recursively.
  Schema s(R"({"type": "object", "required": ["id"],
               "properties": {"id": {"type": "integer", "minimum": 1},
                              "tags": {"type": "array", "items": {"type": "string"},
                                       "maxItems": 2}},
               "additionalProperties": false,
               "enum": [{"id": 1, "tags": ["a"]}, {"id": 0}, {"id": 2, "extra": true},
                        {"tags": []}, {"id": 3, "tags": ["a", "b", "c"]}, {"id": 4, "tags": [5]},
                        {"id": 5}, [1, 2], "x"]})");
  for (const char* ok : {R"({"id": 1, "tags": ["a"]})", R"({"id":5})"}) {
    EXPECT_TRUE(s.accepts(ok)) << ok;
  }
  for (const char* bad : {R"({"id": 0})", R"({"id": 2, "extra": true})", R"({"tags": []})",
                          R"({"id": 3, "tags": ["a", "b", "c"]})", R"({"id": 4, "tags": [5]})",
                          "[1, 2]", R"("x")", R"({"id": 6})"}) {
    EXPECT_FALSE(s.accepts(bad)) << bad;
  }
  // Arrays: prefixItems, items: false, anyOf inside, and const beside enum.
  Schema a(R"({"type": "array", "prefixItems": [{"const": 1}], "items": false,
               "enum": [[1], [2], [1, 1], []]})");
  EXPECT_TRUE(a.accepts("[1]"));
  EXPECT_TRUE(a.accepts("[]"));
  for (const char* bad : {"[2]", "[1, 1]"}) EXPECT_FALSE(a.accepts(bad)) << bad;
  Schema n(R"({"properties": {"v": {"anyOf": [{"type": "null"}, {"enum": ["a", "b"]}]}},
               "enum": [{"v": null}, {"v": "a"}, {"v": "c"}, {"v": 1}]})");
  for (const char* ok : {R"({"v": null})", R"({"v": "a"})"}) EXPECT_TRUE(n.accepts(ok)) << ok;
  for (const char* bad : {R"({"v": "c"})", R"({"v": 1})"}) EXPECT_FALSE(n.accepts(bad)) << bad;
}

TEST(JsonSchema, NumbersInsideNotAreTheIntervalsAround) {
  Schema s(R"({"not": {"enum": [1, 3, "a", 1.0]}})");
  for (const char* ok :
       {"0", "2", "4", "2.5", "1.5", "-1", "0.999", "3.01", R"("b")", "true", "null", "[]"}) {
    EXPECT_TRUE(s.accepts(ok)) << ok;
  }
  for (const char* bad : {"1", "1.0", "1.00", "3", "3.0", R"("a")"}) {
    EXPECT_FALSE(s.accepts(bad)) << bad;
  }
  Schema i(R"({"type": "integer", "not": {"const": 3}})");
  for (const char* ok : {"2", "4", "-3", "30"}) EXPECT_TRUE(i.accepts(ok)) << ok;
  for (const char* bad : {"3", "3.5", R"("3")"}) EXPECT_FALSE(i.accepts(bad)) << bad;
  EXPECT_THROW(Schema(R"({"not": {"const": 2.5}})"), Error);  // fractional: refused, not loosened
}

// 300 optional properties in order (ESLint's rules object): members skipped between two written
// ones complete back into one large parser row each, the case the row index (grammar.h) serves.
TEST(JsonSchema, ManyOptionalPropertiesKeepTheirOrder) {
  Json schema = {{"type", "object"}, {"additionalProperties", false}};
  for (int i = 0; i < 300; ++i) {
    schema["properties"][fmt::format("p{:03}", i)] = {{"type", "integer"}};
  }
  schema["required"] = {"p150"};
  const Schema s(schema.dump().c_str());
  for (const char* ok : {R"({"p150": 1})", R"({"p000": 1, "p150": 2, "p299": 3})",
                         R"({"p007":1,"p008":2,"p150":0,"p151":5,"p298":6})",
                         R"({"p100": 1, "p149": 2, "p150": 3})"}) {
    EXPECT_TRUE(s.accepts(ok)) << ok;
  }
  for (const char* bad :
       {"{}", R"({"p000": 1})", R"({"p150": 1, "p150": 2})", R"({"p200": 1, "p150": 2})",
        R"({"p150": 1, "p300": 2})", R"({"p150": 1, "p001": 2})", R"({"p150": "x"})"}) {
    EXPECT_FALSE(s.accepts(bad)) << bad;
  }
}

TEST(JsonSchema, ErrorsNameTheKeywordAndPointer) {
  try {
    Schema(R"({"properties": {"x": {"type": "array", "uniqueItems": true}}})");
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("uniqueItems"), std::string::npos) << what;
    EXPECT_NE(what.find("#/properties/x"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace loom::grammar
