// Model conversion: a HF folder (or a GGUF) to a GGUF file llama.cpp loads, optionally
// quantized, with the tokenizer and chat template in the metadata; and `synth`, which writes a
// HF folder with random weights of any shape for benchmarks at real sizes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/dtype.h"
#include "io/gguf.h"
#include "io/model_spec.h"

namespace loom {

struct ConvertOptions {
  DType type = DType::kF16;  // f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k
  int threads = 1;
  // Adds the tokenizer (tokenizer.ggml.*) and chat template metadata; null: none written.
  std::function<void(const ModelSpec&, GgufWriter&)> write_tokenizer;
  bool progress = false;  // a progress line on stderr (core/progress.h), as loom convert shows
};

struct ConvertReport {
  int64_t n_tensors = 0;
  uint64_t bytes = 0;
  int64_t n_fallback = 0;  // tensors stored in another type because rows do not fit its blocks
};

// Converts `spec` to GGUF at `out`. Throws kUnsupported for an architecture or type it cannot
// write yet.
ConvertReport convert_to_gguf(const ModelSpec& spec, const std::string& out,
                              const ConvertOptions& options);

// The type a weight matrix of rows of `n_cols` gets when `wanted` does not fit (as llama.cpp:
// K-quants fall back to a 32-block type, then F16).
DType fallback_type(DType wanted, int64_t n_cols);

// Writes the {arch}.* hyper-parameter keys llama.cpp reads.
void write_hparams_metadata(const ModelSpec& spec, GgufWriter& w);

struct SynthOptions {
  std::string arch = "llama";
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, vocab = 0;
  int64_t context = 2048;
  std::string vocab_from;  // a model whose tokenizer files (and vocabulary size) are copied
  uint64_t seed = 1;
  DType dtype = DType::kBF16;
};

// Writes a HF folder (config.json, generation_config.json, model.safetensors, tokenizer files
// copied from vocab_from) with random weights (normal, std 0.02; norms 1).
void synth_hf_model(const SynthOptions& options, const std::string& out_dir);

}  // namespace loom
