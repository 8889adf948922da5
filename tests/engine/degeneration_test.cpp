// DegenerationDetector: loops of every period are caught within the stated delay, text that
// repeats the way ordinary text does is not, and what a detection says to keep is the loop's
// first copy.
#include "engine/degeneration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace loom {
namespace {

// Feeds tokens (each with a one-character text, so characters and tokens line up).
std::optional<Degeneration> feed(DegenerationDetector& d, const std::vector<int32_t>& tokens) {
  std::optional<Degeneration> found;
  for (const int32_t t : tokens) {
    auto g = d.push(t, std::string(1, static_cast<char>('A' + t % 26)));
    if (g && !found) found = g;
  }
  return found;
}

std::vector<int32_t> random_tokens(std::mt19937& rng, size_t n, int32_t vocab = 50000) {
  std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
  std::vector<int32_t> v(n);
  for (auto& t : v) t = pick(rng);
  return v;
}

TEST(Degeneration, OneTokenRunFiresAfterMinLoopTokens) {
  std::mt19937 rng(1);
  std::vector<int32_t> text = random_tokens(rng, 100);
  text.insert(text.end(), 200, 7);
  DegenerationDetector d;
  auto g = feed(d, text);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->period_tokens, 1);
  EXPECT_EQ(g->loop_start, 100);
  EXPECT_EQ(g->at_token, 100 + 56 - 1);
  EXPECT_EQ(g->keep_tokens, 101);  // the first copy of the unit stays
  EXPECT_EQ(g->keep_bytes, 101);
  EXPECT_TRUE(d.fired());
}

TEST(Degeneration, LoopsOfEveryPeriodAreCaughtWithinFivePeriodsOr64Tokens) {
  std::mt19937 rng(2);
  for (int32_t p : {1, 2, 3, 5, 7, 13, 16, 17, 40, 99, 128, 255, 300, 511, 512}) {
    SCOPED_TRACE(p);
    const size_t prefix = 1000 + static_cast<size_t>(p) * 3;
    std::vector<int32_t> text = random_tokens(rng, prefix);
    const std::vector<int32_t> unit = random_tokens(rng, static_cast<size_t>(p));
    const int copies = std::max(8, 80 / p + 1);
    for (int copy = 0; copy < copies; ++copy) text.insert(text.end(), unit.begin(), unit.end());
    DegenerationDetector d;
    auto g = feed(d, text);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->period_tokens, p);
    EXPECT_EQ(g->loop_start, static_cast<int64_t>(prefix));
    EXPECT_LE(g->at_token - g->loop_start + 1, std::max<int64_t>(5 * p, 64));
    EXPECT_EQ(g->keep_tokens, static_cast<int64_t>(prefix) + p);
  }
}

TEST(Degeneration, LongerThanMaxPeriodIsNotALoop) {
  std::mt19937 rng(3);
  std::vector<int32_t> text = random_tokens(rng, 50);
  const std::vector<int32_t> unit = random_tokens(rng, 600);
  for (int copy = 0; copy < 5; ++copy) text.insert(text.end(), unit.begin(), unit.end());
  DegenerationDetector d;
  EXPECT_FALSE(feed(d, text));
}

TEST(Degeneration, OrdinaryRepetitionDoesNotFire) {
  std::mt19937 rng(4);
  DegenerationDetector d;
  std::vector<int32_t> text;
  // "very very", a word three times, a short phrase three times.
  for (int i = 0; i < 200; ++i) {
    auto line = random_tokens(rng, 12);
    text.insert(text.end(), line.begin(), line.end());
    text.insert(text.end(), {5, 5});
    text.insert(text.end(), {6, 6, 6});
    for (int k = 0; k < 3; ++k) text.insert(text.end(), {8, 9, 10, 11});
  }
  // A refrain after every new line (Psalm 136).
  const std::vector<int32_t> refrain = random_tokens(rng, 9);
  for (int i = 0; i < 30; ++i) {
    auto line = random_tokens(rng, 10);
    text.insert(text.end(), line.begin(), line.end());
    text.insert(text.end(), refrain.begin(), refrain.end());
  }
  // Twelve near-identical paragraphs that differ in a few tokens each (Numbers 7).
  const std::vector<int32_t> offering = random_tokens(rng, 120);
  for (int day = 0; day < 12; ++day) {
    auto names = random_tokens(rng, 4);
    text.insert(text.end(), names.begin(), names.end());
    text.insert(text.end(), offering.begin(), offering.end());
  }
  // Three verbatim copies of a paragraph (a chorus).
  const std::vector<int32_t> chorus = random_tokens(rng, 40);
  for (int k = 0; k < 3; ++k) text.insert(text.end(), chorus.begin(), chorus.end());
  // A run of 55 identical tokens (a long table rule) and 27 copies of a 2-token unit.
  text.insert(text.end(), 55, 12);
  for (int k = 0; k < 27; ++k) text.insert(text.end(), {13, 14});
  text.push_back(99);
  EXPECT_FALSE(feed(d, text));
  // And a long random text, through several rebuilds of the window, on a small vocabulary.
  DegenerationDetector d2;
  EXPECT_FALSE(feed(d2, random_tokens(rng, 50000, 400)));
}

