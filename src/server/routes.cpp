// Which handler answers a request: health, metrics and models at once; embeddings and
// generation on the worker pool (server/generation.h).
#include <fmt/format.h>

#include "core/error.h"
#include "server/connection.h"
#include "server/embeddings.h"
#include "server/generation.h"
#include "server/web_assets.h"

namespace loom::server {

namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Compares every byte of the expected key whatever the input, so timing reveals nothing but
  // the length check.
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ b[i]);
  }
  return diff == 0;
}

void embeddings(const std::shared_ptr<Connection>& c) {
  ServerState& s = c->state();
  asio::post(s.workers, [c, body = c->request().body(), &s] {
    std::string out;
    std::optional<Error> error;
    try {
      std::lock_guard<std::mutex> lock(s.encoder_mu);
      out = embeddings_response(s.model, body, s.options.model_id);
    } catch (const Error& e) {
      error = e;
    } catch (const std::exception& e) {
      error = Error(ErrorCode::kInternal, e.what());
    }
    asio::post(c->executor(), [c, out = std::move(out), error]() mutable {
      if (error) {
        reply_with_error(*c, *error);
      } else {
        c->reply(http::status::ok, std::move(out));
      }
    });
  });
}

}  // namespace

void route(const std::shared_ptr<Connection>& c) {
  ServerState& s = c->state();
  const auto& req = c->request();
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  if (path == "/health") {
    c->set_endpoint("health");
    c->reply(s.draining ? http::status::service_unavailable : http::status::ok,
             s.draining ? R"({"status":"shutting_down"})" : R"({"status":"ok"})");
    return;
  }
  // The chat page is public (it asks for the API key and sends it with its API calls); its
  // files come from the binary, and the policy lets them talk to this server only.
  if (req.method() == http::verb::get) {
    if (const WebAsset* asset = find_web_asset(path)) {
      c->set_endpoint("page");
      c->reply(http::status::ok, std::string(asset->body), asset->content_type, std::nullopt,
               {{"Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                 "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'"},
                {"X-Content-Type-Options", "nosniff"},
                {"Cache-Control", "no-cache"},
                {"Referrer-Policy", "no-referrer"}});
      return;
    }
  }
  if (!s.options.api_key.empty()) {
    const auto auth = req[http::field::authorization];
    if (!constant_time_equal(std::string_view(auth.data(), auth.size()),
                             "Bearer " + s.options.api_key)) {
      c->set_endpoint("unauthorized");
      c->reply_error(http::status::unauthorized,
                     "missing or incorrect API key (send Authorization: Bearer KEY)",
                     "invalid_request_error", std::nullopt, "invalid_api_key");
      return;
    }
  }
  auto post_only = [&]() {
    if (req.method() == http::verb::post) return true;
    c->reply_error(http::status::method_not_allowed, "use POST", "invalid_request_error");
    return false;
  };
  if (path == "/metrics" && req.method() == http::verb::get) {
    c->set_endpoint("metrics");
    c->reply(http::status::ok,
             s.metrics.render(s.scheduler ? s.scheduler->stats() : SchedulerStats{}),
             "text/plain; version=0.0.4; charset=utf-8");
    return;
  }
  if (path == "/v1/models" && req.method() == http::verb::get) {
    c->set_endpoint("models");
    nlohmann::ordered_json m = {
        {"id", s.options.model_id},
        {"object", "model"},
        {"created", unix_now()},
        {"owned_by", "loom"},
        {"max_model_len",
         s.scheduler ? s.scheduler->options().context : s.model.encoder->info().max_tokens}};
    c->reply(http::status::ok,
             dump(nlohmann::ordered_json{{"object", "list"},
                                         {"data", nlohmann::ordered_json::array({m})}}));
    return;
  }
  if (path == "/v1/embeddings") {
    c->set_endpoint("embeddings");
    if (post_only()) embeddings(c);
    return;
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    const bool chat = path == "/v1/chat/completions";
    c->set_endpoint(chat ? "chat_completions" : "completions");
    if (!post_only()) return;
    if (!s.scheduler) {
      fail(ErrorCode::kUnsupported, "the model is an encoder: it serves /v1/embeddings only");
    }
    if (s.draining) {
      c->reply_error(http::status::service_unavailable, "the server is shutting down",
                     "server_error", std::nullopt, "shutting_down");
      return;
    }
    std::make_shared<Generation>(c, chat ? Endpoint::kChatCompletions : Endpoint::kCompletions)
        ->start();
    return;
  }
  c->set_endpoint("other");
  c->reply_error(http::status::not_found,
                 fmt::format("no route for {} {}", std::string(req.method_string()), path),
                 "invalid_request_error", std::nullopt, "not_found");
}

}  // namespace loom::server
