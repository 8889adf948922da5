// loom serve -m MODEL [--host 127.0.0.1] [--port 8080] [--api-key KEY | --api-key-file F]
//            [--parallel N] [--ctx N] [--kv-type f16|bf16|f32|q8_0] [--kv-memory BYTES |
//            --memory-utilization F] [--max-queue N] [--max-connections N] [-t THREADS]
//            [--spec ngram [--spec-corpus FILE] | --draft DRAFT_MODEL] [--draft-n K]
//            [--spec-max-batch N]
// Speculative decoding per sequence (engine/scheduler.h): the same tokens as plain decoding
// under greedy sampling, the model's distribution otherwise; it pays while few sequences
// decode (--spec-max-batch) and the step is bound by reading the weights.
#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <optional>

#include "app/drafting.h"
#include "app/kv_plan.h"
#include "app/loaded_model.h"
#include "backend/process_group.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/system_memory.h"
#include "engine/model_group.h"
#include "engine/scheduler.h"
#include "server/server.h"

namespace loom::cli {

namespace {

struct ServeArgs {
  std::string model, host = "127.0.0.1", api_key, api_key_file, kv_memory, model_id;
  std::string kv_type = "f16";
  double memory_utilization = 0.9;
  int port = 8080;
  int64_t parallel = 16, ctx = 0, max_queue = 256, step_tokens = 512, max_connections = 1024;
  double read_timeout = 30, idle_timeout = 60, write_timeout = 30;
  int threads = 0, http_workers = 2;
  std::string device = "cpu";
  std::string guard = "stop";
  uint64_t max_body = 8u << 20, max_outbox = 4u << 20;
  app::DraftArgs drafting;
  int64_t spec_max_batch = 4;
};

DType parse_kv_type(const std::string& s) {
  if (s == "f16") return DType::kF16;
  if (s == "bf16") return DType::kBF16;
  if (s == "f32") return DType::kF32;
  if (s == "q8_0") return DType::kQ8_0;
  fail(ErrorCode::kInvalidArgument, "--kv-type {}: expected f16, bf16, f32 or q8_0", s);
}

server::ServerOptions server_options(const ServeArgs& a, const std::string& key,
                                     const app::LoadedModel& m) {
  server::ServerOptions o;
  o.host = a.host;
  o.port = static_cast<uint16_t>(a.port);
  o.api_key = key;
  o.max_body_bytes = a.max_body;
  o.model_id = a.model_id.empty() ? m.spec.name : a.model_id;
  o.max_connections = a.max_connections;
  o.read_timeout_seconds = a.read_timeout;
  o.idle_timeout_seconds = a.idle_timeout;
  o.write_timeout_seconds = a.write_timeout;
  o.worker_threads = a.http_workers;
  o.max_outbox_bytes = a.max_outbox;
  o.guard = parse_guard_action(a.guard);
  return o;
}

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
                                       /*batch_invariant=*/true, a.device);
  if (m.encoder && process_world() > 1) {
    fail(ErrorCode::kUnsupported,
         "{}: an encoder is not split over ranks; serve it from one process, without mpirun",
         a.model);
  }
  if (m.encoder) {
    // Encoders keep no KV cache and need no scheduler: /v1/embeddings runs each request.
    fmt::print(stderr, "loom serve: {} encoder, /v1/embeddings\n", m.spec.architecture);
    server::Server server(m, server_options(a, key, m));
    return server.run();
  }
  // Under mpirun rank 0 serves and drives the others' shards (engine/model_group.h).
  const std::shared_ptr<Communicator> group = process_group();
  if (group && a.drafting.any()) {
    fail(ErrorCode::kUnsupported,
         "speculative decoding (--spec, --draft) does not run under mpirun");
  }
  if (group && group->rank() != 0) {
    // The group stops when rank 0 does (mpirun passes SIGINT/SIGTERM to every rank).
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    follow_group_leader(*m.model, *group);
    return 0;
  }
  std::optional<GroupLeader> leader;
  if (group) leader.emplace(*m.model, *group);
  CausalLM& model = leader ? static_cast<CausalLM&>(*leader) : *m.model;
  const ModelInfo& info = m.model->info();
  const DType kv_type = parse_kv_type(a.kv_type);
  app::KvPlanInput in;
  in.bytes_per_token = m.model->kv_bytes_per_token(kv_type);
  in.kv_type = kv_type;
  in.model_context = info.context_length;
  in.requested_context = a.ctx;
  in.explicit_kv_bytes = a.kv_memory.empty() ? 0 : parse_bytes(a.kv_memory);
  in.memory_utilization = a.memory_utilization;
  const SystemMemory mem = read_system_memory();
  in.memory_total = mem.total;
  in.memory_available = mem.available;
  // What the backend holds for the model's weights (Backend::prepare_weight's accounting).
  in.weight_bytes = m.model->backend().weight_bytes();
  in.block_size = 16;
  in.parallel = a.parallel;
  const int64_t max_context = a.ctx > 0 ? a.ctx : info.context_length;
  in.reserve_bytes =
      app::serving_reserve_bytes(info.hidden_size, m.spec.hparams.ffn_size, info.vocab_size,
                                 a.step_tokens, a.parallel, max_context, m.spec.hparams.n_heads);
  // A draft model's weights, and the float32 KV caches of its drafters (at most
  // spec_max_batch of them, each for a whole context), come out of the same memory.
  const app::Drafting drafting = app::make_drafting(a.drafting, m, a.threads, max_context);
  if (drafting.draft_model) {
    const CausalLM& draft = *drafting.draft_model->model;
    in.weight_bytes += drafting.draft_model->model->backend().weight_bytes();
    in.reserve_bytes += draft.kv_bytes_per_token(DType::kF32) *
                        static_cast<uint64_t>(std::min(max_context, draft.info().context_length)) *
                        static_cast<uint64_t>(std::min(a.spec_max_batch, a.parallel));
  }
  const app::KvPlan plan = app::plan_kv_cache(in);
  SchedulerOptions so;
  so.max_running = a.parallel;
  so.max_queue = a.max_queue;
  so.block_size = in.block_size;
  so.context = plan.context;
  so.step_tokens = a.step_tokens;
  so.eos_ids = m.eos_ids();
  so.kv_blocks = plan.n_blocks;
  so.kv_type = kv_type;
  so.make_drafter = drafting.factory;
  so.max_draft = a.drafting.draft_n;
  so.spec_max_batch = a.spec_max_batch;
  Scheduler scheduler(model, m.tokenizer ? &*m.tokenizer : nullptr, so);
  const server::ServerOptions o = server_options(a, key, m);
  fmt::print(stderr, "loom serve: {}; {} parallel{}\n", plan.summary, so.max_running,
             !so.make_drafter ? ""
             : drafting.draft_model
                 ? fmt::format("; speculative decoding with {} while at most {} decode",
                               a.drafting.draft, so.spec_max_batch)
                 : fmt::format("; speculative decoding with prompt lookup while at most {} decode",
                               so.spec_max_batch));
  server::Server server(m, scheduler, o);
  const int rc = server.run();
  scheduler.shutdown(false);
  if (leader) leader->stop();
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
  cmd->add_option("--ctx", a->ctx,
                  "context per request (default: the model's, lowered to what the KV cache holds)");
  cmd->add_option("--kv-type", a->kv_type, "KV-cache element type: f16 (default), bf16, f32, q8_0");
  auto* kvm =
      cmd->add_option("--kv-memory", a->kv_memory,
                      "KV-cache size, e.g. 512M or 2G (default: from --memory-utilization)");
  cmd->add_option("--memory-utilization", a->memory_utilization,
                  "share of the machine's memory loom may use for weights + KV (default 0.9)")
      ->excludes(kvm);
  cmd->add_option("--max-queue", a->max_queue, "waiting requests before 429 (default 256)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--step-tokens", a->step_tokens, "rows per forward pass (default 512)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--max-body", a->max_body, "largest request body in bytes (default 8 MiB)");
  cmd->add_option("--model-id", a->model_id, "model name reported by /v1/models");
  cmd->add_option("--max-connections", a->max_connections,
                  "open connections beyond which new ones get 503 (default 1024)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--read-timeout", a->read_timeout,
                  "seconds a request's headers and body may take to arrive (default 30)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--idle-timeout", a->idle_timeout,
                  "seconds an idle keep-alive connection stays open (default 60)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--write-timeout", a->write_timeout,
                  "seconds a write to a client may stall before it is dropped (default 30)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-outbox", a->max_outbox,
                  "bytes a streaming client may fall behind before it is dropped (default 4 MiB)")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 34));
  cmd->add_option("--http-workers", a->http_workers,
                  "threads for request parsing, templating and tokenizing (default 2)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--guard", a->guard,
                  "degeneration guard of requests that do not set `degeneration.action`: stop "
                  "(end a looping generation, finish_reason \"repetition\"; the default), "
                  "penalize (DRY penalty) or off")
      ->check(CLI::IsMember({"stop", "penalize", "off"}));
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  add_draft_options(*cmd, a->drafting);
  cmd->add_option("--spec-max-batch", a->spec_max_batch,
                  "with --spec or --draft: speculate while at most this many sequences decode "
                  "(default 4)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  return {cmd, [a] { return run_serve(*a); }};
}

}  // namespace loom::cli
