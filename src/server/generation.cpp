#include "server/generation.h"

#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace loom::server {

namespace {

using Json = nlohmann::ordered_json;

// Receives one choice's events on the scheduler thread and posts them to the I/O thread.
class ChoiceSink : public RequestSink {
 public:
  ChoiceSink(std::shared_ptr<Generation> g, asio::any_io_executor ex, int index)
      : g_(std::move(g)), ex_(std::move(ex)), index_(index) {}
  void on_token(const TokenEvent& e) override {
    asio::post(ex_, [g = g_, i = index_, e] { g->on_token(i, e); });
  }
  void on_finish(const FinishEvent& e) override {
    asio::post(ex_, [g = g_, i = index_, e] { g->on_finish(i, e); });
  }

 private:
  std::shared_ptr<Generation> g_;
  asio::any_io_executor ex_;
  int index_;
};

std::string token_text(const app::LoadedModel& m, int32_t id) {
  if (!m.tokenizer) return std::to_string(id);
  const int32_t ids[1] = {id};
  return m.tokenizer->decode(ids, false);
}

}  // namespace

Generation::Generation(std::shared_ptr<Connection> connection, Endpoint endpoint)
    : conn_(std::move(connection)), state_(conn_->state()), endpoint_(endpoint) {}

void Generation::start() {
  t_start_ = Clock::now();
  body_ = conn_->request().body();
  // Parsing a large body, rendering the template and tokenizing are CPU work: off the I/O
  // thread.
  asio::post(state_.workers, [self = shared_from_this()] { self->prepare(); });
}

void Generation::prepare() {
  try {
    ApiRequest api = parse_request(endpoint_, body_);
    body_.clear();
    body_.shrink_to_fit();
    if (!api.model.empty() && api.model != state_.options.model_id) {
      fail(ErrorCode::kNotFound, "'model': the model '{}' does not exist (this server has '{}')",
           api.model, state_.options.model_id);
    }
    const app::LoadedModel& m = state_.model;
    std::vector<int32_t> prompt;
    if (endpoint_ == Endpoint::kCompletions) {
      prompt =
          api.prompt_text ? m.require_tokenizer().encode(*api.prompt_text, true) : api.prompt_ids;
    } else {
      jinja::ChatRequest req;
      req.messages = api.messages;
      req.tools = api.tools;
      if (api.tools_called()) {
        const std::string_view source = m.chat_templates.source(true);
        if (!app::template_renders_tools(source)) {
          // The template has no place for tools: describe them in the system message.
          const std::string text = app::describe_tools(api.tools);
          if (!req.messages.empty() && req.messages[0].value("role", "") == "system" &&
              req.messages[0]["content"].is_string()) {
            req.messages[0]["content"] =
                req.messages[0]["content"].get<std::string>() + "\n\n" + text;
          } else {
            req.messages.insert(req.messages.begin(), Json{{"role", "system"}, {"content", text}});
          }
        }
      }
      req.extra = api.template_kwargs;
      req.add_generation_prompt = api.add_generation_prompt;
      req.continue_final_message = api.continue_final_message;
      const std::string rendered = app::render_chat(m.chat_templates, std::move(req));
      prompt = m.require_tokenizer().encode(rendered, /*add_special_tokens=*/false);
    }
    // Structured output and tool calls: compiled here (off the I/O thread; cached).
    app::StructuredOutput& so = state_.structured;
    switch (api.format) {
      case ApiRequest::Format::kText:
        break;
      case ApiRequest::Format::kJsonObject:
        api.params.constraint = so.json_object("response_format");
        break;
      case ApiRequest::Format::kJsonSchema:
        api.params.constraint = so.json_schema(api.schema, "response_format.json_schema.schema");
        break;
      case ApiRequest::Format::kGrammar:
        api.params.constraint = so.gbnf(api.source, "grammar");
        break;
      case ApiRequest::Format::kRegex:
        api.params.constraint = so.regex(api.source, "regex");
        break;
    }
    if (api.tools_called()) {
      tool_format_ = app::detect_tool_format(m.chat_templates.source(true));
      app::ToolChoice choice;
      choice.mode = api.tool_choice == "required"   ? app::ToolChoice::Mode::kRequired
                    : api.tool_choice == "function" ? app::ToolChoice::Mode::kFunction
                                                    : app::ToolChoice::Mode::kAuto;
      choice.function = api.tool_function;
      api.params.constraint =
          so.tool_calls(tool_format_, api.tools, choice, api.parallel_tool_calls);
      api.params.special_text = true;
    }
    asio::post(conn_->executor(), [self = shared_from_this(), api = std::move(api),
                                   prompt = std::move(prompt)]() mutable {
      self->submit(std::move(api), std::move(prompt));
    });
  } catch (const Error& e) {
    asio::post(conn_->executor(), [self = shared_from_this(), e] { self->fail_request(e); });
  } catch (const std::exception& e) {
    const Error err(ErrorCode::kInternal, e.what());
    asio::post(conn_->executor(), [self = shared_from_this(), err] { self->fail_request(err); });
  }
}

