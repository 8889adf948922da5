// A model whose tensors do not match its config fails at load naming the tensor; an unknown
// architecture or a prompt past the context is a clear error, not a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/generator.h"
#include "io/gguf.h"
#include "io/model_spec.h"
#include "io/test_util.h"
#include "model/model.h"
#include "reference_util.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

// Copies a reference GGUF-able model into a GGUF with one tensor changed by `edit`.
std::string write_variant(const std::string& name,
                          const std::function<bool(GgufWriter&, const TensorInfo&)>& edit,
                          const std::string& arch = "llama") {
  ModelSpec spec = load_model_spec(test::ref_model_dir("llama-tiny"));
  GgufWriter w;
  w.set("general.architecture", GgufValue(arch));
  w.set(arch + ".embedding_length", GgufValue(uint32_t(spec.hparams.hidden_size)));
  w.set(arch + ".block_count", GgufValue(uint32_t(spec.hparams.n_layers)));
  w.set(arch + ".feed_forward_length", GgufValue(uint32_t(spec.hparams.ffn_size)));
  w.set(arch + ".attention.head_count", GgufValue(uint32_t(spec.hparams.n_heads)));
  w.set(arch + ".attention.head_count_kv", GgufValue(uint32_t(spec.hparams.n_kv_heads)));
  w.set(arch + ".context_length", GgufValue(uint32_t(spec.hparams.context_length)));
  w.set(arch + ".vocab_size", GgufValue(uint32_t(spec.hparams.vocab_size)));
  for (const TensorInfo& t : spec.tensors) {
    if (edit(w, t)) continue;
    std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
    w.add_tensor(t.name, t.dtype, ne, t.data, t.n_bytes);
  }
  const std::string path = (fs::temp_directory_path() / (name + ".gguf")).string();
  w.write(path);
  return path;
}

TEST(ModelErrors, MissingTensorIsNamed) {
  const std::string path = write_variant("missing", [](GgufWriter&, const TensorInfo& t) {
    return t.name == "blk.1.attn_v.weight";  // dropped
  });
  ModelSpec spec = load_model_spec(path);
  auto backend = make_cpu_backend(1);
  test::expect_error([&] { load_causal_lm(spec, *backend); }, ErrorCode::kCorruption,
                     {"tensor 'blk.1.attn_v.weight' is missing"});
}

TEST(ModelErrors, WrongShapeIsNamed) {
  const std::string path = write_variant("wrongshape", [](GgufWriter& w, const TensorInfo& t) {
    if (t.name != "blk.0.ffn_up.weight") return false;
    // Same bytes, transposed shape.
    w.add_tensor(t.name, t.dtype,
                 {static_cast<uint64_t>(t.shape[0]), static_cast<uint64_t>(t.shape[1])}, t.data,
                 t.n_bytes);
    return true;
  });
  ModelSpec spec = load_model_spec(path);
  auto backend = make_cpu_backend(1);
  test::expect_error([&] { load_causal_lm(spec, *backend); }, ErrorCode::kCorruption,
                     {"tensor 'blk.0.ffn_up.weight' has shape [64, 160], expected [160, 64]"});
}

TEST(ModelErrors, UnsupportedQuantTypeIsNamed) {
  GgufWriter w;
  w.set("general.architecture", GgufValue("llama"));
  w.set("llama.embedding_length", GgufValue(uint32_t{256}));
  w.set("llama.block_count", GgufValue(uint32_t{1}));
  w.set("llama.feed_forward_length", GgufValue(uint32_t{256}));
  w.set("llama.attention.head_count", GgufValue(uint32_t{1}));
  w.set("llama.vocab_size", GgufValue(uint32_t{4}));
  std::vector<uint8_t> emb(66 * 4);
  w.add_tensor("token_embd.weight", DType::kIQ2_XXS, {256, 4}, emb.data(), emb.size());
  const std::string p2 = (fs::temp_directory_path() / "iq2.gguf").string();
  w.write(p2);
  ModelSpec spec = load_model_spec(p2);
  auto backend = make_cpu_backend(1);
  test::expect_error([&] { load_causal_lm(spec, *backend); }, ErrorCode::kUnsupported,
                     {"tensor 'token_embd.weight' has type IQ2_XXS"});
}

TEST(ModelErrors, UnknownArchitecture) {
  ModelSpec spec = load_model_spec(test::ref_model_dir("bert-tiny"));
  auto backend = make_cpu_backend(1);
  test::expect_error([&] { load_causal_lm(spec, *backend); }, ErrorCode::kUnsupported,
                     {"architecture 'bert' is not supported"});
}

TEST(ModelErrors, PromptLongerThanContext) {
  ModelSpec spec = load_model_spec(test::ref_model_dir("llama-tiny"));
  auto backend = make_cpu_backend(1);
  auto model = load_causal_lm(spec, *backend);
  Generator gen(*model, nullptr, 8);
  std::vector<int32_t> prompt(20, 5);
  GenerationOptions opt;
  test::expect_error([&] { gen.generate(prompt, opt, nullptr); }, ErrorCode::kOutOfRange,
                     {"the prompt has 20 tokens but the context holds 8"});
  test::expect_error([&] { gen.all_logits(prompt); }, ErrorCode::kOutOfRange,
                     {"20 tokens do not fit the context of 8"});
  std::vector<int32_t> bad = {1, 5000};
  test::expect_error([&] { gen.all_logits(bad); }, ErrorCode::kInvalidArgument,
                     {"token id 5000 (position 1) is outside the vocabulary [0, 1024)"});
}

}  // namespace
}  // namespace loom
