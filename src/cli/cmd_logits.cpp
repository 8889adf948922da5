// loom logits -m MODEL --ids 1,2,3 -o OUT.safetensors: the logits at every position, as the
// float32 tensor `logits` [n_ids, vocab] — the tool that makes fidelity checkable.
#include <fmt/format.h>

#include "app/loaded_model.h"
#include "backend/process_group.h"
#include "cli/commands.h"
#include "core/error.h"
#include "engine/generator.h"
#include "io/safetensors_writer.h"

namespace loom::cli {

using namespace loom::app;  // NOLINT: the subcommands are thin wrappers over app/

namespace {

struct LogitsArgs {
  std::string model;
  std::string ids;
  std::string out;
  int threads = 0;
  std::string device = "cpu";
};

int run_logits(const LogitsArgs& a) {
  std::vector<int32_t> ids = parse_id_list(a.ids);
  if (ids.empty()) fail(ErrorCode::kInvalidArgument, "--ids is empty");
  LoadedModel m = load_model(a.model, a.threads, false, false, false, a.device);
  Generator gen(
      *m.model, nullptr,
      std::min<int64_t>(m.model->info().context_length, static_cast<int64_t>(ids.size()) + 16));
  std::vector<float> logits = gen.all_logits(ids);
  const int64_t vocab = m.model->info().vocab_size;
  if (process_rank() != 0) return 0;  // under mpirun every rank has the logits; rank 0 writes
  write_safetensors(a.out, {{"logits",
                             DType::kF32,
                             {static_cast<int64_t>(ids.size()), vocab},
                             logits.data(),
                             logits.size() * sizeof(float)}});
  fmt::print(stderr, "wrote logits [{}, {}] to {}\n", ids.size(), vocab, a.out);
  return 0;
}

}  // namespace

Command add_logits(CLI::App& app) {
  auto* cmd = app.add_subcommand("logits",
                                 "Write the logits at every position of --ids to a "
                                 "safetensors file (tensor 'logits' [n_ids, vocab])");
  auto a = std::make_shared<LogitsArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_option("--ids", a->ids, "token ids, e.g. 1,2,3")->required();
  cmd->add_option("-o,--output", a->out, "output .safetensors path")->required();
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  return {cmd, [a] { return run_logits(*a); }};
}

}  // namespace loom::cli
