// The Earley parser and the Matcher on a small hand-built grammar: consuming tokens, stopping,
// rollback, and fill_mask equal to trying every token (the brute-force oracle).
#include "grammar/matcher.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "grammar/json_schema.h"

namespace loom::grammar {
namespace {

// A JSON-ish list of integers: "[" ws? (int (ws? "," ws? int)*)? ws? "]"
std::shared_ptr<CompiledGrammar> int_list() {
  auto g = std::make_shared<Grammar>();
  const int32_t open = Grammar::lexeme(g->add_lexeme(re_char('[')));
  const int32_t close = Grammar::lexeme(g->add_lexeme(re_char(']')));
  const int32_t comma = Grammar::lexeme(g->add_lexeme(re_char(',')));
  const int32_t ws = Grammar::lexeme(g->add_lexeme(re_plus(re_class({{' ', ' '}, {'\n', '\n'}}))));
  const int32_t num = Grammar::lexeme(
      g->add_lexeme(re_alt({re_char('0'), re_concat({re_opt(re_char('-')), re_class({{'1', '9'}}),
                                                     re_star(re_class({{'0', '9'}}))})})));
  const int32_t s = g->add_rule("list"), items = g->add_rule("items"), more = g->add_rule("more"),
                w = g->add_rule("ws?");
  g->add_production(w, {});
  g->add_production(w, {ws});
  g->add_production(s, {open, w, items, w, close});
  g->add_production(s, {open, w, close});
  g->add_production(items, {num, more});
  g->add_production(more, {});
  g->add_production(more, {w, comma, w, num, more});
  g->set_start(s);
  g->finalize();
  return std::make_shared<CompiledGrammar>(g);
}

std::shared_ptr<const TokenVocab> small_vocab() {
  std::vector<std::string> bytes = {"[",  "]",  ",", " ",  "1",  "0",  "12", "-",     "[1",  "1,",
                                    ", ", "]]", "x", "01", "2]", "\n", "-0", "<eos>", "9, 9"};
  std::vector<bool> text(bytes.size(), true);
  text[17] = false;  // <eos>
  return std::make_shared<const TokenVocab>(bytes, text, std::vector<int32_t>{17});
}

// Walks random paths through the grammar (`trials` of up to `steps` tokens) and checks at every
// step that fill_mask equals trying every token; counts the masks allowing more than `wide`.
void expect_masks_equal_trying_every_token(const std::shared_ptr<CompiledGrammar>& g,
                                           const std::shared_ptr<const TokenVocab>& v,
                                           uint32_t seed, int trials, int steps,
                                           size_t wide = SIZE_MAX, size_t* n_wide = nullptr) {
  std::mt19937 rng(seed);
  for (int trial = 0; trial < trials; ++trial) {
    Matcher m(g, v);
    for (int step = 0; step < steps; ++step) {
      IdSet mask;
      m.fill_mask(mask);
      std::vector<int32_t> allowed;
      for (size_t id = 0; id < v->size(); ++id) {
        const bool ok = m.consume_token(static_cast<int32_t>(id));
        if (ok) {
          m.rollback(1);
          allowed.push_back(static_cast<int32_t>(id));
        }
        ASSERT_EQ(mask.test(id), ok) << "token '" << v->bytes(static_cast<int32_t>(id))
                                     << "' at step " << step << " of trial " << trial;
      }
      if (n_wide != nullptr && allowed.size() > wide) ++*n_wide;
      if (allowed.empty()) break;
      const int32_t pick = allowed[rng() % allowed.size()];
      ASSERT_TRUE(m.consume_token(pick));
      if (m.finished()) break;
    }
  }
}

TEST(Matcher, AcceptsTheLanguageAndStopsOnlyWhenComplete) {
  auto g = int_list();
  auto v = small_vocab();
  for (const char* ok : {"[]", "[ ]", "[1]", "[1,2, -30 ,\n4]", "[0]"}) {
    Matcher m(g, v);
    EXPECT_TRUE(m.consume_bytes(ok)) << ok;
    EXPECT_TRUE(m.can_stop()) << ok;
  }
  for (const char* bad : {"[01]", "[1,]", "[,1]", "[1 2]", "[-]", "]"}) {
    Matcher m(g, v);
    const bool consumed = m.consume_bytes(bad);
    EXPECT_FALSE(consumed && m.can_stop()) << bad;
  }
  Matcher m(g, v);
  EXPECT_TRUE(m.consume_bytes("[12"));
  EXPECT_FALSE(m.can_stop());
}

TEST(Matcher, MaskEqualsTryingEveryToken) {
  expect_masks_equal_trying_every_token(int_list(), small_vocab(), 7, 200, 12);
}

// Masks are cached per class of lexer states that differ only in a repetition count (see
// Lexer::mask_class): near the bounds the classes must split, far from them they are shared.
TEST(Matcher, CountedRepetitionMasksEqualTryingEveryToken) {
  auto g = std::make_shared<Grammar>();
  const int32_t open = Grammar::lexeme(g->add_lexeme(re_char('[')));
  const int32_t close = Grammar::lexeme(g->add_lexeme(re_char(']')));
  const int32_t comma = Grammar::lexeme(g->add_lexeme(re_char(',')));
  const int32_t str = Grammar::lexeme(g->add_lexeme(re_concat(
      {re_char('"'), re_repeat(re_class({{'a', 'c'}, {0xE9, 0xE9}}), 2, 13), re_char('"')})));
  const int32_t s = g->add_rule("list"), more = g->add_rule("more");
  g->add_production(s, {open, str, more, close});
  g->add_production(more, {});
  g->add_production(more, {comma, str, more});
  g->set_start(s);
  g->finalize();
  auto cg = std::make_shared<CompiledGrammar>(g);
  std::vector<std::string> bytes = {"[",    "]",     ",",   "\"",    "a",    "ab",
                                    "abc",  "aaaa",  "b\"", "\",\"", "c\"]", "\xC3\xA9",
                                    "\xC3", "\xA9" "a", "ca",  "<eos>"};
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  auto v = std::make_shared<const TokenVocab>(
      bytes, text, std::vector<int32_t>{static_cast<int32_t>(bytes.size() - 1)});
  expect_masks_equal_trying_every_token(cg, v, 11, 300, 40);
}

TEST(Matcher, RollbackRestoresEverything) {
  auto g = int_list();
  auto v = small_vocab();
  Matcher m(g, v);
  ASSERT_TRUE(m.consume_token(8));  // "[1"
  IdSet before;
  m.fill_mask(before);
  ASSERT_TRUE(m.consume_token(10 - 1));  // "1,"
  ASSERT_TRUE(m.consume_token(3));       // " "
  m.rollback(2);
  IdSet after;
  m.fill_mask(after);
  EXPECT_EQ(before, after);
  EXPECT_EQ(m.n_consumed(), 1u);
}

TEST(Grammar, UndefinedOrUnproductiveStartIsAnError) {
  Grammar g;
  const int32_t a = g.add_rule("a");
  g.add_production(a, {a, Grammar::lexeme(g.add_lexeme(re_char('x')))});
  g.set_start(a);
  EXPECT_THROW(g.finalize(), Error);
}

// Inside strings a mask takes the tokens that are string text in bulk (TokenVocab::text_tokens,
// text_below; Lexer::loops_on_string_text) instead of walking their bytes: still exactly the
// tokens that can come next, for free strings, keys beside declared ones, bounded and patterned
// strings, and tokens holding quotes, escapes, controls and every kind of (cut) UTF-8.
TEST(Matcher, StringTextMasksEqualTryingEveryToken) {
  const char* object = R"({"type": "object",
      "properties": {"name": {"type": "string"}, "nap": {"type": "string", "maxLength": 3},
                     "id": {"type": "string", "pattern": "^[a-c]+$"},
                     "nb": {"type": "string", "pattern": "^[\\u0000-\\u007f]*$"}},
      "additionalProperties": {"type": "string"}})";
  // clang-format off
  std::vector<std::string> bytes = {
      "{", "}", "\"", ":", ",", " ", "\":", "\",", "\"}", "{\"", "n", "na", "nam", "name", "nap",
      "id", "a", "ab", "abc", "x", "xy", "hello world", "\\", "\\n", "\\u00e9", "\\\"", "a\"",
      "\n", "\x01", "\x7f", "\xC3\xA9", "\xC3", "\xA9", "\xA9" "a", "\xE2\x82\xAC", "\xE2\x82",
      "\xE2", "\xED\x9F\xBF", "\xED\xA0\x80", "\xF0\x9F\x98\x80", "\xF0\x9F", "\xF4\x90",
      "\xC0\xAF", "\xF5", "a\xC3", "\xC3\xA9\"", "\xC3\xA9\":", "\xE2\x82\xACx", "id\":\"",
      "e\":", "nb", "b\":\"", "<eos>"};
  // clang-format on
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  auto v = std::make_shared<const TokenVocab>(
      bytes, text, std::vector<int32_t>{static_cast<int32_t>(bytes.size() - 1)});
  size_t bulk_masks = 0;
  for (const char* schema :
       {object, R"({"type": "string", "pattern": "^[\\u0000-\\u007f]*$"})",
        R"({"type": "string", "maxLength": 4})",
        R"({"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 5}})",
        R"({"type": "array", "items": {"type": "string", "maxLength": 13}})",
        R"({"type": "object", "propertyNames": {"maxLength": 2},
            "additionalProperties": {"type": "string", "maxLength": 1}})"}) {
    // (ASCII-only text loops on ASCII but not on UTF-8; a bounded string does not loop.)
    SCOPED_TRACE(schema);
    auto cg = std::make_shared<CompiledGrammar>(
        compile_json_schema(nlohmann::ordered_json::parse(schema)));
    ASSERT_NO_FATAL_FAILURE(expect_masks_equal_trying_every_token(cg, v, 5, 150, 30, 30,
                                                                  &bulk_masks));
  }
  EXPECT_GT(bulk_masks, 100u);  // the walks did reach string interiors
}

