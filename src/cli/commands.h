// Subcommands of the `loom` binary. Each registers itself on the CLI11 app and returns a
// function that runs it; run functions throw loom::Error on bad input, and main() turns that
// into a message and an exit code (one table, in main.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>

#include "app/drafting.h"
#include "sample/sampler.h"

namespace loom::cli {

using Runner = std::function<int()>;

struct Command {
  CLI::App* app;  // the subcommand, owned by the parent app
  Runner run;
};

Command add_inspect(CLI::App& app);
Command add_logits(CLI::App& app);
Command add_run(CLI::App& app);
Command add_convert(CLI::App& app);
Command add_synth(CLI::App& app);
Command add_serve(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_detokenize(CLI::App& app);
Command add_chat_template(CLI::App& app);
Command add_embed(CLI::App& app);
Command add_embed_image(CLI::App& app);
Command add_grammar_bench(CLI::App& app);
Command add_guard_check(CLI::App& app);
Command add_perplexity(CLI::App& app);
Command add_pull(CLI::App& app);
Command add_chat(CLI::App& app);

// --temp, --top-k, --top-p, --min-p, --seed (loom run, loom chat).
struct SamplingFlags {
  float temp = 0.8f, top_p = 1.0f, min_p = 0.0f;
  int32_t top_k = 40;
  std::optional<uint64_t> seed;
  void apply(sample::SamplingParams& params) const;  // top-k off when greedy (temp 0)
};
void add_sampling_options(CLI::App& cmd, SamplingFlags& flags);

// What `loom chat` (and `loom run` without a prompt on a terminal) runs with.
struct ChatSettings {
  std::string model, system, device = "cpu", guard = "stop";
  int64_t n_predict = 512, ctx = 0;
  SamplingFlags sampling;
  int threads = 0;
};
int run_chat(const ChatSettings& settings);

// kUnsupported when started by mpirun with more than one rank: `command` does not run as a
// tensor-parallel group (yet).
void refuse_process_group(const char* command);

// --device cpu|cuda[:N] (run, bench, serve, logits, embed, embed-image, perplexity).
void add_device_option(CLI::App& cmd, std::string& device);

// --spec, --spec-corpus, --draft, --draft-n (loom run, loom bench).
void add_draft_options(CLI::App& cmd, app::DraftArgs& a);

}  // namespace loom::cli
