// Tokenizer-level tests on small hand-written tokenizer.json files: WordPiece/BERT, Unigram,
// BPE merge forms and priorities, added-token flags, invalid UTF-8 input, malformed files
// (errors must name the file and the JSON path), streaming decode, concurrent encode.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <unistd.h>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {
namespace {

using Ids = std::vector<int32_t>;

// Writes `json` to a fresh file in a per-test temporary directory and returns its path.
std::filesystem::path write_json(const std::string& json) {
  static int counter = 0;
  auto dir =
      std::filesystem::temp_directory_path() /
      ("loom_tokenizer_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  auto path = dir / "tokenizer.json";
  std::ofstream(path, std::ios::binary) << json;
  return path;
}

Tokenizer load(const std::string& json) {
  return Tokenizer::from_hf_json(write_json(json));
}

// The error message of loading `json`, with its code.
std::pair<ErrorCode, std::string> load_error(const std::string& json) {
  try {
    load(json);
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "expected a loom::Error";
  return {ErrorCode::kInternal, ""};
}

// --- WordPiece / BERT ----------------------------------------------------------------------

const char* kBertJson = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "[UNK]", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
    {"id": 1, "content": "[CLS]", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
    {"id": 2, "content": "[SEP]", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
    {"id": 3, "content": "[MASK]", "special": true, "lstrip": true, "rstrip": false, "normalized": false, "single_word": false}
  ],
  "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 3, "hello": 4, "world": 5,
                      "un": 6, "##aff": 7, "##able": 8, "!": 9, ",": 10, "cafe": 11,
                      "\u4e2d": 12, "##s": 13}}
})";

TEST(WordPiece, BertPipeline) {
  Tokenizer tok = load(kBertJson);
  EXPECT_EQ(tok.encode("Hello, unaffable WORLD!", false), (Ids{4, 10, 6, 7, 8, 5, 9}));
  EXPECT_EQ(tok.encode("Hello, unaffable WORLD!", true), (Ids{1, 4, 10, 6, 7, 8, 5, 9, 2}));
  // Accents stripped (strip_accents follows lowercase), CJK spaced out, unknown word -> [UNK].
  EXPECT_EQ(tok.encode("Caf\u00E9\u4E2Dxyz worlds", false), (Ids{11, 12, 0, 5, 13}));
  // [MASK] has lstrip: the space before it belongs to the token.
  EXPECT_EQ(tok.encode("hello [MASK] world", false), (Ids{4, 3, 5}));
}

TEST(WordPiece, Decode) {
  Tokenizer tok = load(kBertJson);
  Ids ids{1, 4, 10, 6, 7, 8, 5, 9, 2};
  EXPECT_EQ(tok.decode(ids, true), "hello, unaffable world!");
  EXPECT_EQ(tok.decode(ids, false), "[CLS] hello, unaffable world! [SEP]");
  EXPECT_EQ(tok.special_ids().bos, 1);  // from the post-processor
  EXPECT_EQ(tok.special_ids().unk, 0);
  EXPECT_EQ(tok.vocab_size(), 14u);
}

TEST(WordPiece, OverlongWordIsUnknown) {
  std::string json = kBertJson;
  json.replace(json.find("\"max_input_chars_per_word\": 100"), 31,
               "\"max_input_chars_per_word\": 4");
  Tokenizer tok = load(json);
  EXPECT_EQ(tok.encode("hello un", false), (Ids{0, 6}));
}

// --- Unigram -------------------------------------------------------------------------------

const char* kUnigramJson = R"({
  "normalizer": null,
  "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true},
  "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true},
  "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": false,
            "vocab": [["<unk>", 0.0], ["\u2581", -2.0], ["a", -3.0], ["b", -3.0], ["ab", -2.5],
                      ["\u2581ab", -1.0], ["\u2581a", -2.0], ["c", -4.0]]}
})";

TEST(Unigram, ViterbiPicksTheMostLikelySegmentation) {
  Tokenizer tok = load(kUnigramJson);
  EXPECT_EQ(tok.encode("ab", false), (Ids{5}));           // "▁ab" beats "▁a"+"b"
  EXPECT_EQ(tok.encode("abab", false), (Ids{5, 4}));      // "▁ab" + "ab"
  EXPECT_EQ(tok.encode("a xyz", false), (Ids{6, 1, 0}));  // unknown run fused into one <unk>
  EXPECT_EQ(tok.decode(Ids{5, 4, 6}, false), "abab a");
}

