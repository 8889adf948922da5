// GBNF and whole-output regex grammars: the language each accepts (through a Matcher, the way
// decoding consumes text), exactness where greedy lexing could go wrong, special-token
// terminals, and the errors for bad grammars.
#include "grammar/gbnf.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "grammar/matcher.h"

namespace loom::grammar {
namespace {

std::shared_ptr<const TokenVocab> byte_vocab() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
  bytes.emplace_back("<eos>");
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  return std::make_shared<const TokenVocab>(bytes, text, std::vector<int32_t>{256});
}

bool accepts(const std::shared_ptr<Grammar>& g, std::string_view s) {
  Matcher m(std::make_shared<CompiledGrammar>(g), byte_vocab());
  return m.consume_bytes(s) && m.can_stop();
}

TEST(Gbnf, LiteralsClassesGroupsAndRepetition) {
  auto g = compile_gbnf(R"(
# a comment
root ::= greeting ", " name ("!" | "?")?   # trailing comment
greeting ::= "Hello" | "Hi"
name ::= [A-Z] [a-z]{1,7}
)");
  EXPECT_TRUE(accepts(g, "Hello, Bob"));
  EXPECT_TRUE(accepts(g, "Hi, Alexandr!"));
  EXPECT_TRUE(accepts(g, "Hi, Al?"));
  EXPECT_FALSE(accepts(g, "Hi, A"));          // {1,7}: at least one lower-case letter
  EXPECT_FALSE(accepts(g, "Hi, Alexandra"));  // eight
  EXPECT_FALSE(accepts(g, "Hello, bob"));     // [A-Z]
  EXPECT_FALSE(accepts(g, "Hello, Bob!!"));   // ? is one at most
}

TEST(Gbnf, ExactWhereAGreedyLexerWouldNotBe) {
  // [a-z]+ followed by a letter the class also matches: each character is its own terminal,
  // so the parser, not the lexer, decides where the run ends.
  auto g = compile_gbnf("root ::= [a-z]+ \"x\"\n");
  EXPECT_TRUE(accepts(g, "abcx"));
  EXPECT_TRUE(accepts(g, "xx"));
  EXPECT_FALSE(accepts(g, "abc"));
  auto h = compile_gbnf("root ::= (\"ab\" | \"abc\") \"cd\"\n");
  EXPECT_TRUE(accepts(h, "abcd"));
  EXPECT_TRUE(accepts(h, "abccd"));
  EXPECT_FALSE(accepts(h, "abd"));
}

TEST(Gbnf, EscapesUnicodeAndAnyCharacter) {
  auto g = compile_gbnf(R"(root ::= "\x41\u00e9\t\"\\" [^\n\]] . "€"
)");
  EXPECT_TRUE(accepts(g, "A\xC3\xA9\t\"\\xy\xE2\x82\xAC"));
  EXPECT_TRUE(accepts(g, "A\xC3\xA9\t\"\\\xE4\xB8\xAD\n\xE2\x82\xAC"));
  EXPECT_FALSE(accepts(g, "A\xC3\xA9\t\"\\\nx\xE2\x82\xAC"));  // [^\n]
}

TEST(Gbnf, MultiLineAlternativesAndNestedRules) {
  auto g = compile_gbnf(R"(root ::= value
value ::= object |
          array |
          "null"
object ::= "{" ( pair ( "," pair )* )? "}"
pair ::= "\"" [a-z]+ "\":" value
array ::= "[" (
  value ("," value)*
)? "]"
)");
  EXPECT_TRUE(accepts(g, "null"));
  EXPECT_TRUE(accepts(g, "{\"a\":[null,{}],\"b\":null}"));
  EXPECT_FALSE(accepts(g, "{\"a\":}"));
  EXPECT_FALSE(accepts(g, "[null,]"));
}