// A string of bounded length counts its characters in the lexer's states: from each, every
// character of string text leads to one next state, down to the state where none does.
TEST(Lexer, StringTextBudgetCountsTheCharactersLeft) {
  Lexer lx({re_concat({re_char('"'),
                       re_repeat(re_class({{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}}), 0, 3),
                       re_char('"')}),
            re_concat({re_char('x'), re_repeat(re_char('y'), 0, 2)})});
  IdSet all(2);
  all.set(0);
  all.set(1);
  const Lexer::State start = lx.start(all);
  EXPECT_EQ(lx.string_text_budget(start, 10), -1);  // '"' and 'x' go different ways
  Lexer::State s = lx.next(start, '"');
  EXPECT_EQ(lx.string_text_budget(s, 10), 3);
  s = lx.next(s, 'a');
  EXPECT_EQ(lx.string_text_budget(s, 10), 2);
  s = lx.next(lx.next(s, 0xC3), 0xA9);  // é
  EXPECT_EQ(lx.string_text_budget(s, 10), 1);
  s = lx.next(s, ' ');
  EXPECT_EQ(lx.string_text_budget(s, 10), 0);
  EXPECT_EQ(lx.next(s, 'a'), Lexer::kDead);
  EXPECT_EQ(lx.string_text_budget(lx.next(s, '"'), 10), -1);  // complete: the next lexeme's text
  // 'y' continues x but no other character does.
  EXPECT_EQ(lx.string_text_budget(lx.next(start, 'x'), 10), -1);
}

