// loom serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY | --api-key-file F]
//            [--parallel N] [--ctx N] [--kv-memory BYTES] [--max-queue N] [-t THREADS]
#include <fmt/format.h>

#include <filesystem>

#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "engine/scheduler.h"
#include "server/server.h"

namespace loom::cli {

namespace {

struct ServeArgs {
  std::string model, host = "127.0.0.1", api_key, api_key_file, kv_memory, model_id;
  int port = 8080;
  int64_t parallel = 16, ctx = 0, max_queue = 256, step_tokens = 512;
  int threads = 0;
  uint64_t max_body = 8u << 20;
};

// "2G", "512M", "1048576" -> bytes.
uint64_t parse_bytes(const std::string& s) {
  if (s.empty()) fail(ErrorCode::kInvalidArgument, "--kv-memory is empty");
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    fail(ErrorCode::kInvalidArgument, "--kv-memory {}: not a size (e.g. 512M, 2G)", s);
  }
  std::string unit = s.substr(used);
  double mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB")
    mult = 1024.0;
  else if (unit == "M" || unit == "m" || unit == "MiB")
    mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "g" || unit == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty() && unit != "B") {
    fail(ErrorCode::kInvalidArgument, "--kv-memory {}: unknown unit '{}'", s, unit);
  }
  if (v <= 0) fail(ErrorCode::kInvalidArgument, "--kv-memory must be positive");
  return static_cast<uint64_t>(v * mult);
}

int run_serve(const ServeArgs& a) {
  std::string key = a.api_key;
  if (!a.api_key_file.empty()) {
    key = read_text_file(a.api_key_file);
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' '))
      key.pop_back();
    if (key.empty())
      fail(ErrorCode::kInvalidArgument, "{}: the API key file is empty", a.api_key_file);
  }
  // Batch-invariant kernels: a request's tokens must not depend on who else is being served.
  app::LoadedModel m = app::load_model(a.model, a.threads, true, /*allow_encoder=*/true,
                                       /*batch_invariant=*/true);
  if (m.encoder) {
    // Encoders keep no KV cache and need no scheduler: /v1/embeddings runs each request.
    server::ServerOptions o;
    o.host = a.host;
    o.port = static_cast<uint16_t>(a.port);
    o.api_key = key;
    o.max_body_bytes = a.max_body;
    o.model_id = a.model_id.empty() ? m.spec.name : a.model_id;
    fmt::print(stderr, "loom serve: {} encoder, /v1/embeddings\n", m.spec.architecture);
    server::Server server(m, o);
    return server.run();
  }
  const ModelInfo& info = m.model->info();
  SchedulerOptions so;
  so.max_running = a.parallel;
  so.max_queue = a.max_queue;
  so.block_size = 16;
  so.context = a.ctx > 0 ? std::min(a.ctx, info.context_length) : info.context_length;
  so.step_tokens = a.step_tokens;
  so.eos_ids = m.eos_ids();
  const uint64_t per_block = static_cast<uint64_t>(2 * info.n_layers * info.n_kv_heads *
                                                   info.head_dim * so.block_size * sizeof(float));
  const uint64_t kv_bytes = a.kv_memory.empty()
                                ? per_block * static_cast<uint64_t>((so.context + 15) / 16) *
                                      static_cast<uint64_t>(std::max<int64_t>(1, a.parallel))
                                : parse_bytes(a.kv_memory);
  so.kv_blocks = static_cast<int64_t>(kv_bytes / per_block);
  if (so.kv_blocks < (so.context + so.block_size - 1) / so.block_size) {
    fail(ErrorCode::kInvalidArgument,
         "--kv-memory {} holds {} blocks of {} tokens, less than one full context of {} tokens "
         "({} bytes needed)",
         a.kv_memory, so.kv_blocks, so.block_size, so.context,
         per_block * static_cast<uint64_t>((so.context + 15) / 16));
  }
  Scheduler scheduler(*m.model, m.tokenizer ? &*m.tokenizer : nullptr, so);
  server::ServerOptions o;
  o.host = a.host;
  o.port = static_cast<uint16_t>(a.port);
  o.api_key = key;
  o.max_body_bytes = a.max_body;
  o.model_id = a.model_id.empty() ? m.spec.name : a.model_id;
  fmt::print(
      stderr,
      "loom serve: {} blocks x {} tokens of KV cache ({:.1f} MiB), {} parallel, context {}\n",
      so.kv_blocks, so.block_size, static_cast<double>(so.kv_blocks * per_block) / (1 << 20),
      so.max_running, so.context);
  server::Server server(m, scheduler, o);
  const int rc = server.run();
  scheduler.shutdown(false);
  return rc;
}

}  // namespace

Command add_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  auto a = std::make_shared<ServeArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_option("--host", a->host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", a->port, "port (default 8080; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  auto* key = cmd->add_option("--api-key", a->api_key, "require Authorization: Bearer KEY");
  cmd->add_option("--api-key-file", a->api_key_file, "read the API key from a file")->excludes(key);
  cmd->add_option("--parallel", a->parallel, "sequences generated at once (default 16)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--ctx", a->ctx, "context per sequence (default: the model's)");
  cmd->add_option("--kv-memory", a->kv_memory,
                  "KV-cache size, e.g. 512M or 2G (default: parallel x ctx)");
  cmd->add_option("--max-queue", a->max_queue, "waiting requests before 429 (default 256)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--step-tokens", a->step_tokens, "rows per forward pass (default 512)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--max-body", a->max_body, "largest request body in bytes (default 8 MiB)");
  cmd->add_option("--model-id", a->model_id, "model name reported by /v1/models");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  return {cmd, [a] { return run_serve(*a); }};
}

}  // namespace loom::cli