TEST(Gbnf, RepetitionForms) {
  auto g = compile_gbnf("root ::= \"a\"{2} \"b\"{1,} \"c\"{,2} \"d\"*\n");
  EXPECT_TRUE(accepts(g, "aab"));
  EXPECT_TRUE(accepts(g, "aabbbccddd"));
  EXPECT_FALSE(accepts(g, "ab"));
  EXPECT_FALSE(accepts(g, "aabccc"));
}

TEST(Gbnf, ErrorsNameTheLineAndTheProblem) {
  auto error_of = [](std::string_view text) -> std::string {
    try {
      compile_gbnf(text);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("root ::= foo\n").find("rule 'foo' is used but never defined"),
            std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nroot ::= \"b\"\n").find("defined twice"), std::string::npos);
  EXPECT_NE(error_of("start ::= \"a\"\n").find("no 'root' rule"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\\q\"\n").find("unknown escape"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"abc\n").find("line 1"), std::string::npos);
  EXPECT_NE(error_of("root ::= [z-a]\n").find("range"), std::string::npos);
  EXPECT_NE(error_of("root ::= (\"a\"\n").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"{99999}\n").find("repetition count"), std::string::npos);
  EXPECT_NE(error_of("root ::= \"a\"\nx ::= y\n").find("line 2"), std::string::npos);
  EXPECT_NE(error_of("root ::= <|im_end|>\n").find("tokenizer"), std::string::npos);
  EXPECT_NE(error_of("root ::= !<[5]>\n").find("negated"), std::string::npos);
  // Explosive repetition is bounded by the symbol budget, not memory.
  GbnfOptions small;
  small.max_symbols = 10'000;
  EXPECT_THROW(compile_gbnf("root ::= ((\"a\"{0,4000}){0,4000})\n", small), Error);
}

TEST(RegexGrammar, WholeOutputAndEmptyMatches) {
  auto g = compile_regex_grammar("[a-z]{2,4}@(example|test)\\.org");
  EXPECT_TRUE(accepts(g, "ab@test.org"));
  EXPECT_FALSE(accepts(g, "ab@test.org!"));
  EXPECT_FALSE(accepts(g, "a@test.org"));
  auto star = compile_regex_grammar("(ab)*");
  EXPECT_TRUE(accepts(star, ""));
  EXPECT_TRUE(accepts(star, "abab"));
  EXPECT_FALSE(accepts(star, "aba"));
  EXPECT_THROW(compile_regex_grammar("(a"), Error);
  EXPECT_THROW(compile_regex_grammar("[]"), Error);  // matches nothing
}

TEST(SpecialTokens, AreTerminalsNoTextCanSpell) {
  // Token 3 is special: the grammar names it by its bytes; text tokens, byte 0xFF among them,
  // can never produce it.
  std::vector<std::string> bytes = {"a", "b", "\xFF", special_token_bytes(3), "<eos>"};
  std::vector<bool> text = {true, true, true, true, false};
  auto vocab = std::make_shared<const TokenVocab>(bytes, text, std::vector<int32_t>{4});
  auto g = std::make_shared<Grammar>();
  const int32_t root = g->add_rule("root");
  g->add_production(root, {Grammar::lexeme(g->add_lexeme(re_literal("a"))),
                           Grammar::lexeme(g->add_lexeme(re_bytes(special_token_bytes(3)))),
                           Grammar::lexeme(g->add_lexeme(re_literal("b")))});
  g->set_start(root);
  g->finalize();
  auto cg = std::make_shared<CompiledGrammar>(g);
  Matcher m(cg, vocab);
  IdSet mask;
  m.fill_mask(mask);
  EXPECT_TRUE(mask.test(0));
  EXPECT_FALSE(mask.test(3));
  ASSERT_TRUE(m.consume_token(0));
  m.fill_mask(mask);
  EXPECT_TRUE(mask.test(3));
  EXPECT_FALSE(mask.test(2));  // a lone 0xFF byte token
  EXPECT_FALSE(mask.test(1));
  ASSERT_TRUE(m.consume_token(3));
  ASSERT_TRUE(m.consume_token(1));
  EXPECT_TRUE(m.can_stop());
}

}  // namespace
}  // namespace loom::grammar
