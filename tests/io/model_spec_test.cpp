#include "io/model_spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "io/gguf.h"
#include "test_util.h"

namespace loom {
namespace {

using test::expect_error;
namespace fs = std::filesystem;

std::vector<fs::path> ref_model_dirs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(test::data_dir() + "/ref/models")) {
    out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every reference model folder loads, every tensor gets a GGUF name (no HF name leaks through),
// and the tensor table agrees with the hyper-parameters.
TEST(ModelSpec, LoadsEveryReferenceModelFolder) {
  auto dirs = ref_model_dirs();
  ASSERT_GE(dirs.size(), 16u);
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.string());
    ModelSpec spec = load_model_spec(dir.string());
    EXPECT_EQ(spec.format, ModelFormat::kHfFolder);
    EXPECT_TRUE(spec.architecture_known) << spec.architecture;
    EXPECT_GT(spec.tensors.size(), 10u);
    EXPECT_GT(spec.hparams.hidden_size, 0);
    EXPECT_GT(spec.hparams.n_layers, 0);
    for (const TensorInfo& t : spec.tensors) {
      bool mapped = t.name != t.source_name;
      // Vision pooling heads (siglip's head.*) and the bert pooler have no llama.cpp name yet.
      bool allowed_unmapped =
          t.source_name.starts_with("head.") || t.source_name.starts_with("pooler.");
      EXPECT_TRUE(mapped || allowed_unmapped) << t.source_name;
      EXPECT_NE(t.data, nullptr);
    }
    if (spec.architecture != "clip" && spec.architecture != "siglip") {
      const TensorInfo& embd = spec.require("token_embd.weight");
      EXPECT_EQ(embd.shape,
                (std::vector<int64_t>{spec.hparams.vocab_size, spec.hparams.hidden_size}));
    }
    for (int64_t layer = 0; layer < spec.hparams.n_layers; ++layer) {
      std::string prefix =
          (spec.architecture == "clip" || spec.architecture == "siglip") ? "v.blk." : "blk.";
      bool any = false;
      for (const TensorInfo& t : spec.tensors) {
        any |= t.name.starts_with(prefix + std::to_string(layer) + ".");
      }
      EXPECT_TRUE(any) << "layer " << layer;
    }
  }
}

