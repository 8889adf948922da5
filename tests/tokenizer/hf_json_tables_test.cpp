// read_tokenizer_json, the one-pass reader that keeps model.vocab and model.merges out of the
// JSON document: on every tokenizer.json the tests carry it must describe exactly what the
// plain parse gives, and it must decline (so that the plain parse reports the error) every
// irregular table.
#include <gtest/gtest.h>

#include <filesystem>

#include "hf_json_tables_check.h"
#include "io/test_util.h"
#include "tokenizer/hf_json_tables.h"
#include "tokenizer/tokenizer.h"

namespace loom::tokenizer {
namespace {

namespace fs = std::filesystem;
using test::tables_mismatch;

TEST(TokenizerJsonReader, RealFilesGiveThePlainDocument) {
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(loom::test::data_dir())) {
    if (e.path().filename() != "tokenizer.json") continue;
    const std::string text = loom::test::read_file(e.path());
    const auto read = read_tokenizer_json(text);
    ASSERT_TRUE(read.has_value()) << e.path();
    const std::string type = read->doc.at("model").value("type", "BPE");
    if (type != "Unigram") {
      EXPECT_TRUE(read->tables.vocab.has_value()) << e.path();
      EXPECT_GT(read->tables.vocab->size(), 1000u) << e.path();
    }
    EXPECT_EQ(tables_mismatch(text), "") << e.path();
    ++files;
  }
  EXPECT_GE(files, 5u);
}

TEST(TokenizerJsonReader, SmallFilesAgreeWithThePlainParse) {
  for (
      const char* text : {
          R"({"model": {"type": "BPE", "vocab": {"b": 1, "a": 0, "ab": 2}, "merges": ["a b"]}})",
          R"({"model": {"vocab": {"a": 0, "b": 1, "a": 7}, "merges": [["a", "b"], ["b", "a"]]}})",
          R"({"model": {"vocab": {}, "merges": []}, "x": [[1, [2.5, null]], {"k": true}]})",
          R"({"model": {"type": "Unigram", "vocab": [["a", -1.5], ["b", -2]]}})",
          R"({"added_tokens": [{"id": 3, "content": "<s>"}], "model": {"vocab": {"x": 3}}})",
          R"({"model": {"vocab": "not a table", "merges": null}})",
          R"([{"model": {"vocab": {"a": 0}}}])",
          R"({"m": {"model": {"vocab": {"a": 0}}}, "model": 5})",
          R"({"model": {"vocab": {"\u00e9": 0, "\u0000": 1, "é": 2}, "merges": ["\u00e9 \u0000"]}})",
      }) {
    EXPECT_TRUE(read_tokenizer_json(text).has_value()) << text;
    EXPECT_EQ(tables_mismatch(text), "") << text;
  }
  // Last duplicate wins, as in the plain document's std::map.
  const auto dup = read_tokenizer_json(R"({"model": {"vocab": {"a": 0, "b": 1, "a": 7}}})");
  ASSERT_TRUE(dup.has_value());
  EXPECT_EQ(*dup->tables.vocab, (std::vector<std::pair<std::string, int32_t>>{{"a", 7}, {"b", 1}}));
}

TEST(TokenizerJsonReader, IrregularTablesAreLeftToThePlainParse) {
  for (const char* text : {
           R"({"model": {"vocab": {"a": "zero"}}})",
           R"({"model": {"vocab": {"a": -1}}})",
           R"({"model": {"vocab": {"a": 2147483648}}})",
           R"({"model": {"vocab": {"a": 1.0}}})",
           R"({"model": {"vocab": {"a": {"b": 1}}}})",
           R"({"model": {"vocab": {"a": [1]}}})",
           R"({"model": {"vocab": {"a": null}}})",
           R"({"model": {"merges": ["a b c"]}})",
           R"({"model": {"merges": ["ab"]}})",
           R"({"model": {"merges": [["a"]]}})",
           R"({"model": {"merges": [["a", "b", "c"]]}})",
           R"({"model": {"merges": [["a", 1]]}})",
           R"({"model": {"merges": [["a", ["b"]]]}})",
           R"({"model": {"merges": [7]}})",
           R"({"model": {"merges": [{"a": "b"}]}})",
           R"({"model": {"vocab": {"a": 0}, "vocab": {"b": 1}}})",
           R"({"model": {"vocab": {"a": 0}, "vocab": 3}})",
           R"({"model": {"merges": [], "merges": []}})",
           R"({"model": {"vocab": {"a": 0}}, "model": {"vocab": {"b": 0}}})",
           R"({"model": {"vocab": {"a": 0}}, "model": 3})",
           R"({"model": {"vocab": {"a": 0}})",
           R"({"model": {"vocab": {"a": 0}}} trailing)",
           R"({"model": {"vocab": {"a": 1e999}}})",
           R"({"x": -1e999, "model": {"vocab": {"a": 0}}})",
           "",
       }) {
    EXPECT_FALSE(read_tokenizer_json(text).has_value()) << text;
  }
}

// A declined file loads, or fails, exactly as before: through the plain parse.
TEST(TokenizerJsonReader, DeclinedFilesStillLoad) {
  const Tokenizer tok = Tokenizer::from_hf_json_text(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"],
                    "merges": [["a", "b"]]}})",
      "dup.json");
  EXPECT_EQ(tok.encode("ab", false), (std::vector<int32_t>{2}));
}

}  // namespace
}  // namespace loom::tokenizer
