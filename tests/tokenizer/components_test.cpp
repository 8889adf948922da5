// Unit tests of the pipeline stages, one behaviour each: normalizers, pre-tokenizers,
// decoders, the regex engine's parity with Oniguruma on the patterns HF tokenizers use, and
// the UTF-8 helpers. Expected values follow the semantics of HF `tokenizers`.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <random>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {
namespace {

using Strings = std::vector<std::string>;

std::string normalized(const Normalizer& n, std::string text) {
  n.normalize(text);
  return text;
}

Strings pre_tokenized(const PreTokenizer& p, std::string text, bool at_start = true) {
  std::vector<Piece> pieces{{std::move(text), at_start}};
  p.pre_tokenize(pieces);
  Strings out;
  for (auto& piece : pieces) out.push_back(piece.text);
  return out;
}

Strings decoded(const Decoder& d, Strings tokens) {
  d.decode_chain(tokens);
  return tokens;
}

Strings regex_matches(const std::string& pattern, std::string_view text) {
  std::vector<Match> matches;
  Regex(pattern).find_all(text, matches);
  Strings out;
  for (auto m : matches) out.emplace_back(text.substr(m.begin, m.end - m.begin));
  return out;
}

// --- UTF-8 -------------------------------------------------------------------------------

TEST(Utf8, SanitizeReplacesEachMaximalInvalidSubpart) {
  EXPECT_EQ(sanitize_utf8("abc"), "abc");
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\uFFFDb");
  EXPECT_EQ(sanitize_utf8("\xE4\xB8"), "\uFFFD");                  // truncated 3-byte char
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\uFFFD\uFFFD");            // overlong: two bad bytes
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // UTF-16 surrogate
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"
                          "x"),
            "\uFFFDx");
  EXPECT_TRUE(is_valid_utf8("\u4E2D\U0001F600"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
}

TEST(ByteLevelMapping, IsTheGpt2Bijection) {
  const auto& table = byte_to_unicode();
  EXPECT_EQ(table[' '], "\u0120");   // 'Ġ'
  EXPECT_EQ(table['\n'], "\u010A");  // 'Ċ'
  EXPECT_EQ(table['A'], "A");
  for (int b = 0; b < 256; ++b) {
    size_t pos = 0;
    auto back = unicode_to_byte(next_code_point(table[b], pos));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, b);
  }
}

// --- Regex parity with Oniguruma ------------------------------------------------------------

TEST(Regex, UnicodeLetterAndNumberClasses) {
  EXPECT_EQ(regex_matches(R"(\p{L}+)", "h\u00E9llo w\u00F6rld \u4E2D\u6587 42"),
            (Strings{"h\u00E9llo", "w\u00F6rld", "\u4E2D\u6587"}));
  EXPECT_EQ(regex_matches(R"(\p{N}{1,3})", "12345 \u0661\u0662"),
            (Strings{"123", "45", "\u0661\u0662"}));
}

TEST(Regex, CaseInsensitiveGroup) {
  EXPECT_EQ(regex_matches(R"((?i:'s|'ll))", "IT'S he'LL"), (Strings{"'S", "'LL"}));
}

TEST(Regex, TrailingWhitespaceLookahead) {
  // `\s+(?!\S)` leaves the last space for the next word, as GPT-2's pattern intends.
  EXPECT_EQ(regex_matches(R"(\s+(?!\S)|\s+)", "a   b  "), (Strings{"  ", " ", "  "}));
}

TEST(Regex, UnicodeWhitespaceInUcpMode) {
  EXPECT_EQ(regex_matches(R"(\s+)", "a\u00A0b\u3000c"), (Strings{"\u00A0", "\u3000"}));
}