TEST(ModelSpec, LlamaTensorTable) {
  ModelSpec spec = load_model_spec(test::data_dir() + "/ref/models/llama-tiny");
  EXPECT_EQ(spec.require("blk.1.attn_k.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(spec.require("blk.0.ffn_norm.weight").source_name,
            "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(spec.require("output.weight").dtype, DType::kBF16);
  EXPECT_FALSE(spec.hparams.tie_embeddings);
  expect_error([&] { spec.require("blk.9.attn_q.weight"); }, ErrorCode::kNotFound,
               {"tensor 'blk.9.attn_q.weight' is missing", "llama"});
}

TEST(ModelSpec, GemmaNormsAndMixtralExperts) {
  ModelSpec gemma = load_model_spec(test::data_dir() + "/ref/models/gemma2-tiny");
  EXPECT_NE(gemma.find("blk.0.post_attention_norm.weight"), nullptr);
  EXPECT_NE(gemma.find("blk.0.post_ffw_norm.weight"), nullptr);
  EXPECT_NE(gemma.find("blk.0.ffn_norm.weight"), nullptr);
  EXPECT_TRUE(gemma.hparams.tie_embeddings);
  ModelSpec mixtral = load_model_spec(test::data_dir() + "/ref/models/mixtral-tiny");
  EXPECT_NE(mixtral.find("blk.1.ffn_gate_inp.weight"), nullptr);
  EXPECT_NE(mixtral.find("blk.1.ffn_down.3.weight"), nullptr);
  EXPECT_EQ(mixtral.hf_model_type, "mixtral");
}

TEST(ModelSpec, TokenizerSourcesOfHfFolders) {
  ModelSpec llama = load_model_spec(test::data_dir() + "/ref/models/llama-tiny-llama2vocab");
  // Named at load, read when described (inspect): the file is tens of MB for large vocabularies.
  EXPECT_EQ(llama.tokenizer.kind, "tokenizer.json");
  EXPECT_EQ(llama.tokenizer.n_tokens, 0);
  describe_hf_tokenizer(llama.tokenizer);
  EXPECT_EQ(llama.tokenizer.kind, "bpe");
  EXPECT_EQ(llama.tokenizer.n_tokens, 32000);
  describe_hf_tokenizer(llama.tokenizer);  // once described, a no-op
  EXPECT_EQ(llama.tokenizer.kind, "bpe");
  ModelSpec qwen = load_model_spec(test::data_dir() + "/ref/models/qwen3-tiny-qwen3vocab");
  EXPECT_TRUE(qwen.tokenizer.has_chat_template);
  EXPECT_EQ(qwen.hparams.vocab_size, 151936);
  ModelSpec none = load_model_spec(test::data_dir() + "/ref/models/llama-tiny");
  EXPECT_TRUE(none.tokenizer.kind.empty());
}

TEST(ModelSpec, LoadsEveryLlamaCppVocabGguf) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(test::data_dir() + "/ref/llamacpp-vocab")) {
    if (e.path().extension() != ".gguf") continue;
    SCOPED_TRACE(e.path().string());
    ModelSpec spec = load_model_spec(e.path().string());
    EXPECT_EQ(spec.format, ModelFormat::kGguf);
    EXPECT_FALSE(spec.architecture.empty());
    EXPECT_FALSE(spec.tokenizer.kind.empty());
    EXPECT_GT(spec.tokenizer.n_tokens, 1000);
    EXPECT_EQ(spec.hparams.vocab_size, spec.tokenizer.n_tokens);
    ASSERT_NE(spec.gguf(), nullptr);
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(ModelSpec, GgufHyperParamsFromMetadata) {
  std::vector<float> w(8 * 4, 0.5f);
  GgufWriter g;
  g.set("general.architecture", GgufValue("qwen2"));
  g.set("general.name", GgufValue("tiny"));
  g.set("qwen2.embedding_length", GgufValue(uint32_t{4}));
  g.set("qwen2.block_count", GgufValue(uint32_t{1}));
  g.set("qwen2.attention.head_count", GgufValue(uint32_t{2}));
  g.set("qwen2.attention.head_count_kv", GgufValue(uint32_t{1}));
  g.set("qwen2.rope.freq_base", GgufValue(1000000.0f));
  g.set("qwen2.attention.layer_norm_rms_epsilon", GgufValue(1e-6f));
  g.set("tokenizer.ggml.model", GgufValue("gpt2"));
  g.set("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b", "c", "d", "e", "f", "g", "h"}));
  g.add_tensor("token_embd.weight", DType::kF32, {4, 8}, w.data(), w.size() * 4);
  auto path = test::temp_path("tiny-qwen2.gguf");
  g.write(path.string());
  ModelSpec spec = load_model_spec(path.string());
  EXPECT_EQ(spec.architecture, "qwen2");
  EXPECT_EQ(spec.name, "tiny");
  EXPECT_EQ(spec.hparams.hidden_size, 4);
  EXPECT_EQ(spec.hparams.n_kv_heads, 1);
  EXPECT_EQ(spec.hparams.head_dim, 2);
  EXPECT_EQ(spec.hparams.vocab_size, 8);
  EXPECT_DOUBLE_EQ(spec.hparams.rope_theta, 1000000.0);
  EXPECT_TRUE(spec.hparams.tie_embeddings);
  EXPECT_EQ(spec.require("token_embd.weight").shape, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(spec.tokenizer.kind, "gpt2");
}

TEST(ModelSpec, BadPaths) {
  expect_error([] { load_model_spec("/nonexistent/model.gguf"); }, ErrorCode::kNotFound,
               {"/nonexistent/model.gguf"});
  auto dir = test::temp_path("no-config");
  fs::create_directories(dir);
  expect_error([&] { load_model_spec(dir.string()); }, ErrorCode::kNotFound, {"no config.json"});
  auto notgguf = test::temp_path("not.gguf");
  test::write_file(notgguf, "hello world, this is text");
  expect_error([&] { load_model_spec(notgguf.string()); }, ErrorCode::kCorruption,
               {"not.gguf", "not a GGUF file"});
}

TEST(ModelSpec, GgufWithoutArchitecture) {
  GgufWriter g;
  g.set("general.name", GgufValue("x"));
  auto path = test::temp_path("noarch.gguf");
  g.write(path.string());
  expect_error([&] { load_model_spec(path.string()); }, ErrorCode::kCorruption,
               {"general.architecture' is missing"});
}

}  // namespace
}  // namespace loom
