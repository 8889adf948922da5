// Writes the binary seed inputs of the GGUF-based fuzz targets (small, valid files that reach
// deep into each parser) into tests/fuzz/corpus/<target>/. Run by hand after changing what the
// seeds should cover: `build/fuzz/tests/fuzz/make_fuzz_seeds tests/fuzz/corpus`. The seeds
// are committed; the fuzzers' minimized corpora grow from them.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "quant/quant.h"

namespace {

using loom::DType;
using loom::GgufValue;
using loom::GgufWriter;

// A SentencePiece-style vocabulary: specials, the 256 byte tokens, then a few pieces.
void add_llama_vocab(GgufWriter& g) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  const char* pieces[] = {"\xe2\x96\x81",
                          "a",
                          "b",
                          "\xe2\x96\x81"
                          "a",
                          "ab",
                          "\xe2\x96\x81"
                          "ab",
                          "\xe4\xb8\xad",
                          "<|im_start|>"};
  float score = -1;
  for (const char* p : pieces) {
    tokens.push_back(p);
    scores.push_back(score--);
    types.push_back(std::string(p) == "<|im_start|>" ? 4 : 1);
  }
  std::vector<GgufValue> score_values, type_values;
  for (float s : scores) score_values.emplace_back(s);
  for (int32_t t : types) type_values.emplace_back(t);
  g.set("tokenizer.ggml.model", GgufValue("llama"));
  g.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  g.set("tokenizer.ggml.scores", GgufValue::array(loom::GgufType::kF32, score_values));
  g.set("tokenizer.ggml.token_type", GgufValue::array(loom::GgufType::kI32, type_values));
  g.set("tokenizer.ggml.bos_token_id", GgufValue(uint32_t{1}));
  g.set("tokenizer.ggml.eos_token_id", GgufValue(uint32_t{2}));
  g.set("tokenizer.ggml.unknown_token_id", GgufValue(uint32_t{0}));
  g.set("tokenizer.ggml.add_bos_token", GgufValue(true));
}

// A byte-level BPE vocabulary with merges and a named pre-tokenizer.
void add_gpt2_vocab(GgufWriter& g, const char* pre) {
  std::vector<std::string> tokens = {"a",
                                     "b",
                                     "ab",
                                     "\xc4\xa0",
                                     "\xc4\xa0"
                                     "a",
                                     "c",
                                     "<|endoftext|>"};
  std::vector<GgufValue> types;
  for (size_t i = 0; i < tokens.size(); ++i)
    types.emplace_back(int32_t{i + 1 == tokens.size() ? 3 : 1});
  g.set("tokenizer.ggml.model", GgufValue("gpt2"));
  g.set("tokenizer.ggml.pre", GgufValue(pre));
  g.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  g.set("tokenizer.ggml.token_type", GgufValue::array(loom::GgufType::kI32, types));
  g.set("tokenizer.ggml.merges", GgufValue::string_array({"a b", "\xc4\xa0 a"}));
  g.set("tokenizer.ggml.eos_token_id", GgufValue(uint32_t{6}));
}

void add_bert_vocab(GgufWriter& g) {
  std::vector<std::string> tokens = {"[PAD]",
                                     "[UNK]",
                                     "[CLS]",
                                     "[SEP]",
                                     "\xe2\x96\x81hello",
                                     "\xe2\x96\x81world",
                                     "s",
                                     "\xe2\x96\x81"
                                     "a"};
  std::vector<GgufValue> types;
  for (size_t i = 0; i < tokens.size(); ++i) types.emplace_back(int32_t{i < 4 ? 3 : 1});
  g.set("tokenizer.ggml.model", GgufValue("bert"));
  g.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  g.set("tokenizer.ggml.token_type", GgufValue::array(loom::GgufType::kI32, types));
  g.set("tokenizer.ggml.unknown_token_id", GgufValue(uint32_t{1}));
  g.set("tokenizer.ggml.cls_token_id", GgufValue(uint32_t{2}));
  g.set("tokenizer.ggml.seperator_token_id", GgufValue(uint32_t{3}));
  g.set("tokenizer.ggml.padding_token_id", GgufValue(uint32_t{0}));
}

// Deterministic pseudo-random weights in [-0.5, 0.5).
std::vector<float> weights(size_t n, uint32_t seed) {
  std::vector<float> w(n);
  uint32_t x = seed * 2654435761u + 1;
  for (float& v : w) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<float>(x % 1000) / 1000.0f - 0.5f;
  }
  return w;
}

// Owns the bytes of the tensors added to a writer (GgufWriter borrows them).
struct TensorStore {
  std::vector<std::vector<uint8_t>> blobs;