TEST(Regex, WordClassIncludesMarksAsInOniguruma) {
  // "e" + COMBINING ACUTE is one \w run in Oniguruma and Rust regex.
  EXPECT_EQ(regex_matches(R"(\w+)", "cafe\u0301 x_1"), (Strings{"cafe\u0301", "x_1"}));
  EXPECT_EQ(regex_matches(R"([^\w\s]+)", "a\u0301!? b"), (Strings{"!?"}));
  EXPECT_EQ(regex_matches(R"(\W+)", "a\u0301, b"), (Strings{", "}));
  EXPECT_EQ(regex_matches(R"(\h+)", "xx1fAz"), (Strings{"1fA"}));  // Oniguruma: hex digit
  EXPECT_EQ(regex_matches(R"([\w']+)", "it's"), (Strings{"it's"}));
  EXPECT_EQ(oniguruma_to_pcre2(R"(\Q\w\E[]\w])"),
            R"(\Q\w\E[]\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\x{200C}\x{200D}])");
}

TEST(Regex, EmptyMatchesAdvanceByOneCharacter) {
  EXPECT_EQ(regex_matches("x*", "\u4E2Dx").size(), 3u);  // "", "x", ""
}

TEST(Regex, LiteralEscapesMetacharacters) {
  std::vector<Match> matches;
  Regex::literal("a.b\\E(").find_all("a.b\\E( axb", matches);
  ASSERT_EQ(matches.size(), 1u);
  EXPECT_EQ(matches[0].begin, 0u);
}

TEST(Regex, BadPatternIsAnError) {
  EXPECT_THROW(Regex("(unclosed"), Error);
}

// --- Normalizers ---------------------------------------------------------------------------

TEST(Normalizers, UnicodeForms) {
  EXPECT_EQ(normalized(UnicodeNormalizer(NormalForm::kNfc), "e\u0301"), "\u00E9");
  EXPECT_EQ(normalized(UnicodeNormalizer(NormalForm::kNfd), "\u00E9"), "e\u0301");
  EXPECT_EQ(normalized(UnicodeNormalizer(NormalForm::kNfkc), "\uFB01\u2460\uFF21"), "fi1A");
  EXPECT_EQ(normalized(UnicodeNormalizer(NormalForm::kNfkd), "\u00E9\uFB01"), "e\u0301fi");
}

TEST(Normalizers, Lowercase) {
  EXPECT_EQ(normalized(LowercaseNormalizer(), "HELLO \u00DCn\u00CF \u0391\u0392"),
            "hello \u00FCn\u00EF \u03B1\u03B2");
}

TEST(Normalizers, LowercaseSpecialCasingLikeRust) {
  // Final sigma at the end of a word; U+0130 lowercases to two characters.
  EXPECT_EQ(normalized(LowercaseNormalizer(), "\u039F\u0394\u039F\u03A3 \u03A3\u0391"),
            "\u03BF\u03B4\u03BF\u03C2 \u03C3\u03B1");
  EXPECT_EQ(normalized(LowercaseNormalizer(), "\u0130"), "i\u0307");
}

TEST(Normalizers, ReplaceLiteralAndRegex) {
  EXPECT_EQ(normalized(ReplaceNormalizer(Regex::literal(" "), "\u2581"), "a b  c"),
            "a\u2581b\u2581\u2581c");
  EXPECT_EQ(normalized(ReplaceNormalizer(Regex(R"(\s+)"), " "), "a \t\n b"), "a b");
}

TEST(Normalizers, PrependOnlyToNonEmptyText) {
  PrependNormalizer prepend("\u2581");
  EXPECT_EQ(normalized(prepend, "hi"), "\u2581hi");
  EXPECT_EQ(normalized(prepend, ""), "");
}

TEST(Normalizers, Strip) {
  EXPECT_EQ(normalized(StripNormalizer(true, true), " \u3000 hi \t"), "hi");
  EXPECT_EQ(normalized(StripNormalizer(true, false), "  hi \t"), "hi \t");
  EXPECT_EQ(normalized(StripNormalizer(false, true), "  hi \t"), "  hi");
  EXPECT_EQ(normalized(StripNormalizer(true, true), "   "), "");
}

