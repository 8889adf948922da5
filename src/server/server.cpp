#include "server/server.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>

#include "core/error.h"
#include "server/embeddings.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace loom::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Compares every byte of the expected key whatever the input, so timing reveals nothing but
  // the length check.
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ b[i]);
  }
  return diff == 0;
}

std::string random_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  const uint64_t t = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  return fmt::format("{}-{:x}{:04x}", prefix, t, counter++ & 0xFFFF);
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

struct Server::Impl {
  Impl(const app::LoadedModel& m, Scheduler* s, ServerOptions o)
      : model(m),
        scheduler(s),
        options(std::move(o)),
        acceptor(ioc),
        signals(ioc, SIGINT, SIGTERM) {}

  const app::LoadedModel& model;
  Scheduler* scheduler;  // null when serving an encoder (embeddings only)
  ServerOptions options;
  Metrics metrics;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  asio::signal_set signals;
  std::atomic<bool> draining{false};
  std::thread shutdown_thread;

  void accept();
  void begin_shutdown();
};

namespace {

class Session;

// Receives one choice's events on the scheduler thread and hands them to the session.
class ChoiceSink : public RequestSink {
 public:
  ChoiceSink(std::shared_ptr<Session> session, int index)
      : session_(std::move(session)), index_(index) {}
  void on_token(const TokenEvent& e) override;
  void on_finish(const FinishEvent& e) override;

 private:
  std::shared_ptr<Session> session_;
  int index_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server) : stream_(std::move(socket)), srv_(server) {}

  void start() { read_request(); }

  // Called on the session's executor.
  void on_token(int index, TokenEvent e);
  void on_finish(int index, FinishEvent e);
  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void read_request();
  void on_read(beast::error_code ec);
  void handle();
  void reply(http::status status, std::string body, const char* content_type = "application/json",
             std::optional<int> retry_after = std::nullopt);
  void reply_error(http::status status, const std::string& message, const std::string& type,
                   std::optional<std::string> param = std::nullopt,
                   std::optional<std::string> code = std::nullopt);
  void start_generation(Endpoint endpoint);
  void watch_for_disconnect();
  void cancel_all();
  void send(std::string data);
  void flush();
  void finish_stream();
  void write_final_response();
  Json chunk_base() const;

  beast::tcp_stream stream_;
  Server::Impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  std::string endpoint_name_ = "other";

  // Generation state.
  ApiRequest api_;
  std::vector<std::shared_ptr<RequestHandle>> handles_;
  std::vector<ChoiceResult> choices_;
  Usage usage_;
  int finished_ = 0;
  bool streaming_ = false;
  bool closed_ = false;
  bool any_token_ = false;
  std::string id_;
  int64_t created_ = 0;
  Clock::time_point t_start_, t_last_token_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool probe_pending_ = false;  // a disconnect-watch read is outstanding
  bool resume_read_ = false;    // read the next request when that read completes
};

void ChoiceSink::on_token(const TokenEvent& e) {
  asio::post(session_->executor(), [s = session_, i = index_, e] { s->on_token(i, e); });
}

void ChoiceSink::on_finish(const FinishEvent& e) {
  asio::post(session_->executor(), [s = session_, i = index_, e] { s->on_finish(i, e); });
}

void Session::read_request() {
  parser_.emplace();
  parser_->body_limit(srv_.options.max_body_bytes);
  parser_->header_limit(64 * 1024);
  stream_.expires_after(std::chrono::minutes(5));  // idle keep-alive connections go away
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void Session::on_read(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
      ec == asio::error::connection_reset) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return;
  }
  if (ec == http::error::body_limit) {
    close_after_write_ = true;
    reply_error(
        http::status::bad_request,
        fmt::format("the request body exceeds the {}-byte limit", srv_.options.max_body_bytes),
        "invalid_request_error", std::nullopt, "request_too_large");
    return;
  }
  if (ec) {
    close_after_write_ = true;
    reply_error(http::status::bad_request, fmt::format("malformed HTTP request: {}", ec.message()),
                "invalid_request_error");
    return;
  }
  stream_.expires_never();
  req_ = parser_->release();
  t_start_ = Clock::now();
  try {
    handle();
  } catch (const Error& e) {
    const bool too_long = e.code() == ErrorCode::kOutOfRange;
    reply_error(http::status::bad_request, e.what(), "invalid_request_error", std::nullopt,
                too_long ? std::optional<std::string>("context_length_exceeded") : std::nullopt);
  } catch (const std::exception& e) {
    reply_error(http::status::internal_server_error, e.what(), "server_error");
  }
}

