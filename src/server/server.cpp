// The listening side of loom serve: the accept loop (with the connection cap and a back-off
// when accept fails, e.g. out of descriptors), signals and graceful shutdown. Connections are
// server/connection.cpp, routing server/routes.cpp, generation server/generation.cpp.
#include "server/server.h"

#include <fmt/format.h>

#include <thread>

#include "core/error.h"
#include "server/connection.h"

namespace loom::server {

struct Server::Impl {
  Impl(const app::LoadedModel& m, Scheduler* s, ServerOptions o)
      : state(m, s, std::move(o)), acceptor(ioc), signals(ioc, SIGINT, SIGTERM), backoff(ioc) {}

  ServerState state;
  asio::io_context ioc{1};
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::steady_timer backoff;
  std::thread shutdown_thread;

  void accept();
  void refuse(tcp::socket socket);
  void begin_shutdown();
};

void Server::Impl::refuse(tcp::socket socket) {
  // Over the connection cap: a short 503 and close, without reading the request.
  auto sock = std::make_shared<tcp::socket>(std::move(socket));
  const std::string body =
      R"({"error":{"message":"too many open connections","type":"server_error","param":null,"code":"too_many_connections"}})";
  auto msg = std::make_shared<std::string>(fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: "
      "1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
      body.size(), body));
  state.metrics.count_request("refused", 503);
  asio::async_write(*sock, asio::buffer(*msg), [sock, msg](beast::error_code, size_t) {
    beast::error_code ignored;
    sock->shutdown(tcp::socket::shutdown_both, ignored);
    sock->close(ignored);
  });
}

void Server::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor.is_open()) return;
    if (ec) {
      // EMFILE/ENFILE/ENOBUFS: accepting again at once would spin. Wait, then retry.
      backoff.expires_after(std::chrono::milliseconds(100));
      backoff.async_wait([this](beast::error_code) { accept(); });
      return;
    }
    if (state.connections.load() >= state.options.max_connections) {
      refuse(std::move(socket));
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Connection>(std::move(socket), state)->start();
    }
    accept();
  });
}

void Server::Impl::begin_shutdown() {
  if (state.draining.exchange(true)) return;
  fmt::print(stderr, "loom serve: shutting down (finishing running requests, up to {:.0f} s)\n",
             state.options.shutdown_grace_seconds);
  beast::error_code ignored;
  acceptor.close(ignored);
  backoff.cancel();
  shutdown_thread = std::thread([this] {
    Scheduler* scheduler = state.scheduler;
    if (scheduler != nullptr) {
      std::atomic<bool> done{false};
      std::thread grace([&] {
        const auto deadline =
            Clock::now() + std::chrono::duration<double>(state.options.shutdown_grace_seconds);
        while (!done && Clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!done) scheduler->request_stop(false);
      });
      scheduler->shutdown(true);
      done = true;
      grace.join();
    }
    state.workers.join();
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
  impl_->state.workers.join();
}

int Server::run() {
  Impl& s = *impl_;
  beast::error_code ec;
  const auto address = asio::ip::make_address(s.state.options.host, ec);
  if (ec) fail(ErrorCode::kInvalidArgument, "--host {}: not an IP address", s.state.options.host);
  tcp::endpoint ep(address, s.state.options.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    fail(ErrorCode::kIoError, "cannot listen on {}:{}: {}", s.state.options.host,
         s.state.options.port, ec.message());
  }
  fmt::print(stderr, "loom serve: listening on http://{}:{} (model {})\n", s.state.options.host,
             s.acceptor.local_endpoint().port(), s.state.options.model_id);
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