TEST(Normalizers, StripAccentsAfterNfd) {
  std::vector<std::unique_ptr<Normalizer>> seq;
  seq.push_back(std::make_unique<UnicodeNormalizer>(NormalForm::kNfd));
  seq.push_back(std::make_unique<StripAccentsNormalizer>());
  EXPECT_EQ(normalized(SequenceNormalizer(std::move(seq)), "caf\u00E9 na\u00EFve"), "cafe naive");
}

TEST(Normalizers, SequenceAppliesInOrder) {
  std::vector<std::unique_ptr<Normalizer>> seq;
  seq.push_back(std::make_unique<PrependNormalizer>("\u2581"));
  seq.push_back(std::make_unique<ReplaceNormalizer>(Regex::literal(" "), "\u2581"));
  EXPECT_EQ(normalized(SequenceNormalizer(std::move(seq)), "Hello world"),
            "\u2581Hello\u2581world");
}

TEST(Normalizers, Bert) {
  BertNormalizer bert(/*clean_text=*/true, /*handle_chinese_chars=*/true, /*strip_accents=*/true,
                      /*lowercase=*/true);
  EXPECT_EQ(normalized(bert, "H\u00E9llo\tWORLD\x01\u4E2D\u56FD"), "hello world \u4E2D  \u56FD ");
  BertNormalizer keep_case(true, false, false, false);
  EXPECT_EQ(normalized(keep_case, "H\u00E9llo\u4E2D\uFFFD"), "H\u00E9llo\u4E2D");
}

// Issue 12: the growth factors loaders multiply to refuse exponential pipelines must be true
// upper bounds. Every code point that normalization can expand lies below U+40000 (plus tags).
TEST(Normalizers, GrowthBoundsHoldForEveryCodePoint) {
  std::vector<std::unique_ptr<Normalizer>> all;
  for (auto form : {NormalForm::kNfc, NormalForm::kNfd, NormalForm::kNfkc, NormalForm::kNfkd})
    all.push_back(std::make_unique<UnicodeNormalizer>(form));
  all.push_back(std::make_unique<LowercaseNormalizer>());
  for (int flags = 0; flags < 16; ++flags) {
    all.push_back(std::make_unique<BertNormalizer>(flags & 1, flags & 2, flags & 4, flags & 8));
  }
  for (const auto& normalizer : all) {
    const double growth = normalizer->max_growth();
    size_t worst_in = 1, worst_out = 0;
    for (char32_t cp = 0; cp < 0xE1000; ++cp) {
      if (cp >= 0xD800 && cp < 0xE000) continue;
      if (cp == 0x40000) cp = 0xE0000;
      std::string text;
      append_utf8(text, cp);
      const size_t in = text.size();
      normalizer->normalize(text);
      ASSERT_LE(static_cast<double>(text.size()), growth * static_cast<double>(in))
          << "U+" << std::hex << static_cast<uint32_t>(cp);
      if (text.size() * worst_in > worst_out * in) worst_in = in, worst_out = text.size();
    }
    // The bound is tight enough to be useful: within 2x of the worst case seen.
    EXPECT_LE(growth, 2.0 * static_cast<double>(worst_out) / static_cast<double>(worst_in));
  }
}