void Generation::fail_request(const Error& e) {
  reply_with_error(*conn_, e);
}

void Generation::submit(ApiRequest api, std::vector<int32_t> prompt) {
  api_ = std::move(api);
  if (conn_->closed()) return;  // the client left while we prepared
  try {
    if (prompt.empty()) fail(ErrorCode::kInvalidArgument, "'prompt': the prompt is empty");
    const int64_t ctx = state_.scheduler->options().context;
    api_.params.max_tokens = effective_max_tokens(api_, static_cast<int64_t>(prompt.size()), ctx);
    api_.params.prompt = std::move(prompt);
    api_.params.cache_salt = api_.cache_salt;
    app::GuardChoice guard = api_.guard_settings;
    guard.action = api_.guard_action.value_or(state_.options.guard);
    app::apply_guard(guard, state_.dry_breakers, api_.params.guard, api_.params.sampling);
    id_ = random_id(endpoint_ == Endpoint::kCompletions ? "cmpl" : "chatcmpl");
    created_ = unix_now();
    choices_.assign(api_.n, {});
    if (api_.tools_called()) tool_states_.assign(api_.n, {});
    usage_.prompt_tokens = static_cast<int64_t>(api_.params.prompt.size());
    std::vector<Scheduler::SequenceRequest> group;
    for (int i = 0; i < api_.n; ++i) {
      Scheduler::SequenceRequest s;
      s.params = api_.params;
      if (api_.seed) s.params.sampling.seed = *api_.seed + static_cast<uint64_t>(i);
      s.sink = std::make_shared<ChoiceSink>(shared_from_this(), conn_->executor(), i);
      s.handle = std::make_shared<RequestHandle>();
      handles_.push_back(s.handle);
      group.push_back(std::move(s));
    }
    const auto status = state_.scheduler->submit_group(std::move(group));
    if (status != Scheduler::SubmitStatus::kAccepted) {
      handles_.clear();
      if (status == Scheduler::SubmitStatus::kQueueFull) {
        conn_->reply_error(http::status::too_many_requests, "the server is busy; retry shortly",
                           "rate_limit_error", std::nullopt, "rate_limit_exceeded");
      } else {
        conn_->reply_error(http::status::service_unavailable, "the server is shutting down",
                           "server_error", std::nullopt, "shutting_down");
      }
      return;
    }
  } catch (const Error& e) {
    handles_.clear();
    reply_with_error(*conn_, e);
    return;
  }
  state_.metrics.add_tokens(usage_.prompt_tokens * api_.n, 0);
  conn_->attach(shared_from_this());
  if (api_.stream) {
    conn_->stream_begin();
    if (endpoint_ == Endpoint::kChatCompletions) {
      for (int i = 0; i < api_.n; ++i) {
        Json c = chunk_base();
        c["choices"] = Json::array({{{"index", i},
                                     {"delta", {{"role", "assistant"}, {"content", ""}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", nullptr}}});
        send_chunk(c);
      }
    }
  }
}

void Generation::cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  for (auto& h : handles_) h->cancelled = true;
  if (state_.scheduler) state_.scheduler->wake();
}

Json Generation::chunk_base() const {
  Json c;
  c["id"] = id_;
  c["object"] = endpoint_ == Endpoint::kCompletions ? "text_completion" : "chat.completion.chunk";
  c["created"] = created_;
  c["model"] = state_.options.model_id;
  return c;
}

void Generation::send_chunk(const Json& chunk) {
  if (!conn_->stream_send("data: " + dump(chunk) + "\n\n")) cancel();
}

void Generation::on_token(int index, TokenEvent e) {
  if (cancelled_ || conn_->closed()) return;
  const auto now = Clock::now();
  if (!any_token_) {
    state_.metrics.ttft.observe(std::chrono::duration<double>(now - t_start_).count());
    any_token_ = true;
  } else if (e.token >= 0) {
    state_.metrics.inter_token.observe(std::chrono::duration<double>(now - t_last_token_).count());
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
  if (!tool_states_.empty()) {
    if (api_.stream) stream_tool_deltas(index, false);
    return;
  }
  if (!api_.stream || (e.text.empty() && !(api_.logprobs && e.token >= 0))) return;
  Json chunk = chunk_base();
  Json choice;
  choice["index"] = index;
  Json lp = nullptr;
  if (api_.logprobs && e.token >= 0) {
    const std::string tok = token_text(state_.model, e.token);
    if (endpoint_ == Endpoint::kChatCompletions) {
      Json top = Json::array();
      for (auto& [id, l] : e.top_logprobs) {
        top.push_back({{"token", token_text(state_.model, id)}, {"logprob", l}});
      }
      lp = {{"content",
             Json::array({{{"token", tok}, {"logprob", e.logprob}, {"top_logprobs", top}}})}};
    } else {
      Json top = Json::object();
      for (auto& [id, l] : e.top_logprobs) top[token_text(state_.model, id)] = l;
      lp = {
          {"tokens", {tok}}, {"token_logprobs", {e.logprob}}, {"top_logprobs", Json::array({top})}};
    }
  }
  if (endpoint_ == Endpoint::kChatCompletions) {
    choice["delta"] = {{"content", e.text}};
  } else {
    choice["text"] = e.text;
  }
  choice["logprobs"] = lp;
  choice["finish_reason"] = nullptr;
  chunk["choices"] = Json::array({choice});
  send_chunk(chunk);
}

void Generation::on_finish(int index, FinishEvent e) {
  ChoiceResult& c = choices_[index];
  c.finish_reason = e.finish_reason == "cancelled" ? "stop" : e.finish_reason;
  c.completion_tokens = e.completion_tokens;
  // A loop cut by the guard: the collected text ends after its first copy (a stream already
  // sent what came before the guard fired).
  if (e.text_bytes >= 0 && e.text_bytes < static_cast<int64_t>(c.text.size())) {
    c.text.resize(static_cast<size_t>(e.text_bytes));
  }
  if (e.degeneration)
    state_.metrics.count_degeneration(guard_action_name(api_.params.guard.action));
  usage_.completion_tokens += e.completion_tokens;
  usage_.cached_tokens = std::max(usage_.cached_tokens, e.cached_prompt_tokens);
  state_.metrics.add_tokens(0, e.completion_tokens);
  ++finished_;
  const bool gone = cancelled_ || conn_->closed();
  if (!tool_states_.empty()) {
    ToolState& ts = tool_states_[index];
    ts.parsed = app::parse_tool_output(tool_format_, c.text, true);
    if (!gone && api_.stream) stream_tool_deltas(index, true);
    if (!ts.parsed.calls.empty() && c.finish_reason == "stop") c.finish_reason = "tool_calls";
  }
  if (!gone && api_.stream) {
    Json chunk = chunk_base();
    Json choice;
    choice["index"] = index;
    if (endpoint_ == Endpoint::kChatCompletions) {
      choice["delta"] = Json::object();
    } else {
      choice["text"] = "";
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = c.finish_reason;
    chunk["choices"] = Json::array({choice});
    send_chunk(chunk);
  }
  if (finished_ < static_cast<int>(choices_.size())) return;
  state_.metrics.request.observe(std::chrono::duration<double>(Clock::now() - t_start_).count());
  if (cancelled_ || conn_->closed()) {
    state_.metrics.count_request(
        endpoint_ == Endpoint::kCompletions ? "completions" : "chat_completions",
        499);  // client closed the request
    conn_->detach();
    return;
  }
  if (api_.stream) {
    if (api_.include_usage) {
      Json u = chunk_base();
      u["choices"] = Json::array();
      u["usage"] = usage_json(usage_);
      send_chunk(u);
    }
    conn_->stream_send("data: [DONE]\n\n");
    conn_->stream_end();
  } else {
    write_final_response();
  }
}

Json Generation::tool_calls_json(int index) const {
  const ToolState& ts = tool_states_[static_cast<size_t>(index)];
  Json calls = Json::array();
  for (size_t k = 0; k < ts.parsed.calls.size(); ++k) {
    const auto& call = ts.parsed.calls[k];
    calls.push_back({{"id", k < ts.ids.size() ? ts.ids[k] : random_id("call")},
                     {"type", "function"},
                     {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
  }
  return calls;
}

void Generation::stream_tool_deltas(int index, bool final) {
  ToolState& ts = tool_states_[static_cast<size_t>(index)];
  if (!final) ts.parsed = app::parse_tool_output(tool_format_, choices_[index].text, false);
  const app::ToolOutput& o = ts.parsed;
  auto send = [&](Json delta) {
    Json chunk = chunk_base();
    chunk["choices"] = Json::array(
        {{{"index", index}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
    send_chunk(chunk);
  };
  if (o.content.size() > ts.sent_content &&
      o.content.compare(0, ts.sent_content, o.content, 0, ts.sent_content) == 0) {
    send({{"content", o.content.substr(ts.sent_content)}});
    ts.sent_content = o.content.size();
  }
  for (size_t k = 0; k < o.calls.size(); ++k) {
    const auto& call = o.calls[k];
    if (k >= ts.ids.size()) {
      ts.ids.push_back(random_id("call"));
      ts.sent_args.push_back(0);
      send({{"tool_calls",
             Json::array({{{"index", k},
                           {"id", ts.ids[k]},
                           {"type", "function"},
                           {"function", {{"name", call.name}, {"arguments", ""}}}}})}});
    }
    if (call.arguments.size() > ts.sent_args[k]) {
      send({{"tool_calls",
             Json::array(
                 {{{"index", k},
                   {"function", {{"arguments", call.arguments.substr(ts.sent_args[k])}}}}})}});
      ts.sent_args[k] = call.arguments.size();
    }
  }
}

void Generation::write_final_response() {
  Json r;
  r["id"] = id_;
  r["object"] = endpoint_ == Endpoint::kCompletions ? "text_completion" : "chat.completion";
  r["created"] = created_;
  r["model"] = state_.options.model_id;
  Json choices = Json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceResult& c = choices_[i];
    Json choice;
    choice["index"] = i;
    Json lp = nullptr;
    if (endpoint_ == Endpoint::kChatCompletions) {
      if (!tool_states_.empty()) {
        const app::ToolOutput& o = tool_states_[i].parsed;
        choice["message"] = {
            {"role", "assistant"},
            {"content", o.content.empty() && !o.calls.empty() ? Json(nullptr) : Json(o.content)}};
        if (!o.calls.empty())
          choice["message"]["tool_calls"] = tool_calls_json(static_cast<int>(i));
      } else {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      }
      if (api_.logprobs) {
        Json content = Json::array();
        for (size_t t = 0; t < c.ids.size(); ++t) {
          Json top = Json::array();
          for (auto& [id, l] : c.top_logprobs[t]) {
            top.push_back({{"token", token_text(state_.model, id)}, {"logprob", l}});
          }
          content.push_back({{"token", token_text(state_.model, c.ids[t])},
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
          const std::string tok = token_text(state_.model, c.ids[t]);
          tokens.push_back(tok);
          lps.push_back(c.logprobs[t]);
          Json top = Json::object();
          for (auto& [id, l] : c.top_logprobs[t]) top[token_text(state_.model, id)] = l;
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
  conn_->reply(http::status::ok, dump(r));
}

}  // namespace loom::server