  void add(GgufWriter& g, const std::string& name, DType type, std::vector<uint64_t> ne,
           uint32_t seed) {
    size_t n = 1;
    for (uint64_t d : ne) n *= d;
    std::vector<float> w = weights(n, seed);
    if (name.find("norm") != std::string::npos) {
      for (float& v : w) v = 1.0f + v * 0.1f;
    }
    std::vector<uint8_t> bytes;
    if (type == DType::kF32) {
      bytes.resize(n * 4);
      std::memcpy(bytes.data(), w.data(), n * 4);
    } else {
      const int64_t row = static_cast<int64_t>(ne[0]);
      const size_t row_bytes = *loom::row_bytes(type, static_cast<uint64_t>(row));
      bytes.resize(row_bytes * (n / ne[0]));
      for (size_t r = 0; r < n / ne[0]; ++r) {
        loom::quantize_row(type, w.data() + r * ne[0], bytes.data() + r * row_bytes, row);
      }
    }
    blobs.push_back(std::move(bytes));
    g.add_tensor(name, type, std::move(ne), blobs.back().data(), blobs.back().size());
  }
};

// A llama-architecture model small enough for a fuzz input (hidden 32, 1 layer, GQA 2:1),
// with the SentencePiece vocabulary and a chat template.
std::string tiny_llama(DType matrix_type, const char* arch, bool bias) {
  GgufWriter g;
  TensorStore store;
  const uint64_t hidden = 32, ffn = 64, heads = 2, kv_heads = 1, hd = 16;
  g.set("general.architecture", GgufValue(arch));
  g.set("general.name", GgufValue("fuzz-seed"));
  auto key = [&](const char* k) { return std::string(arch) + "." + k; };
  g.set(key("embedding_length"), GgufValue(uint32_t{hidden}));
  g.set(key("feed_forward_length"), GgufValue(uint32_t{ffn}));
  g.set(key("block_count"), GgufValue(uint32_t{1}));
  g.set(key("context_length"), GgufValue(uint32_t{64}));
  g.set(key("attention.head_count"), GgufValue(uint32_t{heads}));
  g.set(key("attention.head_count_kv"), GgufValue(uint32_t{kv_heads}));
  g.set(key("attention.layer_norm_rms_epsilon"), GgufValue(1e-5f));
  g.set(key("rope.freq_base"), GgufValue(10000.0f));
  add_llama_vocab(g);
  g.set("tokenizer.chat_template",
        GgufValue("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}\n"
                  "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"));
  const uint64_t vocab = 3 + 256 + 8;
  store.add(g, "token_embd.weight", DType::kF32, {hidden, vocab}, 1);
  store.add(g, "blk.0.attn_norm.weight", DType::kF32, {hidden}, 2);
  store.add(g, "blk.0.attn_q.weight", matrix_type, {hidden, heads * hd}, 3);
  store.add(g, "blk.0.attn_k.weight", matrix_type, {hidden, kv_heads * hd}, 4);
  store.add(g, "blk.0.attn_v.weight", matrix_type, {hidden, kv_heads * hd}, 5);
  if (bias) {
    store.add(g, "blk.0.attn_q.bias", DType::kF32, {heads * hd}, 13);
    store.add(g, "blk.0.attn_k.bias", DType::kF32, {kv_heads * hd}, 14);
    store.add(g, "blk.0.attn_v.bias", DType::kF32, {kv_heads * hd}, 15);
  }
  store.add(g, "blk.0.attn_output.weight", matrix_type, {heads * hd, hidden}, 6);
  store.add(g, "blk.0.ffn_norm.weight", DType::kF32, {hidden}, 7);
  store.add(g, "blk.0.ffn_gate.weight", matrix_type, {hidden, ffn}, 8);
  store.add(g, "blk.0.ffn_up.weight", matrix_type, {hidden, ffn}, 9);
  store.add(g, "blk.0.ffn_down.weight", matrix_type, {ffn, hidden}, 10);
  store.add(g, "output_norm.weight", DType::kF32, {hidden}, 11);
  if (matrix_type != DType::kF32) store.add(g, "output.weight", matrix_type, {hidden, vocab}, 12);
  return g.write_to_string();
}

void write(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    loom::fail(loom::ErrorCode::kIoError, "{}: cannot write", path.string());
  }
  std::fclose(f);
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds CORPUS_DIR (tests/fuzz/corpus)\n");
    return 2;
  }
  const std::filesystem::path root = argv[1];
  try {
    {
      GgufWriter g;
      add_llama_vocab(g);
      write(root / "gguf_vocab" / "llama_spm.gguf", g.write_to_string());
    }
    for (const char* pre : {"qwen2", "llama-bpe", "gpt-2", "deepseek-llm"}) {
      GgufWriter g;
      add_gpt2_vocab(g, pre);
      write(root / "gguf_vocab" / (std::string("gpt2_") + pre + ".gguf"), g.write_to_string());
    }
    {
      GgufWriter g;
      add_bert_vocab(g);
      write(root / "gguf_vocab" / "bert.gguf", g.write_to_string());
    }
    write(root / "model_load" / "llama_f32.gguf", tiny_llama(DType::kF32, "llama", false));
    write(root / "model_load" / "llama_q8_0.gguf", tiny_llama(DType::kQ8_0, "llama", false));
    write(root / "model_load" / "llama_q4_0.gguf", tiny_llama(DType::kQ4_0, "llama", false));
    write(root / "model_load" / "qwen2_f32.gguf", tiny_llama(DType::kF32, "qwen2", true));
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