TEST(Degeneration, WindowRebuildKeepsFinding) {
  std::mt19937 rng(5);
  DegenerationRule rule;
  std::vector<int32_t> text = random_tokens(rng, 3 * static_cast<size_t>(rule.window_tokens) + 77);
  const std::vector<int32_t> unit = random_tokens(rng, 300);
  for (int copy = 0; copy < 6; ++copy) text.insert(text.end(), unit.begin(), unit.end());
  DegenerationDetector d(rule);
  auto g = feed(d, text);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->period_tokens, 300);
  EXPECT_EQ(g->loop_start, 3 * rule.window_tokens + 77);
}

TEST(Degeneration, FiresOnce) {
  DegenerationDetector d;
  int fired = 0;
  for (int i = 0; i < 1000; ++i) fired += d.push(3, "x").has_value() ? 1 : 0;
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(d.tokens(), 1000);
}

TEST(Degeneration, CharacterRunInsideTokensOfVaryingLength) {
  // One run of "ab" spelled by tokens of varying length: no token loop, a character loop.
  std::mt19937 rng(6);
  DegenerationDetector d;
  std::string prose = "Some ordinary words first. ";
  for (size_t i = 0; i < prose.size(); ++i) {
    ASSERT_FALSE(d.push(1000 + static_cast<int32_t>(i), prose.substr(i, 1)));
  }
  const std::string pieces[] = {"ab", "abab", "ababab", "abababab"};
  std::optional<Degeneration> g;
  int64_t chars = static_cast<int64_t>(prose.size());
  for (int i = 0; i < 200 && !g; ++i) {
    const size_t k = std::uniform_int_distribution<size_t>(0, 3)(rng);
    g = d.push(static_cast<int32_t>(k), pieces[k]);
    chars += static_cast<int64_t>(pieces[k].size());
  }
  ASSERT_TRUE(g);
  EXPECT_EQ(g->period_chars, 2);
  EXPECT_EQ(g->period_tokens, 0);
  EXPECT_EQ(g->keep_bytes, static_cast<int64_t>(prose.size()) + 2);
  EXPECT_EQ(g->at_char, chars);
  EXPECT_EQ(g->loop_start, static_cast<int64_t>(prose.size()));
}

TEST(Degeneration, MultibyteCharactersCountOnce) {
  DegenerationDetector d;
  const std::string chan = "\u4ea7";  // 产, three bytes
  std::optional<Degeneration> g;
  // Tokens of two and five characters alternate, so only the characters form a run.
  for (int i = 0; i < 100 && !g; ++i) {
    std::string t;
    for (int k = 0; k < (i % 2 ? 5 : 2); ++k) t += chan;
    g = d.push(i % 2 ? 71 : 72, t);
  }
  ASSERT_TRUE(g);
  EXPECT_EQ(g->period_chars, 1);
  EXPECT_EQ(g->at_char, 161);  // the first token that completes 160 characters
  EXPECT_EQ(g->keep_bytes, 3);
}

TEST(Degeneration, BlankRunsAreNotCharacterLoops) {
  DegenerationDetector d;
  std::string spaces(300, ' ');
  EXPECT_FALSE(d.push(1, "x = 1"));
  EXPECT_FALSE(d.push(2, spaces));
  EXPECT_FALSE(
      d.push(3, "\n\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t"));
  EXPECT_FALSE(d.push(4, "y"));
}

TEST(Degeneration, BadRulesAreRefused) {
  DegenerationRule rule;
  rule.window_tokens = 100;
  EXPECT_ANY_THROW(DegenerationDetector{rule});
  rule = {};
  rule.min_copies = 1;
  EXPECT_ANY_THROW(DegenerationDetector{rule});
}

}  // namespace
}  // namespace loom