void Session::handle() {
  const std::string target(req_.target());
  const std::string path = target.substr(0, target.find('?'));
  if (path == "/health") {
    endpoint_name_ = "health";
    reply(srv_.draining ? http::status::service_unavailable : http::status::ok,
          srv_.draining ? R"({"status":"shutting_down"})" : R"({"status":"ok"})");
    return;
  }
  if (!srv_.options.api_key.empty()) {
    const auto auth = req_[http::field::authorization];
    const std::string given(auth.begin(), auth.end());
    if (!constant_time_equal(given, "Bearer " + srv_.options.api_key)) {
      endpoint_name_ = "unauthorized";
      reply_error(http::status::unauthorized,
                  "missing or incorrect API key (send Authorization: Bearer KEY)",
                  "invalid_request_error", std::nullopt, "invalid_api_key");
      return;
    }
  }
  if (path == "/metrics" && req_.method() == http::verb::get) {
    endpoint_name_ = "metrics";
    reply(http::status::ok,
          srv_.metrics.render(srv_.scheduler ? srv_.scheduler->stats() : SchedulerStats{}),
          "text/plain; version=0.0.4; charset=utf-8");
    return;
  }
  if (path == "/v1/models" && req_.method() == http::verb::get) {
    endpoint_name_ = "models";
    Json m = {{"id", srv_.options.model_id},
              {"object", "model"},
              {"created", unix_now()},
              {"owned_by", "loom"},
              {"max_model_len", srv_.scheduler ? srv_.scheduler->options().context
                                               : srv_.model.encoder->info().max_tokens}};
    reply(http::status::ok, dump(Json{{"object", "list"}, {"data", Json::array({m})}}));
    return;
  }
  if (path == "/v1/embeddings") {
    endpoint_name_ = "embeddings";
    if (req_.method() != http::verb::post) {
      reply_error(http::status::method_not_allowed, "use POST", "invalid_request_error");
      return;
    }
    // Runs synchronously on the connection thread for now: one encoder forward pass per
    // request, no scheduler (encoders keep no KV cache). Large batches would stall other
    // connections; a worker queue is the next step.
    reply(http::status::ok, embeddings_response(srv_.model, req_.body(), srv_.options.model_id));
    return;
  }
  if (!srv_.scheduler && (path == "/v1/completions" || path == "/v1/chat/completions")) {
    fail(ErrorCode::kUnsupported, "the model is an encoder: it serves /v1/embeddings only");
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    endpoint_name_ = path == "/v1/completions" ? "completions" : "chat_completions";
    if (req_.method() != http::verb::post) {
      reply_error(http::status::method_not_allowed, "use POST", "invalid_request_error");
      return;
    }
    if (srv_.draining) {
      reply_error(http::status::service_unavailable, "the server is shutting down", "server_error",
                  std::nullopt, "shutting_down");
      return;
    }
    start_generation(path == "/v1/completions" ? Endpoint::kCompletions
                                               : Endpoint::kChatCompletions);
    return;
  }
  reply_error(http::status::not_found,
              fmt::format("no route for {} {}", std::string(req_.method_string()), path),
              "invalid_request_error", std::nullopt, "not_found");
}