TEST(Unigram, ByteFallbackForUnknownCharacters) {
  std::string json = kUnigramJson;
  json.replace(json.find("\"byte_fallback\": false"), 22, "\"byte_fallback\": true");
  json.replace(json.find("[\"c\", -4.0]"), 11,
               "[\"c\", -4.0], [\"<0x78>\", -5.0], [\"<0x79>\", -5.0]");
  Tokenizer tok = load(json);
  EXPECT_EQ(tok.encode("axy", false), (Ids{6, 8, 9}));
}

// --- BPE -----------------------------------------------------------------------------------

std::string bpe_json(const std::string& merges, const std::string& extra_model = "",
                     const std::string& added = "[]") {
  return R"({"added_tokens": )" + added + R"(,
    "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "decoder": null,
    "model": {"type": "BPE", "unk_token": "<unk>", )" +
         extra_model + R"(
      "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, "ab": 4, "bc": 5, "abc": 6, "<sp>": 7},
      "merges": )" +
         merges + "}}";
}

TEST(Bpe, StringAndPairMergesAgree) {
  Tokenizer strings = load(bpe_json(R"(["a b", "ab c"])"));
  Tokenizer pairs = load(bpe_json(R"([["a", "b"], ["ab", "c"]])"));
  for (const char* text : {"abc", "cab", "abcabc", "ba", "a b c"}) {
    EXPECT_EQ(strings.encode(text, false), pairs.encode(text, false)) << text;
  }
  EXPECT_EQ(strings.encode("abc cab", false), (Ids{6, 3, 4}));
}

TEST(Bpe, LowerRankMergesFirst) {
  // "b c" outranks "a b", so "abc" becomes a + bc, and no merge joins those.
  EXPECT_EQ(load(bpe_json(R"(["b c", "a b"])")).encode("abc", false), (Ids{1, 5}));
  EXPECT_EQ(load(bpe_json(R"(["a b", "b c"])")).encode("abc", false), (Ids{4, 3}));
}

TEST(Bpe, LongWordsMergeLikeShortOnes) {
  Tokenizer tok = load(bpe_json(R"(["a b", "ab c"])"));
  std::string text;
  Ids want;
  for (int i = 0; i < 5000; ++i) {
    text += "abc";
    want.push_back(6);
  }
  EXPECT_EQ(tok.encode(text, false), want);
}

TEST(Bpe, UnknownCharactersFuseWhenAsked) {
  EXPECT_EQ(load(bpe_json(R"(["a b"])")).encode("axyb", false), (Ids{1, 0, 0, 2}));
  EXPECT_EQ(load(bpe_json(R"(["a b"])", R"("fuse_unk": true,)")).encode("axyb", false),
            (Ids{1, 0, 2}));
}

TEST(Bpe, IgnoreMergesTakesWholeVocabWords) {
  // "abc" is in the vocab but unreachable through merges; ignore_merges finds it directly.
  EXPECT_EQ(load(bpe_json(R"(["b c"])")).encode("abc", false), (Ids{1, 5}));
  EXPECT_EQ(load(bpe_json(R"(["b c"])", R"("ignore_merges": true,)")).encode("abc", false),
            (Ids{6}));
}

TEST(Bpe, ByteFallback) {
  std::string json = R"({"normalizer": null, "pre_tokenizer": null,
    "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
      "vocab": {"<unk>": 0, "a": 1, "<0xE4>": 2, "<0xB8>": 3, "<0xAD>": 4}, "merges": []}})";
  Tokenizer tok = load(json);
  EXPECT_EQ(tok.encode("a\u4E2D", false), (Ids{1, 2, 3, 4}));
  EXPECT_EQ(tok.encode("\u00E9", false), (Ids{0}));  // bytes C3 A9 not in vocab -> unk
  EXPECT_EQ(tok.decode(Ids{1, 2, 3, 4}, false), "a\u4E2D");
  EXPECT_EQ(tok.decode(Ids{2, 3, 1}, false), "\uFFFD\uFFFDa");
}

// --- Added tokens --------------------------------------------------------------------------

