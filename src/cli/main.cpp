// loom — one binary, many subcommands. This file owns the mapping from error categories to
// exit codes, so every subcommand reports failures the same way.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "backend/backend.h"
#include "backend/process_group.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/progress.h"

namespace {

// Exit codes: 0 success, 1 internal error, 2 usage error, 3.. input errors by category.
int exit_code_for(loom::ErrorCode code) {
  switch (code) {
    case loom::ErrorCode::kInvalidArgument:
      return 2;
    case loom::ErrorCode::kCorruption:
      return 3;
    case loom::ErrorCode::kNotFound:
      return 4;
    case loom::ErrorCode::kUnsupported:
      return 5;
    case loom::ErrorCode::kIoError:
      return 6;
    case loom::ErrorCode::kOutOfRange:
      return 7;
    case loom::ErrorCode::kInternal:
      return 1;
  }
  return 1;
}

// Reports a failure. Under mpirun the message names the rank, and the whole group ends with
// the code (the other ranks may be waiting for this one in a collective).
int fail_with(int code, const std::string& message) {
  std::fflush(stdout);
  if (loom::process_world() > 1) {
    fmt::print(stderr, "loom (rank {} of {}): {}\n", loom::process_rank(), loom::process_world(),
               message);
    std::fflush(stderr);
    loom::abort_process_group(code);
  }
  fmt::print(stderr, "loom: {}\n", message);
  return code;
}

int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  try {
    loom::init_process_group(argc, argv);
  } catch (const loom::Error& e) {
    return fail_with(exit_code_for(e.code()), fmt::format("error: {}", e.what()));
  }
  if (loom::process_world() > 1) {
    // Each rank reads only its shard of the weights; only rank 0 prints results.
    loom::MappedFile::map_by_default(true);
    if (loom::process_rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) {
      return fail_with(6, "error: cannot redirect the output of a rank other than 0");
    }
  }
  const int rc = run(argc, argv);
  loom::finalize_process_group();
  return rc;
}

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "loom: run and serve large AI models (GGUF files, Hugging Face folders and Hub names)"};
  app.name("loom");
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    return fmt::format("loom 0.1.0 ({}; {} {})", loom::backend_build_info(),
#if defined(__clang__)
                       "clang", __clang_version__
#else
                       "gcc", __VERSION__
#endif
    );
  });
  bool quiet = false;
  app.add_flag("--quiet", quiet, "no progress output (downloads, conversion, loading)");
  int pp = 1, tp = 0;
  app.add_option("--pp", pp,
                 "under mpirun: pipeline stages, the layers split between them (default 1)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--tp", tp,
                 "under mpirun: tensor-parallel ranks per stage (default: the ranks / --pp)")
      ->check(CLI::Range(1, 4096));
  app.fallthrough();  // --quiet after the subcommand too

  const std::vector<loom::cli::Command> commands = {
      loom::cli::add_inspect(app),       loom::cli::add_run(app),
      loom::cli::add_logits(app),        loom::cli::add_convert(app),
      loom::cli::add_synth(app),         loom::cli::add_bench(app),
      loom::cli::add_serve(app),         loom::cli::add_tokenize(app),
      loom::cli::add_detokenize(app),    loom::cli::add_chat_template(app),
      loom::cli::add_embed(app),         loom::cli::add_embed_image(app),
      loom::cli::add_grammar_bench(app), loom::cli::add_guard_check(app),
      loom::cli::add_perplexity(app),    loom::cli::add_pull(app),
      loom::cli::add_chat(app),
  };
  if (argc == 1) {  // `loom` alone: what it can do, one line per subcommand
    fmt::print("{}", app.help());
    return 0;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  loom::Progress::set_quiet_all(quiet || loom::process_rank() != 0);
  if ((pp > 1 || tp > 1) && loom::process_world() == 1) {
    return fail_with(2, "error: --pp and --tp split a model over the ranks of mpirun -np N");
  }
  if (tp > 0 && tp * pp != loom::process_world()) {
    return fail_with(2, fmt::format("error: --tp {} x --pp {} is not the {} ranks mpirun started",
                                    tp, pp, loom::process_world()));
  }
  loom::set_pipeline_stages(pp);
  try {
    for (const loom::cli::Command& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return 2;
  } catch (const loom::Error& e) {
    return fail_with(exit_code_for(e.code()), fmt::format("error: {}", e.what()));
  } catch (const std::bad_alloc&) {
    return fail_with(1, "error: out of memory");
  } catch (const std::exception& e) {
    return fail_with(1, fmt::format("internal error: {}", e.what()));
  }
}

}  // namespace
