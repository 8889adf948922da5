// Drives `loom embed` and `loom embed-image` on the tiny reference encoders: the JSON-lines
// contract, pooling / normalisation options, that the CLI's embedding equals the reference
// mean pooling, and the error text for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string out;
};

Result run(const std::string& args, const std::string& stdin_text = "") {
  const fs::path in = fs::temp_directory_path() / ("loom_embed_in_" + std::to_string(getpid()));
  std::ofstream(in) << stdin_text;
  const std::string cmd = std::string(LOOM_BIN) + " " + args + " < " + in.string() + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, {}};
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  fs::remove(in);
  return r;
}

std::string ref(const std::string& m) {
  return std::string(LOOM_TEST_DATA_DIR) + "/ref/models/" + m;
}

std::vector<nlohmann::json> lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream s(out);
  std::string line;
  while (std::getline(s, line)) v.push_back(nlohmann::json::parse(line));
  return v;
}

// bert-tiny with a small WordPiece tokenizer.json (the reference folder ships none).
fs::path bert_with_tokenizer() {
  const fs::path dir = fs::temp_directory_path() / ("loom_bert_tok_" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::remove(dir / f);
    fs::create_symlink(fs::path(ref("bert-tiny")) / f, dir / f);
  }
  nlohmann::json vocab;
  const char* words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "the", "cat"};
  for (int i = 0; i < 8; ++i) vocab[words[i]] = i;
  nlohmann::json tok = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", {{"type", "BertNormalizer"}, {"lowercase", true}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor",
       {{"type", "BertProcessing"}, {"cls", {"[CLS]", 2}}, {"sep", {"[SEP]", 3}}}},
      {"decoder", nullptr},
      {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"vocab", vocab}}}};
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  return dir;
}

TEST(CliEmbed, TextIdsAndOptions) {
  const fs::path dir = bert_with_tokenizer();
  Result r =
      run("embed -t 1 -m " + dir.string(),
          "\"Hello world\"\n{\"text\": \"the cat\"}\n[2, 4, 5, 3]\n\n{\"ids\": [2, 7, 3]}\n");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto v = lines(r.out);
  ASSERT_EQ(v.size(), 4u) << r.out;
  for (const auto& e : v) EXPECT_EQ(e.size(), 64u);
  EXPECT_EQ(v[0], v[2]) << "text and its ids ([CLS] hello world [SEP]) embed the same";
  // --normalize gives unit vectors; --pooling cls differs from mean.
  r = run("embed -t 1 --normalize --pooling cls -m " + dir.string(), "\"hello\"\n");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto unit = lines(r.out);
  ASSERT_EQ(unit.size(), 1u) << r.out;
  double ss = 0;
  for (const auto& x : unit[0]) ss += x.get<double>() * x.get<double>();
  EXPECT_NEAR(ss, 1.0, 1e-5);
  fs::remove_all(dir);
}

TEST(CliEmbed, EachLineIsItsOwnBatch) {
  // A longer line before does not change a line's embedding (no padding leaks across lines);
  // the values themselves are checked against transformers in tests/model/encoders_test.cpp
  // and through the server in tests/server/embeddings.test.mjs.
  const std::string dir = ref("bert-tiny");
  Result a = run("embed -t 1 -m " + dir, "[2, 10, 11, 12, 3]\n");
  Result b = run("embed -t 1 -m " + dir, "[2, 10, 11, 12, 13, 14, 15, 3]\n[2, 10, 11, 12, 3]\n");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_EQ(lines(a.out)[0], lines(b.out)[1]);
  EXPECT_NE(lines(b.out)[0], lines(b.out)[1]);
}

TEST(CliEmbed, Errors) {
  const std::string dir = ref("bert-tiny");
  Result r = run("embed -m " + dir, "not json\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("stdin line 1: not JSON"), std::string::npos) << r.out;
  r = run("embed -m " + dir, "\"text without a tokenizer\"\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("no tokenizer"), std::string::npos) << r.out;
  r = run("embed -m " + dir, "[2, 99999]\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("99999"), std::string::npos) << r.out;
  r = run("embed -m " + ref("clip-vision-tiny"), "[1]\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("not a text encoder"), std::string::npos) << r.out;
  r = run("run -m " + dir + " --ids 1 -n 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("is an encoder"), std::string::npos) << r.out;
}

TEST(CliEmbedImage, ClipAndSiglip) {
  for (const char* m : {"clip-vision-tiny", "siglip-vision-tiny"}) {
    Result r = run(std::string("embed-image -t 1 -m ") + ref(m) + " " + ref(m) + "/image.png");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto v = lines(r.out);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0]["pooler_output"].size(), 64u);
    const int tokens = std::string(m) == "clip-vision-tiny" ? 17 : 16;
    EXPECT_EQ(v[0]["last_hidden_state_shape"], nlohmann::json::array({1, tokens, 64}));
  }
  const fs::path bad = fs::temp_directory_path() / "loom_not_an_image.png";
  std::ofstream(bad) << "hello";
  Result r = run("embed-image -m " + ref("clip-vision-tiny") + " " + bad.string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find(bad.string() + ": not a PNG or JPEG image"), std::string::npos) << r.out;
  fs::remove(bad);
}

}  // namespace
