// Stop strings over streamed pieces, EOS ids and max tokens.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "sample/stop_strings.h"

namespace loom::sample {
namespace {

struct Streamed {
  std::string text;
  bool stopped = false;
};

Streamed stream(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  Streamed out;
  for (const std::string& piece : pieces) {
    const StopStringMatcher::Result r = m.push(piece);
    out.text += r.text;
    if (r.stopped) {
      out.stopped = true;
      return out;
    }
  }
  out.text += m.flush();
  return out;
}

TEST(StopStrings, NoStopPassesTextThrough) {
  StopStringMatcher m({"###"});
  const Streamed s = stream(m, {"Hello", ", ", "world"});
  EXPECT_EQ(s.text, "Hello, world");
  EXPECT_FALSE(s.stopped);
}

TEST(StopStrings, StopInsideOnePieceCutsBeforeIt) {
  StopStringMatcher m({"STOP"});
  const StopStringMatcher::Result r = m.push("abcSTOPdef");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "abc");
  EXPECT_EQ(m.matched_index(), 0u);
  EXPECT_TRUE(m.push("more").text.empty());  // stays stopped
}

TEST(StopStrings, StopSpanningPiecesIsNeverPartlyStreamed) {
  StopStringMatcher m({"</answer>"});
  StopStringMatcher::Result r = m.push("42</an");
  EXPECT_EQ(r.text, "42");  // "</an" could be the stop: held back
  EXPECT_EQ(m.held(), "</an");
  r = m.push("sw");
  EXPECT_EQ(r.text, "");
  r = m.push("er> trailing");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
}

TEST(StopStrings, AFalseStartIsReleased) {
  StopStringMatcher m({"</answer>"});
  EXPECT_EQ(m.push("a</an").text, "a");
  // "</ant" can no longer become the stop; "<" alone is not held (no stop starts with "t").
  EXPECT_EQ(m.push("t").text, "</ant");
  EXPECT_EQ(m.held(), "");
}

TEST(StopStrings, HeldTailIsReleasedAtTheEnd) {
  StopStringMatcher m({"User:"});
  const Streamed s = stream(m, {"Bye.", "\nUs"});
  EXPECT_FALSE(s.stopped);
  EXPECT_EQ(s.text, "Bye.\nUs");
}

TEST(StopStrings, MultipleStopsReportWhichOne) {
  StopStringMatcher m({"\n\n", "", "User:"});
  const Streamed s = stream(m, {"Hi", " there", "\nUser", ": ok"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "Hi there\n");
  EXPECT_EQ(m.matched_index(), 2u);  // index into the given list (the empty stop is ignored)
}

TEST(StopStrings, OverlappingStopsFirstCompletedWins) {
  // "bc" is complete after "abc", before "abcd" is: a token-by-token stream would stop there.
  {
    StopStringMatcher m({"abcd", "bc"});
    const Streamed s = stream(m, {"xabcd"});
    EXPECT_EQ(s.text, "xa");
    EXPECT_EQ(m.matched_index(), 1u);
  }
  // Two stops ending together: the longer one (starting first) is cut.
  {
    StopStringMatcher m({"c", "abc"});
    const Streamed s = stream(m, {"xab", "c"});
    EXPECT_EQ(s.text, "x");
    EXPECT_EQ(m.matched_index(), 1u);
  }
  // A stop that is a prefix of another stops first.
  {
    StopStringMatcher m({"hello world", "hello"});
    const Streamed s = stream(m, {"say hel", "lo world"});
    EXPECT_EQ(s.text, "say ");
    EXPECT_EQ(m.matched_index(), 1u);
  }
}

TEST(StopStrings, ResultDoesNotDependOnHowTextIsCut) {
  const std::string text = "one two<|end|>three";
  const std::vector<std::string> stops = {"<|end|>", "two<", "o<|"};
  StopStringMatcher whole(stops);
  const Streamed expected = stream(whole, {text});
  EXPECT_TRUE(expected.stopped);
  EXPECT_EQ(expected.text, "one ");  // "two<" completes first
  for (size_t a = 0; a <= text.size(); ++a) {
    for (size_t b = a; b <= text.size(); ++b) {
      StopStringMatcher m(stops);
      const Streamed s = stream(m, {text.substr(0, a), text.substr(a, b - a), text.substr(b)});
      EXPECT_EQ(s.text, expected.text) << a << "," << b;
      EXPECT_EQ(s.stopped, expected.stopped);
      EXPECT_EQ(m.matched_index(), whole.matched_index());
    }
  }
}

TEST(StopStrings, NeverSplitsAUtf8Character) {
  // "é" is C3 A9, "€" is E2 82 AC, "😀" is F0 9F 98 80. Fed one byte at a time, every emitted
  // chunk must end on a character boundary.
  const std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80!";
  StopStringMatcher m({"\xE2\x82\xAC\xE2\x82\xAC"});  // "€€": never matched, but "€" is held
  std::string all;
  for (char byte : text) {
    const std::string chunk = m.push(std::string(1, byte)).text;
    EXPECT_EQ(utf8_complete_prefix(chunk), chunk.size()) << "split character in output";
    all += chunk;
  }
  all += m.flush();
  EXPECT_EQ(all, text);
}

TEST(StopStrings, MultiByteStopAcrossPieces) {
  StopStringMatcher m({"\xE3\x80\x82"});  // "。"
  EXPECT_EQ(m.push("\xE4\xBD\xA0\xE5\xA5\xBD\xE3").text, "\xE4\xBD\xA0\xE5\xA5\xBD");
  const StopStringMatcher::Result r = m.push("\x80\x82\xE5\x90\x97");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
}

TEST(StopStrings, ResetStartsOver) {
  StopStringMatcher m({"x"});
  EXPECT_TRUE(m.push("ax").stopped);
  m.reset();
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("ab").text, "ab");
}

TEST(Utf8, CompletePrefix) {
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("ab"), 2u);
  EXPECT_EQ(utf8_complete_prefix("a\xC3"), 1u);
  EXPECT_EQ(utf8_complete_prefix("a\xC3\xA9"), 3u);
  EXPECT_EQ(utf8_complete_prefix("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(utf8_complete_prefix("\x80\x80\x80\x80"), 4u);  // invalid: nothing to wait for
}

TEST(StopConditions, EosAndMaxTokens) {
  const std::vector<int32_t> eos = {2, 32000, 2};
  StopConditions c(eos, 3);
  EXPECT_TRUE(c.is_eos(2));
  EXPECT_TRUE(c.is_eos(32000));
  EXPECT_FALSE(c.is_eos(5));
  EXPECT_EQ(c.on_token(5), FinishReason::kNone);
  EXPECT_EQ(c.on_token(6), FinishReason::kNone);
  EXPECT_EQ(c.on_token(32000), FinishReason::kStop);
  EXPECT_EQ(c.on_token(7), FinishReason::kLength);
  EXPECT_EQ(c.generated(), 3);
  StopConditions unlimited(eos, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(unlimited.on_token(9), FinishReason::kNone);
  EXPECT_THROW(StopConditions(eos, -1), Error);
}

}  // namespace
}  // namespace loom::sample