TEST(AddedTokens, LongestMatchFirstAndFlags) {
  std::string added = R"([
    {"id": 10, "content": "<x>", "special": true, "lstrip": false, "rstrip": true, "normalized": false, "single_word": false},
    {"id": 11, "content": "<x><y>", "special": false, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
    {"id": 12, "content": "ab", "special": false, "lstrip": false, "rstrip": false, "normalized": false, "single_word": true}
  ])";
  Tokenizer tok = load(bpe_json(R"(["a b"])", "", added));
  EXPECT_EQ(tok.encode("c<x><y>c", false), (Ids{3, 11, 3}));  // longest match wins
  EXPECT_EQ(tok.encode("c<x>   c", false), (Ids{3, 10, 3}));  // rstrip eats the spaces
  EXPECT_EQ(tok.encode("ab abc", false), (Ids{12, 4, 3}));    // single_word: not inside "abc"
  EXPECT_EQ(tok.decode(Ids{3, 10, 11}, true), "c <x><y>");    // no decoder: joined by spaces
  EXPECT_EQ(tok.token_to_id("<x>"), 10);
  EXPECT_EQ(tok.token_to_piece(11), "<x><y>");
  EXPECT_TRUE(tok.is_special(10));
  EXPECT_FALSE(tok.is_special(11));
  EXPECT_EQ(tok.vocab_size(), 13u);
}

TEST(AddedTokens, NormalizedTokensMatchAfterNormalization) {
  std::string json = R"({"added_tokens": [
      {"id": 9, "content": "hello", "special": false, "lstrip": false, "rstrip": false, "normalized": true, "single_word": false}],
    "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "WhitespaceSplit"},
    "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "h": 1, "i": 2}, "merges": []}})";
  Tokenizer tok = load(json);
  EXPECT_EQ(tok.encode("HELLO hi", false), (Ids{9, 1, 2}));
}

// --- Invalid UTF-8 input -------------------------------------------------------------------

const char* kByteLevelJson = R"({
  "added_tokens": [{"id": 100, "content": "<|end|>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": {"type": "ByteLevel"},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {}, "merges": []}
})";

// A byte-level tokenizer whose vocab is exactly the 256 byte characters (id = byte value).
Tokenizer byte_level_tokenizer() {
  std::string vocab = "{";
  for (int b = 0; b < 256; ++b) {
    std::string ch = byte_to_unicode()[b];
    std::string escaped;
    for (char c : ch) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += c;
    }
    vocab += (b ? ", \"" : "\"") + escaped + "\": " + std::to_string(b);
  }
  vocab += "}";
  std::string json = kByteLevelJson;
  json.replace(json.find("\"vocab\": {}"), 11, "\"vocab\": " + vocab);
  return load(json);
}

TEST(InvalidUtf8, EncodedAsReplacementCharacter) {
  Tokenizer tok = byte_level_tokenizer();
  Ids fffd{0xEF, 0xBF, 0xBD};
  EXPECT_EQ(tok.encode("\xFF", false), fffd);
  EXPECT_EQ(tok.encode("a\xE4\xB8", false), (Ids{'a', 0xEF, 0xBF, 0xBD}));
  EXPECT_EQ(tok.encode("a\xFF", false), tok.encode("a\uFFFD", false));
}

TEST(InvalidUtf8, RandomBytesNeverCrash) {
  Tokenizer tok = byte_level_tokenizer();
  Tokenizer bert = load(kBertJson);
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 40, '\0');
    for (char& c : text) c = static_cast<char>(rng());
    auto ids = tok.encode(text, true);
    EXPECT_TRUE(is_valid_utf8(tok.decode(ids, false)));
    bert.encode(text, true);
  }
}

// --- Incremental decoding ------------------------------------------------------------------

// Everything a stream of `ids` returns, finish() included.
std::string streamed(const Tokenizer& tok, const Ids& ids, bool skip) {
  IncrementalDecoder stream(tok, skip);
  std::string out;
  for (int32_t id : ids) out += stream.step(id);
  return out + stream.finish();
}