void Session::start_generation(Endpoint endpoint) {
  const int64_t ctx = srv_.scheduler->options().context;
  api_ = parse_request(endpoint, req_.body(), ctx);
  if (!api_.model.empty() && api_.model != srv_.options.model_id) {
    reply_error(http::status::not_found,
                fmt::format("the model '{}' does not exist (this server has '{}')", api_.model,
                            srv_.options.model_id),
                "invalid_request_error", "model", "model_not_found");
    return;
  }
  std::vector<int32_t> prompt;
  if (endpoint == Endpoint::kCompletions) {
    if (api_.prompt_text) {
      prompt =
          srv_.model.require_tokenizer().encode(*api_.prompt_text, /*add_special_tokens=*/true);
    } else {
      prompt = api_.prompt_ids;
    }
  } else {
    const std::string rendered = app::render_chat(srv_.model, api_.messages, true);
    prompt = srv_.model.require_tokenizer().encode(rendered, /*add_special_tokens=*/false);
  }
  if (prompt.empty()) throw Error(ErrorCode::kInvalidArgument, "'prompt': the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) + api_.params.max_tokens > ctx) {
    // OpenAI's wording: the client can shorten the prompt or lower max_tokens.
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("this model's maximum context length is {} tokens; the prompt has {} "
                            "tokens and max_tokens is {}",
                            ctx, prompt.size(), api_.params.max_tokens));
  }
  api_.params.prompt = prompt;
  id_ = random_id(endpoint == Endpoint::kCompletions ? "cmpl" : "chatcmpl");
  created_ = unix_now();
  choices_.assign(api_.n, {});
  usage_.prompt_tokens = static_cast<int64_t>(prompt.size());
  for (int i = 0; i < api_.n; ++i) {
    RequestParams p = api_.params;
    if (api_.seed) p.sampling.seed = *api_.seed + static_cast<uint64_t>(i);
    auto handle = std::make_shared<RequestHandle>();
    auto status = srv_.scheduler->submit(
        std::move(p), std::make_shared<ChoiceSink>(shared_from_this(), i), handle);
    if (status != Scheduler::SubmitStatus::kAccepted) {
      cancel_all();
      handles_.clear();
      if (status == Scheduler::SubmitStatus::kQueueFull) {
        reply_error(http::status::too_many_requests, "the server is busy; retry shortly",
                    "rate_limit_error", std::nullopt, "rate_limit_exceeded");
      } else {
        reply_error(http::status::service_unavailable, "the server is shutting down",
                    "server_error", std::nullopt, "shutting_down");
      }
      return;
    }
    handles_.push_back(handle);
  }
  srv_.metrics.add_tokens(usage_.prompt_tokens * api_.n, 0);
  if (api_.stream) {
    streaming_ = true;
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n";
    send(std::move(head));
    if (endpoint == Endpoint::kChatCompletions) {
      for (int i = 0; i < api_.n; ++i) {
        Json c = chunk_base();
        c["choices"] = Json::array({{{"index", i},
                                     {"delta", {{"role", "assistant"}, {"content", ""}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", nullptr}}});
        send("data: " + dump(c) + "\n\n");
      }
    }
  }
  watch_for_disconnect();
}

Json Session::chunk_base() const {
  Json c;
  c["id"] = id_;
  c["object"] =
      api_.endpoint == Endpoint::kCompletions ? "text_completion" : "chat.completion.chunk";
  c["created"] = created_;
  c["model"] = srv_.options.model_id;
  return c;
}

void Session::watch_for_disconnect() {
  // While generating, the client sends nothing; a completed read means it closed (or broke)
  // the connection, and its sequences are cancelled at once. The bytes go into the parse
  // buffer: on a keep-alive connection they are the start of the client's next request.
  probe_pending_ = true;
  stream_.socket().async_read_some(
      buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
        self->probe_pending_ = false;
        if (!ec) self->buffer_.commit(n);
        const bool generating = self->finished_ < static_cast<int>(self->choices_.size());
        if (ec) {
          self->closed_ = true;
          if (generating) self->cancel_all();
          beast::error_code ignored;
          self->stream_.socket().close(ignored);
          return;
        }
        // Data, not a disconnect: a pipelined next request. Stop watching; it is parsed once
        // the current response is out.
        if (!generating && self->resume_read_) {
          self->resume_read_ = false;
          self->read_request();
        }
      });
}

void Session::cancel_all() {
  for (auto& h : handles_) h->cancelled = true;
  if (srv_.scheduler) srv_.scheduler->wake();
}

std::string token_text(const app::LoadedModel& m, int32_t id) {
  if (!m.tokenizer) return std::to_string(id);
  const int32_t ids[1] = {id};
  return m.tokenizer->decode(ids, false);
}

void Session::on_token(int index, TokenEvent e) {
  if (closed_) return;
  const auto now = Clock::now();
  if (!any_token_) {
    srv_.metrics.ttft.observe(std::chrono::duration<double>(now - t_start_).count());
    any_token_ = true;
  } else if (e.token >= 0) {
    srv_.metrics.inter_token.observe(std::chrono::duration<double>(now - t_last_token_).count());
  }
  if (e.token >= 0) t_last_token_ = now;
  ChoiceResult& c = choices_[index];
  c.text += e.text;
  if (e.token >= 0) {
    c.ids.push_back(e.token);
    if (api_.logprobs) {
      c.logprobs.push_back(e.logprob);
      c.top_logprobs.push_back(e.top_logprobs);
    }
  }
  if (!streaming_ || (e.text.empty() && !(api_.logprobs && e.token >= 0))) return;
  Json c2 = chunk_base();
  Json choice;
  choice["index"] = index;
  Json lp = nullptr;
  if (api_.logprobs && e.token >= 0) {
    const std::string tok = token_text(srv_.model, e.token);
    if (api_.endpoint == Endpoint::kChatCompletions) {
      Json top = Json::array();
      for (auto& [id, l] : e.top_logprobs) {
        top.push_back({{"token", token_text(srv_.model, id)}, {"logprob", l}});
      }
      lp = {{"content",
             Json::array({{{"token", tok}, {"logprob", e.logprob}, {"top_logprobs", top}}})}};
    } else {
      Json top = Json::object();
      for (auto& [id, l] : e.top_logprobs) top[token_text(srv_.model, id)] = l;
      lp = {
          {"tokens", {tok}}, {"token_logprobs", {e.logprob}}, {"top_logprobs", Json::array({top})}};
    }
  }
  if (api_.endpoint == Endpoint::kChatCompletions) {
    choice["delta"] = {{"content", e.text}};
  } else {
    choice["text"] = e.text;
  }
  choice["logprobs"] = lp;
  choice["finish_reason"] = nullptr;
  c2["choices"] = Json::array({choice});
  send("data: " + dump(c2) + "\n\n");
}

void Session::on_finish(int index, FinishEvent e) {
  ChoiceResult& c = choices_[index];
  c.finish_reason = e.finish_reason == "cancelled" ? "stop" : e.finish_reason;
  if (e.finish_reason == "error") c.finish_reason = "error";
  c.completion_tokens = e.completion_tokens;
  usage_.completion_tokens += e.completion_tokens;
  usage_.cached_tokens = std::max(usage_.cached_tokens, e.cached_prompt_tokens);
  srv_.metrics.add_tokens(0, e.completion_tokens);
  ++finished_;
  if (!closed_ && streaming_) {
    Json c2 = chunk_base();
    Json choice;
    choice["index"] = index;
    if (api_.endpoint == Endpoint::kChatCompletions) {
      choice["delta"] = Json::object();
    } else {
      choice["text"] = "";
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = c.finish_reason;
    c2["choices"] = Json::array({choice});
    send("data: " + dump(c2) + "\n\n");
  }
  if (finished_ < static_cast<int>(choices_.size())) return;
  srv_.metrics.request.observe(std::chrono::duration<double>(Clock::now() - t_start_).count());
  if (closed_) {
    srv_.metrics.count_request(endpoint_name_, 499);  // client closed the request
    return;
  }
  if (streaming_) {
    finish_stream();
  } else {
    write_final_response();
  }
}

void Session::finish_stream() {
  if (api_.include_usage) {
    Json u = chunk_base();
    u["choices"] = Json::array();
    u["usage"] = usage_json(usage_);
    send("data: " + dump(u) + "\n\n");
  }
  send("data: [DONE]\n\n");
  close_after_write_ = true;
  srv_.metrics.count_request(endpoint_name_, 200);
  flush();
}

void Session::write_final_response() {
  Json r;
  r["id"] = id_;
  r["object"] = api_.endpoint == Endpoint::kCompletions ? "text_completion" : "chat.completion";
  r["created"] = created_;
  r["model"] = srv_.options.model_id;
  Json choices = Json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceResult& c = choices_[i];
    Json choice;
    choice["index"] = i;
    Json lp = nullptr;
    if (api_.endpoint == Endpoint::kChatCompletions) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      if (api_.logprobs) {
        Json content = Json::array();
        for (size_t t = 0; t < c.ids.size(); ++t) {
          Json top = Json::array();
          for (auto& [id, l] : c.top_logprobs[t]) {
            top.push_back({{"token", token_text(srv_.model, id)}, {"logprob", l}});
          }
          content.push_back({{"token", token_text(srv_.model, c.ids[t])},
                             {"logprob", c.logprobs[t]},
                             {"top_logprobs", top}});
        }
        lp = {{"content", content}};
      }
    } else {
      std::string text = c.text;
      if (api_.echo && api_.prompt_text) text = *api_.prompt_text + text;
      choice["text"] = text;
      if (api_.logprobs) {
        Json tokens = Json::array(), lps = Json::array(), tops = Json::array(),
             offsets = Json::array();
        size_t offset = api_.echo && api_.prompt_text ? api_.prompt_text->size() : 0;
        for (size_t t = 0; t < c.ids.size(); ++t) {
          const std::string tok = token_text(srv_.model, c.ids[t]);
          tokens.push_back(tok);
          lps.push_back(c.logprobs[t]);
          Json top = Json::object();
          for (auto& [id, l] : c.top_logprobs[t]) top[token_text(srv_.model, id)] = l;
          tops.push_back(top);
          offsets.push_back(offset);
          offset += tok.size();
        }
        lp = {{"tokens", tokens},
              {"token_logprobs", lps},
              {"top_logprobs", tops},
              {"text_offset", offsets}};
      }
    }
    choice["logprobs"] = lp;
    choice["finish_reason"] = c.finish_reason;
    choices.push_back(choice);
  }
  r["choices"] = choices;
  r["usage"] = usage_json(usage_);
  reply(http::status::ok, dump(r));
}

void Session::reply(http::status status, std::string body, const char* content_type,
                    std::optional<int> retry_after) {
  http::response<http::string_body> res{status, req_.version() ? req_.version() : 11};
  res.set(http::field::server, "loom");
  res.set(http::field::content_type, content_type);
  if (retry_after) res.set(http::field::retry_after, std::to_string(*retry_after));
  const bool keep = !close_after_write_ && req_.keep_alive() && !srv_.draining;
  res.keep_alive(keep);
  res.body() = std::move(body);
  res.prepare_payload();
  srv_.metrics.count_request(endpoint_name_, static_cast<int>(status));
  auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
  http::async_write(stream_, *sp,
                    [self = shared_from_this(), sp, keep](beast::error_code ec, size_t) {
                      if (ec || !keep) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        return;
                      }
                      self->req_ = {};
                      self->choices_.clear();
                      self->handles_.clear();
                      self->finished_ = 0;
                      self->any_token_ = false;
                      self->usage_ = {};
                      // One read at a time on the socket: if the disconnect watch is still
                      // reading, it starts the next request's parse when it completes.
                      if (self->probe_pending_) {
                        self->resume_read_ = true;
                      } else {
                        self->read_request();
                      }
                    });
}

void Session::reply_error(http::status status, const std::string& message, const std::string& type,
                          std::optional<std::string> param, std::optional<std::string> code) {
  std::optional<int> retry;
  if (status == http::status::too_many_requests || status == http::status::service_unavailable) {
    retry = 1;
  }
  reply(status, error_body(message, type, param, code), "application/json", retry);
}

void Session::send(std::string data) {
  outbox_.push_back(std::move(data));
  flush();
}

void Session::flush() {
  if (writing_ || closed_) return;
  if (outbox_.empty()) {
    if (close_after_write_) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream_.socket().close(ignored);
    }
    return;
  }
  writing_ = true;
  asio::async_write(stream_.socket(), asio::buffer(outbox_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      self->outbox_.pop_front();
                      if (ec) {
                        self->closed_ = true;
                        self->outbox_.clear();
                        self->cancel_all();
                        return;
                      }
                      self->flush();
                    });
}

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor.is_open()) return;
    if (!ec) std::make_shared<Session>(std::move(socket), *this)->start();
    accept();
  });
}

