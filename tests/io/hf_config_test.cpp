#include "io/hf_config.h"

#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "test_util.h"

namespace loom {
namespace {

using test::expect_error;

HfConfig ref_config(const std::string& model) {
  std::string path = test::data_dir() + "/ref/models/" + model + "/config.json";
  return parse_hf_config(read_text_file(path), path);
}

TEST(HfConfig, Llama) {
  HfConfig c = ref_config("llama-tiny");
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_TRUE(c.architecture_known);
  const HyperParams& hp = c.hparams;
  EXPECT_EQ(hp.vocab_size, 1024);
  EXPECT_EQ(hp.hidden_size, 64);
  EXPECT_EQ(hp.n_layers, 2);
  EXPECT_EQ(hp.n_heads, 4);
  EXPECT_EQ(hp.n_kv_heads, 2);
  EXPECT_EQ(hp.head_dim, 16);
  EXPECT_EQ(hp.ffn_size, 160);
  EXPECT_DOUBLE_EQ(hp.norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(hp.rope_theta, 10000.0);
  EXPECT_EQ(hp.rope_scaling.type, "none");
  EXPECT_FALSE(hp.tie_embeddings);
  EXPECT_EQ(hp.bos_token_ids, std::vector<int64_t>{1});
}

TEST(HfConfig, Llama3RopeScaling) {
  const HyperParams hp = ref_config("llama3-ropescaled-tiny").hparams;
  EXPECT_DOUBLE_EQ(hp.rope_theta, 500000.0);
  EXPECT_EQ(hp.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(hp.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(hp.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(hp.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(hp.rope_scaling.original_context, 64);
}

TEST(HfConfig, Gemma3PerLayerRope) {
  HfConfig c = ref_config("gemma3-tiny");
  EXPECT_EQ(c.architecture, "gemma3");
  EXPECT_DOUBLE_EQ(c.hparams.rope_theta, 1000000.0);
  EXPECT_DOUBLE_EQ(c.hparams.rope_local_theta, 10000.0);
  EXPECT_EQ(c.hparams.sliding_window, 6);
  EXPECT_EQ(c.hparams.sliding_window_pattern, 6);
  EXPECT_EQ(c.hparams.layer_types.size(), 2u);
  EXPECT_TRUE(c.hparams.tie_embeddings);
  EXPECT_EQ(c.hparams.activation, "gelu_pytorch_tanh");
}

TEST(HfConfig, Gemma2Softcaps) {
  const HyperParams hp = ref_config("gemma2-tiny").hparams;
  EXPECT_DOUBLE_EQ(hp.attn_logit_softcap, 50.0);
  EXPECT_DOUBLE_EQ(hp.final_logit_softcap, 30.0);
  EXPECT_DOUBLE_EQ(hp.query_pre_attn_scalar, 16.0);
}

TEST(HfConfig, MixtureOfExperts) {
  const HyperParams mixtral = ref_config("mixtral-tiny").hparams;
  EXPECT_EQ(mixtral.n_experts, 4);
  EXPECT_EQ(mixtral.n_experts_used, 2);
  EXPECT_EQ(mixtral.head_dim, 16);  // null in config.json: derived
  const HyperParams qmoe = ref_config("qwen3moe-tiny").hparams;
  EXPECT_EQ(qmoe.n_experts, 8);
  EXPECT_EQ(qmoe.expert_ffn_size, 32);
  EXPECT_TRUE(qmoe.expert_norm_topk);
}

TEST(HfConfig, Gpt2Spellings) {
  HfConfig c = ref_config("gpt2-tiny");
  EXPECT_EQ(c.hparams.hidden_size, 64);
  EXPECT_EQ(c.hparams.n_layers, 2);
  EXPECT_EQ(c.hparams.ffn_size, 256);  // n_inner null: 4 * n_embd
  EXPECT_EQ(c.hparams.context_length, 256);
  EXPECT_DOUBLE_EQ(c.hparams.norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.hparams.rope_theta, 0.0);  // learned positions
}

TEST(HfConfig, PartialRotaryFactor) {
  // transformers >= 5 nests it in rope_parameters; older phi3-family configs keep it at the top.
  for (const char* text : {R"({"model_type": "phi3", "hidden_size": 64, "num_attention_heads": 4,
            "rope_parameters": {"rope_theta": 10000.0, "partial_rotary_factor": 0.75}})",
                           R"({"model_type": "phi3", "hidden_size": 64, "num_attention_heads": 4,
            "rope_theta": 10000.0, "partial_rotary_factor": 0.75})"}) {
    const HyperParams hp = parse_hf_config(text, "config.json").hparams;
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_EQ(hp.rope_dims, 12);
  }
  EXPECT_EQ(ref_config("phi3-tiny").hparams.rope_dims, 0);  // factor 1.0: all of head_dim
}

TEST(HfConfig, Encoders) {
  EXPECT_EQ(ref_config("bert-tiny").hparams.type_vocab_size, 2);
  HfConfig clip = ref_config("clip-vision-tiny");
  EXPECT_EQ(clip.architecture, "clip");
  EXPECT_EQ(clip.hparams.image_size, 32);
  EXPECT_EQ(clip.hparams.patch_size, 8);
  EXPECT_EQ(ref_config("siglip-vision-tiny").architecture, "siglip");
}

TEST(HfConfig, WrongTypesNameTheKey) {
  expect_error([] { parse_hf_config(R"({"model_type":"llama","hidden_size":"64"})", "c.json"); },
               ErrorCode::kCorruption,
               {"c.json", "'hidden_size' must be a non-negative integer", "\"64\""});
  expect_error([] { parse_hf_config(R"({"model_type":"llama","rms_norm_eps":[1]})", "c.json"); },
               ErrorCode::kCorruption, {"'rms_norm_eps' must be a number"});
  expect_error(
      [] { parse_hf_config(R"({"model_type":"llama","num_hidden_layers":-2})", "c.json"); },
      ErrorCode::kCorruption, {"'num_hidden_layers'"});
  expect_error(
      [] { parse_hf_config(R"({"model_type":"llama","tie_word_embeddings":"yes"})", "c.json"); },
      ErrorCode::kCorruption, {"'tie_word_embeddings' must be true or false"});
  expect_error([] { parse_hf_config(R"({"hidden_size":64})", "c.json"); }, ErrorCode::kCorruption,
               {"'model_type' is missing"});
  expect_error([] { parse_hf_config("{\"model_type\": \"llama\",", "c.json"); },
               ErrorCode::kCorruption, {"c.json", "not valid JSON"});
  expect_error(
      [] {
        parse_hf_config(R"({"model_type":"llama","num_attention_heads":6,"num_key_value_heads":4})",
                        "c.json");
      },
      ErrorCode::kCorruption, {"not a multiple of num_key_value_heads"});
}

TEST(HfConfig, UnknownArchitectureIsKeptButFlagged) {
  HfConfig c = parse_hf_config(R"({"model_type":"mamba","hidden_size":8})", "c.json");
  EXPECT_EQ(c.architecture, "mamba");
  EXPECT_FALSE(c.architecture_known);
}

TEST(HfConfig, GenerationConfigOverridesIds) {
  HyperParams hp;
  hp.eos_token_ids = {2};
  apply_generation_config(R"({"eos_token_id":[2, 7],"bos_token_id":1})", "g.json", hp);
  EXPECT_EQ(hp.eos_token_ids, (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(hp.bos_token_ids, std::vector<int64_t>{1});
}

}  // namespace
}  // namespace loom
