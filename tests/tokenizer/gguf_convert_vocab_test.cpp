// What `loom convert` writes for a HF tokenizer (app::write_tokenizer_metadata) must read back,
// through loom's GGUF vocabulary front-end, as the same tokenizer: equal ids (with and without
// special tokens) and equal decodes on every text of the reference suites, for a SentencePiece
// BPE vocabulary written as tokenizer.ggml.model "llama" (scores standing for the merge list)
// and a byte-level one written as "gpt2" + merges + pre "qwen2".
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/loaded_model.h"
#include "io/gguf.h"
#include "io/model_spec.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace loom {
namespace {

namespace fs = std::filesystem;
const fs::path kData = LOOM_TEST_DATA_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every text of tests/data/ref/tokenizers/*.json and of llama.cpp's *.gguf.inp suites: many
// scripts, whitespace runs, digits, emoji, special-token strings.
std::vector<std::string> all_texts() {
  std::vector<std::string> texts;
  for (const auto& entry : fs::directory_iterator(kData / "ref/tokenizers")) {
    auto j = nlohmann::json::parse(slurp(entry.path()));
    for (const auto& c : j.at("cases")) texts.push_back(c.at("text"));
  }
  const std::string separator = "\n__ggml_vocab_test__\n";
  for (const auto& entry : fs::directory_iterator(kData / "ref/llamacpp-vocab")) {
    if (entry.path().extension() != ".inp") continue;
    const std::string inp = slurp(entry.path());
    for (size_t pos = 0; pos < inp.size();) {
      size_t next = inp.find(separator, pos);
      texts.push_back(inp.substr(pos, next == std::string::npos ? next : next - pos));
      if (next == std::string::npos) break;
      pos = next + separator.size();
    }
  }
  // Special-token strings inside text, and the empty text.
  texts.push_back("<s>Hello</s> <unk> <|im_start|>user\nHi<|im_end|>\n<think>\n</think>");
  texts.push_back("");
  return texts;
}

struct Written {
  std::string bytes;  // the GGUF, metadata only
  GgufFile file;
};

Written write_metadata(const std::string& model) {
  ModelSpec spec = load_model_spec((kData / "ref/models" / model).string());
  GgufWriter w;
  app::write_tokenizer_metadata(spec, w);
  Written out{w.write_to_string(), GgufFile()};
  out.file = GgufFile::parse(model + ".gguf", reinterpret_cast<const uint8_t*>(out.bytes.data()),
                             out.bytes.size());
  return out;
}

class ConvertedVocab : public testing::TestWithParam<const char*> {};

TEST_P(ConvertedVocab, GgufTokenizerEqualsHfTokenizer) {
  const std::string model = GetParam();
  const Written w = write_metadata(model);
  const auto hf =
      tokenizer::Tokenizer::from_hf_json(kData / "ref/models" / model / "tokenizer.json");
  const auto gguf = tokenizer::tokenizer_from_gguf(w.file);
  int n = 0, ok = 0;
  for (const std::string& text : all_texts()) {
    ++n;
    for (bool special : {false, true}) {
      const auto want = hf.encode(text, special);
      const auto got = gguf.encode(text, special);
      EXPECT_EQ(got, want) << model << (special ? " (special)" : "") << ": " << text;
      ok += got == want && !special;
      EXPECT_EQ(gguf.decode(want, false), hf.decode(want, false)) << model << ": " << text;
      EXPECT_EQ(gguf.decode(want, true), hf.decode(want, true)) << model << ": " << text;
    }
  }
  std::printf("%s: %d/%d texts give equal ids\n", model.c_str(), ok, n);
  EXPECT_GT(n, 100);
}

INSTANTIATE_TEST_SUITE_P(Models, ConvertedVocab,
                         testing::Values("llama-tiny-llama2vocab", "qwen3-tiny-qwen3vocab"),
                         [](const testing::TestParamInfo<const char*>& p) {
                           std::string s = p.param;
                           for (char& ch : s) {
                             if (ch == '-') ch = '_';
                           }
                           return s;
                         });

TEST(ConvertedVocab, MetadataAsLlamaCppReadsIt) {
  const Written llama = write_metadata("llama-tiny-llama2vocab");
  EXPECT_EQ(llama.file.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(llama.file.find("tokenizer.ggml.merges"), nullptr);
  EXPECT_EQ(llama.file.get_bool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(llama.file.get_bool("tokenizer.ggml.add_eos_token"), false);
  EXPECT_EQ(llama.file.get_bool("tokenizer.ggml.add_space_prefix"), true);
  EXPECT_EQ(llama.file.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(llama.file.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(llama.file.get_int("tokenizer.ggml.unknown_token_id"), 0);
  const GgufArray* types = llama.file.get_array("tokenizer.ggml.token_type");
  ASSERT_NE(types, nullptr);
  EXPECT_EQ(types->items.size(), 32000u);
  EXPECT_EQ(types->items[0].as_int(), 2);  // <unk>: UNKNOWN
  EXPECT_EQ(types->items[1].as_int(), 3);  // <s>: CONTROL
  EXPECT_EQ(types->items[3].as_int(), 6);  // <0x00>: BYTE

  const Written qwen = write_metadata("qwen3-tiny-qwen3vocab");
  EXPECT_EQ(qwen.file.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(qwen.file.get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(qwen.file.get_bool("tokenizer.ggml.add_bos_token"), false);
  EXPECT_EQ(qwen.file.get_int("tokenizer.ggml.eos_token_id"), 151645);  // <|im_end|>
  EXPECT_EQ(qwen.file.get_int("tokenizer.ggml.padding_token_id"), 151643);
  const GgufArray* tokens = qwen.file.get_array("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  // Padded to config.json's vocab_size, as the embedding has that many rows.
  EXPECT_EQ(
      static_cast<int64_t>(tokens->items.size()),
      load_model_spec((kData / "ref/models/qwen3-tiny-qwen3vocab").string()).hparams.vocab_size);
  EXPECT_EQ(*tokens->items.back().as_string(),
            "[PAD" + std::to_string(tokens->items.size() - 1) + "]");
  auto tmpl = qwen.file.get_string("tokenizer.chat_template");
  ASSERT_TRUE(tmpl.has_value());
  EXPECT_EQ(*tmpl, slurp(kData / "ref/models/qwen3-tiny-qwen3vocab/chat_template.jinja"));
}

}  // namespace
}  // namespace loom
