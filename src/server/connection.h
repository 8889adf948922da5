// Internal to loom_server: one client connection (HTTP/1.1 keep-alive) and the state the
// server shares with it. Everything here runs on the server's single I/O thread; CPU work
// (parsing, templating, tokenizing, embeddings) is posted to ServerState::workers and its result
// posted back, so one slow request never stalls the others' I/O.
//
// Limits a hostile client meets (nginx's and Envoy's habits):
//   - idle keep-alive connections close after idle_timeout;
//   - a request's headers and body must arrive within read_timeout of its first byte
//     (slowloris), and the body within max_body_bytes (413 past it);
//   - every write must progress within write_timeout, and a streaming client may fall at most
//     max_outbox_bytes behind: past either, its request is cancelled (KV freed) and it is
//     disconnected;
//   - at most max_connections are open; beyond, new ones get a 503 and are closed.
#pragma once

#include <atomic>
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "app/loaded_model.h"
#include "app/repetition_guard.h"
#include "app/structured_output.h"
#include "engine/scheduler.h"
#include "server/metrics.h"
#include "server/server.h"

namespace loom::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct ServerState {
  ServerState(const app::LoadedModel& m, Scheduler* s, ServerOptions o)
      : model(m),
        scheduler(s),
        options(std::move(o)),
        workers(static_cast<size_t>(std::max(1, options.worker_threads))),
        structured(m.tokenizer ? &*m.tokenizer : nullptr, m.eos_ids()),
        dry_breakers(m.tokenizer ? &*m.tokenizer : nullptr) {}

  const app::LoadedModel& model;
  Scheduler* scheduler;  // null when serving an encoder (embeddings only)
  ServerOptions options;
  Metrics metrics;
  asio::thread_pool workers;  // CPU work per request
  std::mutex encoder_mu;      // the encoder runs one batch at a time
  std::atomic<bool> draining{false};
  std::atomic<int64_t> connections{0};
  app::StructuredOutput structured;   // compiled grammars, shared by requests
  app::DryBreakerCache dry_breakers;  // DRY sequence breakers as token ids
};

class Generation;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, ServerState& state);
  ~Connection();

  void start();

  // --- for the request handlers (routes.cpp, generation.cpp); I/O thread only ---
  const http::request<http::string_body>& request() const { return req_; }
  ServerState& state() { return state_; }
  asio::any_io_executor executor() { return stream_.get_executor(); }
  // A whole response; the connection then reads the next request (keep-alive) or closes.
  // extra: further header fields (the chat page's Content-Security-Policy, ...).
  void reply(http::status status, std::string body, const char* content_type = "application/json",
             std::optional<int> retry_after = std::nullopt,
             std::initializer_list<std::pair<const char*, const char*>> extra = {});
  void reply_error(http::status status, const std::string& message, const std::string& type,
                   std::optional<std::string> param = std::nullopt,
                   std::optional<std::string> code = std::nullopt);
  // A streamed response: the head, chunks, and the end (the connection then closes).
  void stream_begin();
  // false when the client is gone or too far behind (the caller cancels its work).
  bool stream_send(std::string data);
  void stream_end();
  bool closed() const { return closed_; }
  // The metrics label of the request being served.
  void set_endpoint(std::string name) { endpoint_name_ = std::move(name); }
  // While `g` generates, the connection watches for the client going away and tells it.
  void attach(std::shared_ptr<Generation> g);
  void detach();

 private:
  void wait_for_request();
  void read_request();
  void on_read(beast::error_code ec);
  void dispatch();
  void watch_for_disconnect();
  void flush();
  void close();
  void finish_exchange(bool keep_alive);

  beast::tcp_stream stream_;
  ServerState& state_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  std::string endpoint_name_ = "other";
  std::shared_ptr<Generation> generation_;

  std::deque<std::string> outbox_;
  size_t outbox_bytes_ = 0;
  bool writing_ = false;
  bool streaming_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
  bool probe_pending_ = false;  // a read (disconnect watch or idle wait) is outstanding
  bool resume_read_ = false;    // read the next request when that read completes
};

// Routes a parsed request (routes.cpp).
void route(const std::shared_ptr<Connection>& c);

// Helpers shared by the handlers.
std::string random_id(const char* prefix);
int64_t unix_now();
std::string dump(const nlohmann::ordered_json& j);
// Maps a loom::Error from request handling to its HTTP answer.
void reply_with_error(Connection& c, const Error& e);

}  // namespace loom::server