TEST(IncrementalDecoder, HoldsBackSplitMultiByteCharacters) {
  Tokenizer tok = byte_level_tokenizer();
  IncrementalDecoder stream(tok, false);
  // "a中😀" as single bytes: 'a', E4 B8 AD, F0 9F 98 80.
  EXPECT_EQ(stream.step('a'), "a");
  EXPECT_EQ(stream.step(0xE4), "");
  EXPECT_EQ(stream.step(0xB8), "");
  EXPECT_EQ(stream.step(0xAD), "\u4E2D");
  EXPECT_EQ(stream.step(0xF0), "");
  EXPECT_EQ(stream.step(0x9F), "");
  EXPECT_EQ(stream.step(0x98), "");
  EXPECT_EQ(stream.step(0x80), "\U0001F600");
  EXPECT_EQ(stream.finish(), "");
}

TEST(IncrementalDecoder, UnfinishedCharacterAtTheEndMatchesDecode) {
  Tokenizer tok = byte_level_tokenizer();
  IncrementalDecoder stream(tok, false);
  std::string out = stream.step('x');
  out += stream.step(0xE4);
  out += stream.step(0xB8);
  out += stream.finish();
  EXPECT_EQ(out, tok.decode(Ids{'x', 0xE4, 0xB8}, false));
  EXPECT_EQ(out, "x\uFFFD");
}

TEST(IncrementalDecoder, SkipsSpecialTokensWhenAsked) {
  Tokenizer tok = byte_level_tokenizer();
  Ids ids = tok.encode("hi<|end|>there", false);
  ASSERT_EQ(ids, (Ids{'h', 'i', 100, 't', 'h', 'e', 'r', 'e'}));
  for (bool skip : {false, true}) EXPECT_EQ(streamed(tok, ids, skip), tok.decode(ids, skip));
  EXPECT_EQ(tok.decode(ids, true), "hithere");
}

TEST(IncrementalDecoder, ByteFallbackAndStrippedLeadingSpace) {
  std::string json = R"({"normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false},
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "byte_fallback": true,
      "vocab": {"\u2581": 0, "a": 1, "<0xE4>": 2, "<0xB8>": 3, "<0xAD>": 4, "\u2581a": 5},
      "merges": [["\u2581", "a"]]}})";
  Tokenizer tok = load(json);
  Ids ids{5, 0, 2, 3, 4, 1, 0, 5};
  IncrementalDecoder stream(tok, false);
  std::vector<std::string> chunks;
  for (int32_t id : ids) chunks.push_back(stream.step(id));
  chunks.push_back(stream.finish());
  std::string joined;
  for (auto& c : chunks) joined += c;
  EXPECT_EQ(joined, tok.decode(ids, false));
  EXPECT_EQ(joined, "a \u4E2Da  a");
  EXPECT_EQ(chunks[0], "a");  // the leading space of the first token is stripped at once
  EXPECT_EQ(chunks[2], "");   // <0xE4> alone is not a character yet
}

// A byte-fallback run of any length streams exactly as decode: a valid run of 600 bytes (200
// x U+4E2D) whatever its length (a limit of 256 pending ids once emitted such a run cut inside
// a character, as U+FFFDs), the same run made invalid by its last byte (all U+FFFDs, as HF's
// ByteFallback), and runs across skipped special tokens; found by fuzz_tokenizer_encode.
TEST(IncrementalDecoder, ByteRunsOfAnyLengthStreamAsDecode) {
  std::string json = R"({"normalizer": null,
    "added_tokens": [{"id": 6, "content": "<unk>", "special": true}],
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "byte_fallback": true,
      "vocab": {"\u2581": 0, "a": 1, "<0xE4>": 2, "<0xB8>": 3, "<0xAD>": 4, "<0x0A>": 5, "<unk>": 6},
      "merges": []}})";
  Tokenizer tok = load(json);
  std::vector<Ids> cases;
  Ids valid{1};
  for (int i = 0; i < 200; ++i) valid.insert(valid.end(), {2, 3, 4});
  valid.push_back(1);
  cases.push_back(valid);
  Ids invalid = valid;
  invalid.insert(invalid.end() - 1, 2);  // a lone E4 before the final "a"
  cases.push_back(invalid);
  Ids with_specials = valid;
  for (size_t at = 250; at < with_specials.size(); at += 97)
    with_specials.insert(with_specials.begin() + at, 6);
  cases.push_back(with_specials);
  Ids unfinished(valid.begin(), valid.end() - 2);  // ends inside a character, no final "a"
  cases.push_back(unfinished);
  for (const Ids& ids : cases) {
    for (bool skip : {false, true}) {
      EXPECT_EQ(streamed(tok, ids, skip), tok.decode(ids, skip))
          << ids.size() << " ids, skip " << skip;
    }
  }
  std::string chars;
  for (int i = 0; i < 200; ++i) chars += "\u4E2D";
  EXPECT_EQ(tok.decode(valid, false), "a" + chars + "a");
}

