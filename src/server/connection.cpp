// One client connection: reading requests under deadlines, writing whole and streamed
// responses under a write timeout and a bounded outbox, and noticing a client that leaves.
#include "server/connection.h"

#include <fmt/format.h>

#include "core/error.h"
#include "server/generation.h"
#include "server/openai_api.h"

namespace loom::server {

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

}  // namespace

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

std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void reply_with_error(Connection& c, const Error& e) {
  std::string message = e.what();
  // Request errors start with the parameter they name: "'max_tokens': ...".
  std::optional<std::string> param;
  if (message.size() > 2 && message[0] == '\'') {
    if (size_t end = message.find('\'', 1); end != std::string::npos && end > 1) {
      param = message.substr(1, end - 1);
    }
  }
  if (e.code() == ErrorCode::kNotFound && param == "model") {
    c.reply_error(http::status::not_found, message, "invalid_request_error", param,
                  "model_not_found");
    return;
  }
  switch (e.code()) {
    case ErrorCode::kOutOfRange:
      c.reply_error(http::status::bad_request, message, "invalid_request_error", param,
                    "context_length_exceeded");
      return;
    case ErrorCode::kUnsupported:
      c.reply_error(http::status::bad_request, message, "invalid_request_error", param,
                    "unsupported_parameter");
      return;
    case ErrorCode::kNotFound:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kCorruption:
      c.reply_error(http::status::bad_request, message, "invalid_request_error", param);
      return;
    case ErrorCode::kIoError:
    case ErrorCode::kInternal:
      c.reply_error(http::status::internal_server_error, message, "server_error");
      return;
  }
  c.reply_error(http::status::internal_server_error, message, "server_error");
}

Connection::Connection(tcp::socket socket, ServerState& state)
    : stream_(std::move(socket)), state_(state) {
  ++state_.connections;
}

Connection::~Connection() {
  --state_.connections;
}

void Connection::start() {
  wait_for_request();
}

void Connection::wait_for_request() {
  // The first byte of the next request may take idle_timeout; then the request as a whole
  // must arrive within read_timeout. Bytes already buffered (pipelining) start it at once.
  if (buffer_.size() > 0) {
    read_request();
    return;
  }
  probe_pending_ = true;
  stream_.expires_after(seconds(state_.options.idle_timeout_seconds));
  stream_.async_read_some(buffer_.prepare(4096),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->probe_pending_ = false;
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->buffer_.commit(n);
                            self->read_request();
                          });
}