TEST(PipelineStages, GrowthBoundsHoldOnRandomText) {
  std::mt19937 rng(12);
  std::vector<std::unique_ptr<PreTokenizer>> pre;
  pre.push_back(std::make_unique<ByteLevelPreTokenizer>(true, true));
  pre.push_back(std::make_unique<ByteLevelPreTokenizer>(true, false));
  pre.push_back(std::make_unique<ByteLevelPreTokenizer>(false, true));
  pre.push_back(std::make_unique<MetaspacePreTokenizer>("\u2581", PrependScheme::kAlways, true));
  pre.push_back(std::make_unique<MetaspacePreTokenizer>("\u2581", PrependScheme::kFirst, false));
  std::vector<std::unique_ptr<Normalizer>> norm;
  norm.push_back(std::make_unique<ReplaceNormalizer>(Regex::literal(" "), "\u2581"));
  norm.push_back(std::make_unique<ReplaceNormalizer>(Regex("x*"), "yyy"));
  norm.push_back(std::make_unique<ReplaceNormalizer>(Regex(R"(\s+)"), "<sp>"));
  norm.push_back(std::make_unique<PrependNormalizer>("\u2581"));
  std::vector<std::unique_ptr<Decoder>> dec;
  dec.push_back(std::make_unique<ByteLevelDecoder>());
  dec.push_back(std::make_unique<WordPieceDecoder>("##", true));
  dec.push_back(std::make_unique<ReplaceDecoder>(Regex::literal("a"), "bcd"));
  dec.push_back(std::make_unique<ByteFallbackDecoder>());
  const std::string alphabet[] = {" ", "a", "x", "\t", "\u0120", "\u00FF", "\u2581", "<0xFF>", "1"};
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int chars = static_cast<int>(rng() % 12);
    for (int i = 0; i < chars; ++i) text += alphabet[rng() % std::size(alphabet)];
    const double n = static_cast<double>(std::max<size_t>(text.size(), 1));
    for (const auto& p : pre) {
      size_t out = 0;
      for (const auto& piece : pre_tokenized(*p, text)) out += piece.size();
      ASSERT_LE(static_cast<double>(out), p->max_growth() * n) << text;
    }
    for (const auto& z : norm) {
      ASSERT_LE(static_cast<double>(normalized(*z, text).size()), z->max_growth() * n) << text;
    }
    for (const auto& d : dec) {
      Strings tokens{text};
      d->decode_chain_raw(tokens);
      ASSERT_LE(static_cast<double>(tokens[0].size()), d->max_growth() * n) << text;
      tokens = Strings{text};
      d->decode_chain(tokens);
      ASSERT_LE(static_cast<double>(tokens[0].size()), d->max_growth() * n) << text;
    }
  }
}

// --- Pre-tokenizers ------------------------------------------------------------------------

TEST(PreTokenizers, SplitBehaviors) {
  auto split = [](SplitBehavior b) {
    return pre_tokenized(SplitPreTokenizer(Regex::literal("-"), b, false), "the-final--countdown");
  };
  EXPECT_EQ(split(SplitBehavior::kRemoved), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kIsolated), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithPrevious),
            (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::kMergedWithNext), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(SplitBehavior::kContiguous), (Strings{"the", "-", "final", "--", "countdown"}));
}

TEST(PreTokenizers, SplitInvert) {
  // With invert the regex describes the pieces to keep; Removed drops everything else.
  SplitPreTokenizer words(Regex(R"(\w+)"), SplitBehavior::kRemoved, /*invert=*/true);
  EXPECT_EQ(pre_tokenized(words, "Hello, big world!"), (Strings{"Hello", "big", "world"}));
  SplitPreTokenizer not_inverted(Regex(R"(\w+)"), SplitBehavior::kRemoved, false);
  EXPECT_EQ(pre_tokenized(not_inverted, "Hello, big world!"), (Strings{", ", " ", "!"}));
}

TEST(PreTokenizers, ByteLevelWithPrefixSpaceAndRegex) {
  ByteLevelPreTokenizer bl(/*add_prefix_space=*/true, /*use_regex=*/true);
  EXPECT_EQ(pre_tokenized(bl, "Hello my friend, how is your day going?"),
            (Strings{"\u0120Hello", "\u0120my", "\u0120friend", ",", "\u0120how", "\u0120is",
                     "\u0120your", "\u0120day", "\u0120going", "?"}));
}