// Byte-level BPE: a long run of lone lead bytes (each a final U+FFFD) held back as unfinished,
// whose last byte the next id completes, streams as decode; so does the same run with the
// completing byte after skipped special tokens, or never completed. (Past 32 pending ids the
// trailing U+FFFD was once taken as final and came out where decode has the character: found
// by fuzz_tokenizer_encode.)
TEST(IncrementalDecoder, LongRunOfUnfinishedBytesThenTheCompletingByte) {
  std::string json = R"({
    "added_tokens": [{"id": 9, "content": "<|x|>", "special": true}],
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "\u00c3": 5, "\u00a9": 6, "\u00c3\u00a9": 7},
              "merges": []}})";
  Tokenizer tok = load(json);
  std::vector<Ids> cases;
  for (int run : {31, 32, 33, 64, 100}) {
    Ids ids(static_cast<size_t>(run), 5);  // C3 x run
    ids.push_back(6);                      // A9: completes the last C3 as U+00E9
    cases.push_back(ids);
    Ids specials = ids;
    specials.insert(specials.end() - 1, {9, 9, 9, 9, 9, 9, 9, 9, 9, 9});
    cases.push_back(specials);
    Ids unfinished(static_cast<size_t>(run), 5);
    unfinished.push_back(0);
    cases.push_back(unfinished);
  }
  for (const Ids& ids : cases) {
    for (bool skip : {false, true}) {
      EXPECT_EQ(streamed(tok, ids, skip), tok.decode(ids, skip))
          << ids.size() << " ids, skip " << skip;
    }
  }
  std::string want;
  for (int i = 0; i < 63; ++i) want += "\uFFFD";  // cases[9]: 64 x C3, A9
  EXPECT_EQ(tok.decode(cases[9], false), want + "\u00E9");
}

// --- Concurrency ---------------------------------------------------------------------------

TEST(Tokenizer, ConcurrentEncodeGivesTheSameIds) {
  Tokenizer tok = load(kBertJson);
  const std::string text = "Hello, unaffable WORLD! cafe \u4E2D hello";
  const Ids want = tok.encode(text, true);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) mismatches += tok.encode(text, true) != want;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// --- Malformed files -----------------------------------------------------------------------

TEST(MalformedJson, NotJsonNamesFileAndByte) {
  auto [code, what] = load_error("{\"model\": [1, 2,");
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find("tokenizer.json"), std::string::npos) << what;
  EXPECT_NE(what.find("invalid JSON at byte"), std::string::npos) << what;
}

// Regression (fuzz_tokenizer_json): nlohmann reports an overflowing number literal as
// out_of_range, not parse_error, and it escaped as a non-loom exception.
TEST(MalformedJson, NumberOverflowIsCorruption) {
  auto [code, what] = load_error(R"({"model": {"vocab": [["a", -3888888888888888888e888]]}})");
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find("invalid JSON"), std::string::npos) << what;
}

TEST(MalformedJson, MissingFileIsNotFound) {
  try {
    Tokenizer::from_hf_json("/nonexistent/dir/tokenizer.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos);
  }
}

TEST(MalformedJson, MissingModel) {
  auto [code, what] = load_error(R"({"normalizer": null})");
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find("model: missing key"), std::string::npos) << what;
}

TEST(MalformedJson, MergeWithUnknownToken) {
  auto [code, what] = load_error(bpe_json(R"(["a b", "b zz"])"));
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find("tokenizer.json: model: merges[1]"), std::string::npos) << what;
  EXPECT_NE(what.find("'zz'"), std::string::npos) << what;
}

TEST(MalformedJson, BadMergeShape) {
  auto [code, what] = load_error(bpe_json(R"(["a b", ["a"]])"));
  EXPECT_NE(what.find("model.merges[1]: expected [left, right]"), std::string::npos) << what;
  auto [code2, what2] = load_error(bpe_json(R"(["a b c"])"));
  EXPECT_NE(what2.find("model.merges[0]"), std::string::npos) << what2;
}