void Connection::read_request() {
  parser_.emplace();
  parser_->body_limit(state_.options.max_body_bytes);
  parser_->header_limit(64 * 1024);
  stream_.expires_after(seconds(state_.options.read_timeout_seconds));
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void Connection::on_read(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
    close();
    return;
  }
  if (ec == beast::error::timeout) {
    // A request that started but did not finish in time (slowloris): say so, then close.
    close_after_write_ = true;
    stream_.expires_after(seconds(state_.options.write_timeout_seconds));
    reply_error(http::status::request_timeout,
                fmt::format("the request did not arrive within {:.0f} s",
                            state_.options.read_timeout_seconds),
                "invalid_request_error", std::nullopt, "request_timeout");
    return;
  }
  if (ec == http::error::body_limit) {
    close_after_write_ = true;
    reply_error(
        http::status::payload_too_large,
        fmt::format("the request body exceeds the {}-byte limit", state_.options.max_body_bytes),
        "invalid_request_error", std::nullopt, "request_too_large");
    return;
  }
  if (ec == http::error::header_limit) {
    close_after_write_ = true;
    reply_error(http::status::request_header_fields_too_large, "the request headers are too large",
                "invalid_request_error");
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
  endpoint_name_ = "other";
  try {
    route(shared_from_this());
  } catch (const Error& e) {
    reply_with_error(*this, e);
  } catch (const std::exception& e) {
    reply_error(http::status::internal_server_error, e.what(), "server_error");
  }
}

void Connection::attach(std::shared_ptr<Generation> g) {
  generation_ = std::move(g);
  watch_for_disconnect();
}

void Connection::detach() {
  generation_.reset();
}

void Connection::watch_for_disconnect() {
  // While generating, the client sends nothing; a completed read means it closed (or broke)
  // the connection, and its sequences are cancelled at once. The bytes go into the parse
  // buffer: on a keep-alive connection they are the start of the client's next request.
  if (probe_pending_ || closed_) return;
  probe_pending_ = true;
  stream_.socket().async_read_some(buffer_.prepare(4096),
                                   [self = shared_from_this()](beast::error_code ec, size_t n) {
                                     self->probe_pending_ = false;
                                     if (ec) {
                                       if (self->generation_) self->generation_->cancel();
                                       self->close();
                                       return;
                                     }
                                     self->buffer_.commit(n);
                                     // Data, not a disconnect: a pipelined next request. Stop
                                     // watching (the bytes wait in the buffer); it is parsed once
                                     // the current response is out.
                                     if (self->resume_read_) {
                                       self->resume_read_ = false;
                                       self->wait_for_request();
                                     }
                                   });
}

void Connection::reply(http::status status, std::string body, const char* content_type,
                       std::optional<int> retry_after,
                       std::initializer_list<std::pair<const char*, const char*>> extra) {
  if (closed_) return;
  http::response<http::string_body> res{status, req_.version() ? req_.version() : 11};
  res.set(http::field::server, "loom");
  res.set(http::field::content_type, content_type);
  if (retry_after) res.set(http::field::retry_after, std::to_string(*retry_after));
  for (const auto& [field, value] : extra) res.set(field, value);
  const bool keep = !close_after_write_ && req_.keep_alive() && !state_.draining;
  res.keep_alive(keep);
  res.body() = std::move(body);
  res.prepare_payload();
  state_.metrics.count_request(endpoint_name_, static_cast<int>(status));
  auto sp = std::make_shared<http::response<http::string_body>>(std::move(res));
  stream_.expires_after(seconds(state_.options.write_timeout_seconds));
  http::async_write(stream_, *sp,
                    [self = shared_from_this(), sp, keep](beast::error_code ec, size_t) {
                      self->stream_.expires_never();
                      self->finish_exchange(keep && !ec);
                    });
}

void Connection::finish_exchange(bool keep_alive) {
  detach();
  if (!keep_alive) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    // Let the client read the answer and close; a read that ends (or times out) closes ours.
    if (!probe_pending_) {
      probe_pending_ = true;
      stream_.expires_after(std::chrono::seconds(5));
      stream_.async_read_some(buffer_.prepare(4096),
                              [self = shared_from_this()](beast::error_code, size_t) {
                                self->probe_pending_ = false;
                                self->close();
                              });
    }
    return;
  }
  req_ = {};
  // One read at a time on the socket: if the disconnect watch is still reading, it starts the
  // next request's parse when it completes.
  if (probe_pending_) {
    resume_read_ = true;
  } else {
    wait_for_request();
  }
}

void Connection::reply_error(http::status status, const std::string& message,
                             const std::string& type, std::optional<std::string> param,
                             std::optional<std::string> code) {
  std::optional<int> retry;
  if (status == http::status::too_many_requests || status == http::status::service_unavailable) {
    retry = 1;
  }
  reply(status, error_body(message, type, param, code), "application/json", retry);
}

void Connection::stream_begin() {
  streaming_ = true;
  close_after_write_ = true;
  // The kernel's send buffer is part of what a slow reader can make us hold: bounded too
  // (autotuning would let it grow to several MiB per client).
  beast::error_code ignored;
  stream_.socket().set_option(asio::socket_base::send_buffer_size(256 * 1024), ignored);
  stream_send(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n");
}

bool Connection::stream_send(std::string data) {
  if (closed_) return false;
  outbox_bytes_ += data.size();
  outbox_.push_back(std::move(data));
  if (outbox_bytes_ > state_.options.max_outbox_bytes) {
    // The client reads slower than we generate, or not at all: drop it rather than buffer
    // without end (its request is cancelled by the caller, freeing its KV).
    close();
    return false;
  }
  flush();
  return true;
}

void Connection::stream_end() {
  state_.metrics.count_request(endpoint_name_, 200);
  detach();
  flush();
}

void Connection::flush() {
  if (writing_ || closed_) return;
  if (outbox_.empty()) {
    if (streaming_ && close_after_write_ && !generation_) close();
    return;
  }
  writing_ = true;
  stream_.expires_after(seconds(state_.options.write_timeout_seconds));
  asio::async_write(stream_, asio::buffer(outbox_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->writing_ = false;
                      if (ec || self->closed_) {
                        // Timed out (a client that stopped reading), broken, or closed while
                        // this write was in flight (its buffer was kept until now).
                        if (self->generation_) self->generation_->cancel();
                        self->outbox_.clear();
                        self->outbox_bytes_ = 0;
                        self->close();
                        return;
                      }
                      self->stream_.expires_never();
                      self->outbox_bytes_ -= self->outbox_.front().size();
                      self->outbox_.pop_front();
                      self->flush();
                    });
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (!writing_) {  // a write in flight still reads outbox_.front(); its handler clears it
    outbox_.clear();
    outbox_bytes_ = 0;
  }
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  // The generation (if any) keeps this object alive until its last event; it sees closed().
}

}  // namespace loom::server
