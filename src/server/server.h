// loom's OpenAI-compatible HTTP server. One Asio thread serves every connection asynchronously
// (Boost.Beast), so many streaming clients need no thread each; generation runs on the
// scheduler's thread, which hands tokens back to the connection through its executor.
//
// Endpoints: GET /health (always open), GET /metrics (Prometheus text), GET /v1/models,
// POST /v1/completions, POST /v1/chat/completions. With an API key, every endpoint but /health
// wants "Authorization: Bearer KEY" (compared in constant time) and answers 401 otherwise.
// Overload answers 429 with Retry-After; while shutting down 503. A client that disconnects
// has its sequences cancelled and KV blocks freed at once.
// An encoder model (bert) serves POST /v1/embeddings instead of generation (server/embeddings.h).
// Thread-safety: run() blocks; stop() may be called from any thread or a signal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "app/loaded_model.h"
#include "engine/scheduler.h"

namespace loom::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string api_key;  // empty: no authentication
  uint64_t max_body_bytes = 8u << 20;
  std::string model_id;                // the name /v1/models reports and requests may use
  double shutdown_grace_seconds = 30;  // SIGTERM: finish running work for this long, then cancel
  // Limits per connection (see connection.h).
  int64_t max_connections = 1024;
  double read_timeout_seconds = 30;           // headers + body of one request, from its first byte
  double idle_timeout_seconds = 60;           // an idle keep-alive connection
  double write_timeout_seconds = 30;          // each write must make progress within this
  size_t max_outbox_bytes = size_t{4} << 20;  // a streaming client this far behind is dropped
  int worker_threads = 2;                     // parsing, templating, tokenizing, embeddings
  // The degeneration guard of requests that do not choose one (`degeneration.action`).
  GuardAction guard = GuardAction::kStop;
};

class Server {
 public:
  Server(const app::LoadedModel& model, Scheduler& scheduler, ServerOptions options);
  // An encoder model (model.encoder set): POST /v1/embeddings, no generation, no scheduler.
  Server(const app::LoadedModel& model, ServerOptions options);
  ~Server();
  // Binds and serves until SIGTERM/SIGINT or stop(). Throws kIoError naming the address when it
  // cannot bind. Returns the process exit code.
  int run();
  void stop();

  struct Impl;  // the Asio state; public so the connection code in server.cpp can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom::server