TEST(MalformedJson, WrongValueType) {
  auto [code, what] =
      load_error(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})");
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find("model.vocab[\"a\"]"), std::string::npos) << what;
}

TEST(MalformedJson, UnknownComponentTypeIsUnsupported) {
  auto [code, what] = load_error(R"({"normalizer": {"type": "Sequence", "normalizers": [
      {"type": "NFC"}, {"type": "Precompiled", "precompiled_charsmap": ""}]},
    "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  EXPECT_EQ(code, ErrorCode::kUnsupported);
  EXPECT_NE(what.find("normalizer.normalizers[1].type"), std::string::npos) << what;
  EXPECT_NE(what.find("Precompiled"), std::string::npos) << what;
}

TEST(MalformedJson, BadRegexNamesItsPath) {
  auto [code, what] = load_error(R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}]},
    "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  EXPECT_NE(what.find("pre_tokenizer.pretokenizers[0].pattern.Regex"), std::string::npos) << what;
}

TEST(MalformedJson, BadSplitBehaviorAndMissingField) {
  auto [code, what] = load_error(R"({"pre_tokenizer": {"type": "Split", "pattern": {"String": "-"},
      "behavior": "Sideways"}, "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  EXPECT_NE(what.find("pre_tokenizer.behavior: unknown split behavior 'Sideways'"),
            std::string::npos)
      << what;
  auto [code2, what2] = load_error(R"({"decoder": {"type": "Strip", "content": " ", "start": 1},
      "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  EXPECT_NE(what2.find("decoder.stop: missing key"), std::string::npos) << what2;
}

TEST(MalformedJson, UnkTokenNotInVocab) {
  auto [code, what] =
      load_error(R"({"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"a": 0}}})");
  EXPECT_EQ(code, ErrorCode::kCorruption);
  EXPECT_NE(what.find("model: unk_token '[UNK]'"), std::string::npos) << what;
}

TEST(MalformedJson, InMemoryTextNamesItsSource) {
  try {
    Tokenizer::from_hf_json_text(R"({"model": {"type": "BPE", "vocab": [], "merges": []}})",
                                 "model.gguf:tokenizer.huggingface.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.gguf:tokenizer.huggingface.json: model.vocab"),
              std::string::npos)
        << e.what();
  }
  Tokenizer tok = Tokenizer::from_hf_json_text(kBertJson, "inline");
  EXPECT_EQ(tok.encode("hello", true), (Ids{1, 4, 2}));
}