void Server::Impl::begin_shutdown() {
  if (draining.exchange(true)) return;
  fmt::print(stderr, "loom serve: shutting down (finishing running requests, up to {:.0f} s)\n",
             options.shutdown_grace_seconds);
  beast::error_code ignored;
  acceptor.close(ignored);
  shutdown_thread = std::thread([this] {
    if (scheduler == nullptr) {  // an encoder: requests run synchronously, nothing to drain
      ioc.stop();
      return;
    }
    std::atomic<bool> done{false};
    std::thread grace([&] {
      const auto deadline =
          Clock::now() + std::chrono::duration<double>(options.shutdown_grace_seconds);
      while (!done && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!done) scheduler->request_stop(false);
    });
    scheduler->shutdown(true);
    done = true;
    grace.join();
    // Let the last chunks reach their clients, then stop the event loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ioc.stop();
  });
}

Server::Server(const app::LoadedModel& model, Scheduler& scheduler, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, &scheduler, std::move(options))) {}

Server::Server(const app::LoadedModel& model, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, nullptr, std::move(options))) {}

Server::~Server() {
  if (impl_->shutdown_thread.joinable()) impl_->shutdown_thread.join();
}

int Server::run() {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.options.host, ec);
  if (ec) fail(ErrorCode::kInvalidArgument, "--host {}: not an IP address", s.options.host);
  tcp::endpoint ep(address, s.options.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    fail(ErrorCode::kIoError, "cannot listen on {}:{}: {}", s.options.host, s.options.port,
         ec.message());
  fmt::print(stderr, "loom serve: listening on http://{}:{} (model {})\n", s.options.host,
             s.acceptor.local_endpoint().port(), s.options.model_id);
  s.signals.async_wait([&s](beast::error_code e, int) {
    if (!e) s.begin_shutdown();
  });
  s.accept();
  s.ioc.run();
  if (s.shutdown_thread.joinable()) s.shutdown_thread.join();
  return 0;
}

void Server::stop() {
  asio::post(impl_->ioc, [this] { impl_->begin_shutdown(); });
}

}  // namespace loom::server