TEST(TokenVocab, TextTokensWithinCountCharactersCutOnesToo) {
  std::vector<std::string> bytes = {"a", "ab", "\xC3\xA9", "\xC3", "a\xE2\x82", "\"",
                                    std::string(20, 'z'), std::string(17, 'y'), "<eos>"};
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  auto v = std::make_shared<const TokenVocab>(bytes, text, std::vector<int32_t>{8});
  EXPECT_EQ(v->max_text_chars(), 20);
  auto within = [&](int32_t chars) {
    IdSet s(v->size());
    v->text_tokens_within(chars, s);
    std::vector<size_t> ids;
    s.for_each([&](size_t id) { ids.push_back(id); });
    return ids;
  };
  EXPECT_EQ(within(0), std::vector<size_t>{});
  EXPECT_EQ(within(1), (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(within(2), (std::vector<size_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(within(17), (std::vector<size_t>{0, 1, 2, 3, 4, 7}));
  EXPECT_EQ(within(19), (std::vector<size_t>{0, 1, 2, 3, 4, 7}));
  EXPECT_EQ(within(20), (std::vector<size_t>{0, 1, 2, 3, 4, 6, 7}));
}

TEST(TokenVocab, StringTextIsWellFormedUtf8WithoutQuotesEscapesOrControls) {
  std::vector<std::string> bytes = {"ab",           "a\"",      "\\",       "\x1f",
                                    "\x7f",         "\xC3\xA9", "\xC3",     "\xA9",
                                    "\xE0\x9F\x80", "\xE0\xA0", "\xED\xA0", "\xF4\x8F\xBF\xBF",
                                    "\xF4\x90",     "\xF8",     "\xC1\x81"};
  const std::vector<bool> want = {true,  false, false, false, true,  true,  true, false,
                                  false, true,  false, true,  false, false, false};
  auto v = std::make_shared<const TokenVocab>(bytes, std::vector<bool>(bytes.size(), true),
                                              std::vector<int32_t>{});
  for (size_t i = 0; i < bytes.size(); ++i) {
    EXPECT_EQ(v->text_tokens().test(i), want[i]) << i;
  }
}

}  // namespace
}  // namespace loom::grammar
