// Internal to loom_server: one completions / chat completions request from parse to last byte.
//
//   start():     on the I/O thread; parsing, templating and tokenizing run on the worker pool;
//   submitted:   back on the I/O thread, the request's n choices go to the scheduler as one
//                group (all admitted or none, so a full queue never leaves half a request
//                running);
//   events:      the scheduler's tokens and finishes are posted to the I/O thread, to this
//                object: a request's events can only reach its own response, never the next
//                request on the same connection;
//   finish:      the whole response (or the stream's end) once every choice has finished.
// A client that leaves, falls behind or stops reading cancels every choice (KV freed).
#pragma once

#include <memory>
#include <vector>

#include "app/tool_calls.h"
#include "server/connection.h"
#include "server/openai_api.h"

namespace loom::server {

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  Generation(std::shared_ptr<Connection> connection, Endpoint endpoint);

  void start();
  void cancel();  // I/O thread
  void on_token(int index, TokenEvent e);
  void on_finish(int index, FinishEvent e);

 private:
  // Worker thread: body -> request and prompt ids.
  void prepare();
  // I/O thread.
  void submit(ApiRequest api, std::vector<int32_t> prompt);
  void fail_request(const Error& e);
  nlohmann::ordered_json chunk_base() const;
  void write_final_response();
  void send_chunk(const nlohmann::ordered_json& chunk);
  // Tool calls: the deltas of choice `index` since the last call (streaming).
  void stream_tool_deltas(int index, bool final);
  nlohmann::ordered_json tool_calls_json(int index) const;

  std::shared_ptr<Connection> conn_;
  ServerState& state_;
  Endpoint endpoint_;
  std::string body_;
  ApiRequest api_;
  std::vector<std::shared_ptr<RequestHandle>> handles_;
  std::vector<ChoiceResult> choices_;
  // Tool calls (api_.tools_called()): per choice, the parse of its text and what was streamed.
  app::ToolFormat tool_format_ = app::ToolFormat::kHermes;
  struct ToolState {
    app::ToolOutput parsed;
    size_t sent_content = 0;
    std::vector<size_t> sent_args;
    std::vector<std::string> ids;
  };
  std::vector<ToolState> tool_states_;
  Usage usage_;
  int finished_ = 0;
  bool cancelled_ = false;
  bool any_token_ = false;
  std::string id_;
  int64_t created_ = 0;
  Clock::time_point t_start_, t_last_token_;
};

}  // namespace loom::server