TEST(PreTokenizers, ByteLevelWithoutRegexMapsBytesOnly) {
  ByteLevelPreTokenizer bl(false, false);
  EXPECT_EQ(pre_tokenized(bl, "a b\n\u00E9"), (Strings{"a\u0120b\u010A\u00C3\u00A9"}));
}

TEST(PreTokenizers, MetaspaceSchemes) {
  const std::string m = "\u2581";
  MetaspacePreTokenizer always(m, PrependScheme::kAlways, /*split=*/true);
  EXPECT_EQ(pre_tokenized(always, "Hey friend!"), (Strings{m + "Hey", m + "friend!"}));
  EXPECT_EQ(pre_tokenized(always, "Hey", /*at_start=*/false), (Strings{m + "Hey"}));
  MetaspacePreTokenizer first(m, PrependScheme::kFirst, true);
  EXPECT_EQ(pre_tokenized(first, "Hey", true), (Strings{m + "Hey"}));
  EXPECT_EQ(pre_tokenized(first, "Hey", false), (Strings{"Hey"}));
  MetaspacePreTokenizer never(m, PrependScheme::kNever, true);
  EXPECT_EQ(pre_tokenized(never, "Hey  friend"), (Strings{"Hey", m, m + "friend"}));
  MetaspacePreTokenizer no_split(m, PrependScheme::kAlways, false);
  EXPECT_EQ(pre_tokenized(no_split, "Hey friend"), (Strings{m + "Hey" + m + "friend"}));
  // Text that already starts with the marker gets no second one.
  EXPECT_EQ(pre_tokenized(no_split, " x"), (Strings{m + "x"}));
}

TEST(PreTokenizers, Digits) {
  EXPECT_EQ(pre_tokenized(DigitsPreTokenizer(true), "Call 123 please"),
            (Strings{"Call ", "1", "2", "3", " please"}));
  EXPECT_EQ(pre_tokenized(DigitsPreTokenizer(false), "Call 123 please"),
            (Strings{"Call ", "123", " please"}));
}

TEST(PreTokenizers, Punctuation) {
  EXPECT_EQ(pre_tokenized(PunctuationPreTokenizer(SplitBehavior::kIsolated), "Hey friend!  How?!"),
            (Strings{"Hey friend", "!", "  How", "?", "!"}));
  EXPECT_EQ(
      pre_tokenized(PunctuationPreTokenizer(SplitBehavior::kContiguous), "Hi\u3002\u3002 ok?!"),
      (Strings{"Hi", "\u3002\u3002", " ok", "?!"}));
}

TEST(PreTokenizers, WhitespaceAndWhitespaceSplit) {
  EXPECT_EQ(pre_tokenized(WhitespacePreTokenizer(), "How are you doing?!"),
            (Strings{"How", "are", "you", "doing", "?!"}));
  EXPECT_EQ(pre_tokenized(WhitespacePreTokenizer(), "\n"), Strings{});
  EXPECT_EQ(pre_tokenized(WhitespaceSplitPreTokenizer(), "Hey man!\u00A0ok"),
            (Strings{"Hey", "man!", "ok"}));
}

