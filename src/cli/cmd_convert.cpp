// loom convert SRC -o OUT.gguf [--type f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k]
// loom synth --arch llama --hidden H --layers L --heads N --kv-heads K --ffn F
//            --vocab-from MODEL -o DIR
#include <fmt/format.h>

#include "app/loaded_model.h"
#include "cli/commands.h"
#include "convert/convert.h"
#include "core/error.h"
#include "hub/hub.h"

namespace loom::cli {

using namespace loom::app;  // NOLINT: the subcommands are thin wrappers over app/

namespace {

struct ConvertArgs {
  std::string src, out, type = "f16";
  int threads = 0;
};

int run_convert(const ConvertArgs& a) {
  static const char* kTypes[] = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1",
                                 "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"};
  bool known = false;
  for (const char* t : kTypes) known |= a.type == t;
  auto dtype = dtype_from_name(a.type);
  if (!known || !dtype) {
    fail(ErrorCode::kInvalidArgument,
         "--type {} is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k",
         a.type);
  }
  ModelSpec spec = load_model_spec(hub::resolve_model_argument(a.src));
  ConvertOptions opt;
  opt.progress = true;
  opt.type = *dtype;
  opt.threads = a.threads > 0 ? a.threads : default_threads();
  opt.write_tokenizer = write_tokenizer_metadata;
  ConvertReport r = convert_to_gguf(spec, a.out, opt);
  fmt::print(stderr, "wrote {}: {} tensors, {:.1f} MiB, type {}{}\n", a.out, r.n_tensors,
             static_cast<double>(r.bytes) / (1 << 20), dtype_name(*dtype),
             r.n_fallback > 0
                 ? fmt::format(" ({} tensors in a fallback type: rows not a multiple of its block)",
                               r.n_fallback)
                 : "");
  return 0;
}

struct SynthArgs {
  SynthOptions o;
  std::string out;
};

}  // namespace

Command add_convert(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert",
                                 "Convert a HF folder (or a GGUF) to GGUF, optionally "
                                 "quantized; llama.cpp loads the result");
  auto a = std::make_shared<ConvertArgs>();
  cmd->add_option("src", a->src, "a Hugging Face model folder or a .gguf file")->required();
  cmd->add_option("-o,--output", a->out, "output .gguf path")->required();
  cmd->add_option("--type", a->type, "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  return {cmd, [a] {
            refuse_process_group("convert");  // every rank would write the same file
            return run_convert(*a);
          }};
}

Command add_synth(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth",
                                 "Write a HF model folder with random weights of any "
                                 "shape (for benchmarks at real sizes)");
  auto a = std::make_shared<SynthArgs>();
  cmd->add_option("--arch", a->o.arch, "llama | qwen2 | qwen3 (default llama)");
  cmd->add_option("--hidden", a->o.hidden, "hidden size")->required();
  cmd->add_option("--layers", a->o.layers, "number of layers")->required();
  cmd->add_option("--heads", a->o.heads, "attention heads")->required();
  cmd->add_option("--kv-heads", a->o.kv_heads, "key/value heads (default: --heads)");
  cmd->add_option("--ffn", a->o.ffn, "feed-forward size")->required();
  cmd->add_option("--vocab", a->o.vocab, "vocabulary size (when no --vocab-from)");
  cmd->add_option("--vocab-from", a->o.vocab_from, "copy the tokenizer of this HF model folder");
  cmd->add_option("--context", a->o.context, "context length (default 2048)");
  cmd->add_option("--seed", a->o.seed, "random seed (default 1)");
  cmd->add_option("-o,--output", a->out, "output folder")->required();
  return {cmd, [a] {
            refuse_process_group("synth");
            synth_hf_model(a->o, a->out);
            fmt::print(stderr, "wrote {}\n", a->out);
            return 0;
          }};
}

}  // namespace loom::cli