TEST(MalformedJson, AddedTokenWithoutId) {
  auto [code, what] = load_error(R"({"added_tokens": [{"content": "<s>"}],
      "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  EXPECT_NE(what.find("added_tokens[0].id: missing key"), std::string::npos) << what;
}

// Regression (fuzz_gguf_vocab): HF's ByteFallback turns a whole run of byte tokens into U+FFFDs
// when any byte is invalid, so a valid "文" followed by a stray continuation byte decodes to
// four U+FFFD. The stream had already emitted "文"; it now waits for the run to end.
TEST(TokenizerJson, StreamedByteRunWithInvalidTailEqualsDecode) {
  Tokenizer tok = load(R"({"model": {"type": "BPE", "byte_fallback": true, "merges": [],
      "vocab": {"<unk>": 0, "a": 1, "<0xE6>": 2, "<0x96>": 3, "<0x87>": 4, "<0xA9>": 5}},
      "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}})");
  for (const Ids& ids : {Ids{2, 3, 4, 5, 1}, Ids{1, 2, 3, 4, 5}, Ids{2, 3, 4, 1, 2, 3, 4}}) {
    const std::string full = tok.decode(ids, false);
    IncrementalDecoder stream(tok, false);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.step(id);
    streamed += stream.finish();
    EXPECT_EQ(streamed, full);
  }
  EXPECT_EQ(tok.decode(Ids{2, 3, 4, 5}, false), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

// Regression (issue 12, fuzz_tokenizer_json): one WordPiece id of 888888880 sized a 28 GB
// table. Ids are bounded by what the file describes, and the error names the token.
TEST(MalformedJson, Issue12VocabIdBeyondTheFile) {
  auto path =
      std::filesystem::path(LOOM_TEST_DATA_DIR) / "regressions/issue12_wordpiece_huge_id.json";
  try {
    Tokenizer::from_hf_json(path);
    FAIL() << "loaded a vocabulary with id 888888880";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(what.find("issue12_wordpiece_huge_id.json"), std::string::npos) << what;
    EXPECT_NE(what.find("model.vocab"), std::string::npos) << what;
    EXPECT_NE(what.find("'b' has id 888888880"), std::string::npos) << what;
  }
}

TEST(MalformedJson, Issue12AddedTokenIdBeyondTheFile) {
  auto path =
      std::filesystem::path(LOOM_TEST_DATA_DIR) / "regressions/issue12_added_token_huge_id.json";
  try {
    Tokenizer::from_hf_json(path);
    FAIL() << "loaded an added token with id 2000000000";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(what.find("added_tokens[0].id"), std::string::npos) << what;
    EXPECT_NE(what.find("'<big>' has id 2000000000"), std::string::npos) << what;
  }
}

// Ids up to entries + added tokens are what real files use (gpt-oss: 199998 + 21 ids, the last
// 200018): the bound must accept a file whose added tokens continue the model's ids.
TEST(TokenizerJson, Issue12IdsContinuingIntoAddedTokensAreAccepted) {
  Tokenizer tok = load(R"({"added_tokens": [{"id": 3, "content": "<x>", "special": true},
      {"id": 4, "content": "<y>", "special": true}],
      "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "vocab": {"[UNK]": 0, "a": 1, "b": 2}}})");
  EXPECT_EQ(tok.vocab_size(), 5u);
}

// Regression (issue 12, fuzz_tokenizer_json timeout): a Sequence of 18 ByteLevel stages maps each
// byte to two bytes 18 times over, so encoding 256 bytes took minutes and gigabytes. A pipeline
// that can grow text more than kMaxTextGrowth times is refused at load, naming where.
std::string byte_level_chain(int stages) {
  std::string list;
  for (int i = 0; i < stages; ++i) {
    list += std::string(i ? "," : "") + R"({"type": "ByteLevel", "add_prefix_space": true})";
  }
  return R"({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [)" + list +
         R"(]}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
}

TEST(MalformedJson, Issue12ChainedByteLevelStagesAreRefused) {
  auto [code, what] = load_error(byte_level_chain(18));
  EXPECT_EQ(code, ErrorCode::kUnsupported);
  EXPECT_NE(what.find("pre_tokenizer"), std::string::npos) << what;
  EXPECT_NE(what.find("expand text up to 6.872e+10 times"), std::string::npos) << what;
  // Four stages (4^4 = 256) are accepted and encode as HF would: each stage maps bytes again.
  Tokenizer tok = load(byte_level_chain(4));
  EXPECT_EQ(tok.vocab_size(), 1u);
  auto [code6, what6] = load_error(byte_level_chain(6));  // 4096
  EXPECT_EQ(code6, ErrorCode::kUnsupported) << what6;
}

TEST(MalformedJson, Issue12ExpandingReplaceChainsAreRefused) {
  // Each Replace doubles every 'a'; eleven in a row would grow text 2048 times.
  std::string rules;
  for (int i = 0; i < 11; ++i) {
    rules += std::string(i ? "," : "") +
             R"({"type": "Replace", "pattern": {"String": "a"}, "content": "aa"})";
  }
  auto [code, what] =
      load_error(R"({"normalizer": {"type": "Sequence", "normalizers": [)" + rules +
                 R"(]}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  EXPECT_EQ(code, ErrorCode::kUnsupported);
  EXPECT_NE(what.find("normalizer"), std::string::npos) << what;
  EXPECT_NE(what.find("2048"), std::string::npos) << what;
  // A regex that can match the empty string inserts its content between every two bytes.
  auto [dcode, dwhat] = load_error(
      R"({"decoder": {"type": "Replace", "pattern": {"Regex": "x*"}, "content": ")" +
      std::string(600, 'y') + R"("}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  EXPECT_EQ(dcode, ErrorCode::kUnsupported);
  EXPECT_NE(dwhat.find("decoder"), std::string::npos) << dwhat;
  // The same normalizer with a non-empty pattern and a moderate content is fine.
  Tokenizer tok = load(
      R"({"normalizer": {"type": "Replace", "pattern": {"Regex": "x+"}, "content": ")" +
      std::string(600, 'y') + R"("}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  EXPECT_EQ(tok.vocab_size(), 1u);
}

}  // namespace
}  // namespace loom::tokenizer