TEST(PreTokenizers, Bert) {
  EXPECT_EQ(pre_tokenized(BertPreTokenizer(), "Hey friend!     How are you?!?"),
            (Strings{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
}

TEST(PreTokenizers, SequenceAndStartFlag) {
  std::vector<std::unique_ptr<PreTokenizer>> seq;
  seq.push_back(std::make_unique<WhitespaceSplitPreTokenizer>());
  seq.push_back(std::make_unique<MetaspacePreTokenizer>("\u2581", PrependScheme::kFirst, false));
  // Only the first piece of the input counts as the start for prepend_scheme=first.
  EXPECT_EQ(pre_tokenized(SequencePreTokenizer(std::move(seq)), "a b"), (Strings{"\u2581a", "b"}));
}

// --- Decoders ------------------------------------------------------------------------------

TEST(Decoders, ByteLevel) {
  ByteLevelDecoder d;
  EXPECT_EQ(decoded(d, {"Hello", "\u0120world", "\u010A"}), Strings{"Hello world\n"});
  // Bytes E4 B8 AD spell U+4E2D; split over tokens they still join.
  EXPECT_EQ(decoded(d, {"\u00E4", "\u00B8", "\u0143"}), Strings{"\u4E2D"});
  // An unfinished character decodes lossily, like String::from_utf8_lossy.
  EXPECT_EQ(decoded(d, {"a", "\u00E4\u00B8"}), Strings{"a\uFFFD"});
  // A token with characters outside the byte alphabet is kept verbatim.
  EXPECT_EQ(decoded(d, {"<\uFF5Cend\uFF5C>", "\u0120x"}), Strings{"<\uFF5Cend\uFF5C> x"});
}

TEST(Decoders, Metaspace) {
  const std::string m = "\u2581";
  EXPECT_EQ(decoded(MetaspaceDecoder(m, PrependScheme::kAlways), {m + "Hey", m + "friend!"}),
            (Strings{"Hey", " friend!"}));
  EXPECT_EQ(decoded(MetaspaceDecoder(m, PrependScheme::kNever), {m + "Hey", m + "friend!"}),
            (Strings{" Hey", " friend!"}));
}

TEST(Decoders, ByteFallback) {
  ByteFallbackDecoder d;
  EXPECT_EQ(decoded(d, {"<0xE4>", "<0xB8>", "<0xAD>", "a"}), (Strings{"\u4E2D", "a"}));
  EXPECT_EQ(decoded(d, {"<0xE4>", "a", "<0xFF>", "<0xFE>"}),
            (Strings{"\uFFFD", "a", "\uFFFD", "\uFFFD"}));
  EXPECT_EQ(decoded(d, {"<0x0A>", "<0xZZ>", "<0x41"}), (Strings{"\n", "<0xZZ>", "<0x41"}));
}

TEST(Decoders, FuseStripReplace) {
  EXPECT_EQ(decoded(FuseDecoder(), {"a", "b", "c"}), Strings{"abc"});
  EXPECT_EQ(decoded(StripDecoder(' ', 1, 0), {" hey", " friend", "  x", ""}),
            (Strings{"hey", "friend", " x", ""}));
  EXPECT_EQ(decoded(StripDecoder(' ', 0, 2), {"a   ", "b "}), (Strings{"a ", "b"}));
  EXPECT_EQ(decoded(ReplaceDecoder(Regex::literal("\u2581"), " "), {"\u2581a\u2581b", "c"}),
            (Strings{" a b", "c"}));
}

TEST(Decoders, WordPiece) {
  EXPECT_EQ(decoded(WordPieceDecoder("##", true), {"hello", "##world", "!", "again", "##?"}),
            (Strings{"hello", "world", "!", " again", "?"}));
  EXPECT_EQ(decoded(WordPieceDecoder("##", false), {"a", ",", "b"}), (Strings{"a", " ,", " b"}));
}

TEST(Decoders, SequenceLlamaStyle) {
  std::vector<std::unique_ptr<Decoder>> seq;
  seq.push_back(std::make_unique<ReplaceDecoder>(Regex::literal("\u2581"), " "));
  seq.push_back(std::make_unique<ByteFallbackDecoder>());
  seq.push_back(std::make_unique<FuseDecoder>());
  seq.push_back(std::make_unique<StripDecoder>(' ', 1, 0));
  EXPECT_EQ(decoded(SequenceDecoder(std::move(seq)),
                    {"\u2581Hello", "\u2581", "<0xE4>", "<0xB8>", "<0xAD>", "<0x0A>"}),
            Strings{"Hello \u4E2D\n"});
}

}  // namespace
}  // namespace loom::tokenizer
