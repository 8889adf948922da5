// The GGUF front-end: vocabularies from llama.cpp's test GGUF files (tests/data/ref/
// llamacpp-vocab), mapped through tokenizer_from_gguf, must reproduce the ids recorded with
// the HF tokenizers of the same models (*.gguf.inp / *.gguf.out).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {
namespace {

const std::filesystem::path kVocabDir =
    std::filesystem::path(LOOM_TEST_DATA_DIR) / "ref/llamacpp-vocab";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class GgufVocabTexts : public testing::TestWithParam<std::string> {};

TEST_P(GgufVocabTexts, MatchRecordedIds) {
  const std::string name = GetParam();
  auto base = kVocabDir / ("ggml-vocab-" + name + ".gguf");
  Tokenizer tok = tokenizer_from_gguf(GgufFile::open(base.string()));
  std::string inp = read_file(base.string() + ".inp");
  std::string out = read_file(base.string() + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    size_t next = inp.find(separator, pos);
    if (next == std::string::npos && pos == inp.size()) break;
    texts.push_back(inp.substr(pos, next == std::string::npos ? next : next - pos));
    if (next == std::string::npos) break;
    pos = next + separator.size();
  }
  std::vector<std::vector<int32_t>> expected;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream nums(line);
    std::vector<int32_t> ids;
    for (int32_t id; nums >> id;) ids.push_back(id);
    expected.push_back(ids);
  }
  ASSERT_GE(expected.size(), texts.size());
  int ok = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ids = tok.encode(texts[i], false);
    EXPECT_EQ(ids, expected[i]) << name << " case " << i << ": " << texts[i];
    ok += ids == expected[i];
  }
  std::cout << name << ": " << ok << "/" << texts.size() << "\n";
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, GgufVocabTexts,
                         testing::Values("gpt-2", "llama-spm", "bert-bge", "starcoder", "refact",
                                         "falcon", "mpt", "phi-3", "deepseek-llm",
                                         "deepseek-coder"),
                         [](const testing::TestParamInfo<std::string>& p) {
                           std::string s = p.param;
                           for (char& ch : s) {
                             if (ch == '-') ch = '_';
                           }
                           return s;
                         });

// baichuan (llama type) and gpt-neox have a vocabulary file but no recorded ids: they must load
// through the file reader and give back the text they encoded.
TEST(GgufVocab, FilesWithoutRecordedIdsLoadAndRoundTrip) {
  const std::string text =
      "Hello world\n  3333 tabs\there! \xD0\x9F\xD1\x80\xD0\xB8 \xE4\xBD\xA0 "
      "\xF0\x9F\xA6\x99";
  for (const char* name : {"baichuan", "gpt-neox"}) {
    auto path = kVocabDir / (std::string("ggml-vocab-") + name + ".gguf");
    Tokenizer tok = tokenizer_from_gguf(GgufFile::open(path.string()));
    auto ids = tok.encode(text, false);
    EXPECT_GT(ids.size(), 10u) << name;
    EXPECT_EQ(tok.decode(ids, false), text) << name;
  }
}

// llama.cpp splits the text on unknown-type tokens as on control tokens; HF lists <unk> as a
// special added token, so "<unk>" in the text is id 0 in both.
TEST(GgufVocab, UnknownTokenTextIsMatched) {
  Tokenizer tok =
      tokenizer_from_gguf(GgufFile::open((kVocabDir / "ggml-vocab-llama-spm.gguf").string()));
  auto ids = tok.encode("a<unk>b", false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0), ids.end());
  EXPECT_NE(tok.decode(ids, false).find("<unk>"), std::string::npos);
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true).find("<unk>"), std::string::npos);
}

TEST(GgufVocab, UnknownModelOrPreIsUnsupported) {
  GgufVocab v;
  v.model = "rwkv";
  v.tokens = {"a"};
  try {
    tokenizer_from_gguf(v);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.model"), std::string::npos);
  }
  v.model = "gpt2";
  v.pre = "no-such-pre";
  try {
    tokenizer_from_gguf(v);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.pre"), std::string::npos);
  }
}

// Regression (fuzz_gguf_vocab): GGUF strings are not checked to be UTF-8, and a vocabulary
// token holding invalid bytes reached decoded text unchanged. Decoding (whole and streamed)
// now gives valid UTF-8 with U+FFFD for them.
TEST(GgufVocab, InvalidUtf8TokensDecodeToValidText) {
  GgufVocab v;
  v.model = "bert";
  v.tokens = {"[PAD]", "[\x97NK]", "[CLS]", "[SEP]", "\xe2\x96\x81hello", "\xff\xfe"};
  v.token_types = {3, 2, 3, 3, 1, 1};
  v.unk = 1;
  const Tokenizer tok = tokenizer_from_gguf(v);
  const std::vector<int32_t> ids = {4, 1, 5, 4};
  const std::string text = tok.decode(ids, false);
  EXPECT_TRUE(is_valid_utf8(text)) << text;
  EXPECT_NE(text.find("\xEF\xBF\xBD"), std::string::npos) << text;
  IncrementalDecoder stream(tok, false);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.step(id);
  streamed += stream.finish();
  EXPECT_EQ(streamed, text);
}

// Regression (fuzz_gguf_vocab campaign): a skipped special token between byte-fallback tokens
// adds nothing, so the full decode joins the bytes across it; the stream must not end the run
// there (it emitted the first bytes as a character the joined run no longer holds).
TEST(GgufVocab, StreamedByteRunGoesOnPastSkippedSpecialTokens) {
  GgufVocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>", "<0xE2>", "<0x96>", "<0x81>", "<0xC3>", "<0xA9>", "a"};
  v.token_types = {2, 3, 3, 6, 6, 6, 3, 6, 1};  // <0xC3> marked as a control token
  v.scores = std::vector<float>(v.tokens.size(), 0.0f);
  v.unk = 0;
  const Tokenizer tok = tokenizer_from_gguf(v);
  for (const std::vector<int32_t>& ids :
       {std::vector<int32_t>{3, 4, 5, 0, 3, 4, 5, 6, 7, 8}, std::vector<int32_t>{3, 4, 5, 2, 7},
        std::vector<int32_t>{3, 1, 4, 5, 8}}) {
    for (bool skip : {true, false}) {
      const std::string full = tok.decode(ids, skip);
      IncrementalDecoder stream(tok, skip);
      std::string streamed;
      for (int32_t id : ids) streamed += stream.step(id);
      streamed += stream.finish();
      EXPECT_EQ(streamed, full) << "skip " << skip;
    }
  }
}

TEST(GgufVocab, BadIdsAndMergesAreCorruption) {
  GgufVocab v;
  v.model = "gpt2";
  v.tokens = {"a", "b", "ab"};
  v.bos = 7;
  try {
    tokenizer_from_gguf(v);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find("bos_token_id"), std::string::npos);
  }
  v.bos.reset();
  v.merges = {"a b", "a zz"};
  try {
    tokenizer_from_gguf(v);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.merges[1]"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace loom::tokenizer
