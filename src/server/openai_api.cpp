#include "server/openai_api.h"

#include <fmt/format.h>

#include "core/error.h"

namespace loom::server {

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  fail(ErrorCode::kInvalidArgument, "'{}': {}", param, message);
}

double number(const Json& j, const char* key, double lo, double hi) {
  const Json& v = j.at(key);
  if (!v.is_number()) bad(key, fmt::format("expected a number, got {}", v.type_name()));
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi)) bad(key, fmt::format("{} is out of range [{}, {}]", d, lo, hi));
  return d;
}

int64_t integer(const Json& j, const char* key, int64_t lo, int64_t hi) {
  const Json& v = j.at(key);
  if (!v.is_number_integer()) bad(key, fmt::format("expected an integer, got {}", v.dump()));
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) bad(key, fmt::format("{} is out of range [{}, {}]", i, lo, hi));
  return i;
}

bool boolean(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_boolean()) bad(key, fmt::format("expected true or false, got {}", v.dump()));
  return v.get<bool>();
}

bool present(const Json& j, const char* key) {
  return j.contains(key) && !j.at(key).is_null();
}

std::vector<std::string> stop_list(const Json& j) {
  const Json& v = j.at("stop");
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) bad("stop", "at most 4 stop sequences");
    for (const Json& s : v) {
      if (!s.is_string()) bad("stop", "expected a string or a list of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    bad("stop", "expected a string or a list of strings");
  }
  return out;
}

}  // namespace

ApiRequest parse_request(Endpoint endpoint, const std::string& body, int64_t max_tokens_limit) {
  Json j;
  try {
    j = Json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kInvalidArgument, "the request body is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) fail(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
  ApiRequest r;
  r.endpoint = endpoint;
  if (present(j, "model")) {
    if (!j["model"].is_string()) bad("model", "expected a string");
    r.model = j["model"].get<std::string>();
  }
  if (endpoint == Endpoint::kCompletions) {
    if (!present(j, "prompt")) bad("prompt", "is required");
    const Json& p = j["prompt"];
    if (p.is_string()) {
      r.prompt_text = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt_text = p[0].get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
      for (const Json& id : p) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
          bad("prompt", "token ids must be non-negative integers");
        }
        r.prompt_ids.push_back(id.get<int32_t>());
      }
    } else {
      bad("prompt", "expected a string or a list of token ids (one prompt per request)");
    }
    if (present(j, "echo")) r.echo = boolean(j, "echo");
    if (present(j, "logprobs")) {
      r.top_logprobs = static_cast<int>(integer(j, "logprobs", 0, 20));
      r.logprobs = true;
    }
  } else {
    if (!present(j, "messages")) bad("messages", "is required");
    r.messages = j["messages"];
    if (!r.messages.is_array() || r.messages.empty()) bad("messages", "expected a non-empty list");
    for (const Json& m : r.messages) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        bad("messages", "each message needs a string 'role'");
      }
      if (m.contains("content") && !m["content"].is_string() && !m["content"].is_array() &&
          !m["content"].is_null()) {
        bad("messages", "'content' must be a string or a list of content parts");
      }
    }
    if (present(j, "logprobs")) r.logprobs = boolean(j, "logprobs");
    if (present(j, "top_logprobs")) {
      r.top_logprobs = static_cast<int>(integer(j, "top_logprobs", 0, 20));
      if (!r.logprobs) bad("top_logprobs", "requires logprobs to be true");
    }
  }
  const char* max_key =
      present(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const int64_t default_max = endpoint == Endpoint::kCompletions ? 16 : max_tokens_limit;
  r.params.max_tokens = present(j, max_key) ? integer(j, max_key, 1, max_tokens_limit)
                                            : std::min<int64_t>(default_max, max_tokens_limit);
  sample::SamplingParams& sp = r.params.sampling;
  if (present(j, "temperature"))
    sp.temperature = static_cast<float>(number(j, "temperature", 0, 2));
  if (present(j, "top_p")) sp.top_p = static_cast<float>(number(j, "top_p", 0, 1));
  if (present(j, "top_p") && sp.top_p == 0.0f) sp.top_p = 1e-6f;  // OpenAI accepts 0: nearly greedy
  if (present(j, "presence_penalty")) {
    sp.presence_penalty = static_cast<float>(number(j, "presence_penalty", -2, 2));
  }
  if (present(j, "frequency_penalty")) {
    sp.frequency_penalty = static_cast<float>(number(j, "frequency_penalty", -2, 2));
  }
  if (present(j, "seed")) {
    const Json& s = j["seed"];
    if (!s.is_number_integer()) bad("seed", "expected an integer");
    r.seed = s.is_number_unsigned() ? s.get<uint64_t>() : static_cast<uint64_t>(s.get<int64_t>());
    sp.seed = r.seed;
  }
  if (present(j, "logit_bias")) {
    const Json& lb = j["logit_bias"];
    if (!lb.is_object()) bad("logit_bias", "expected an object of token id -> bias");
    for (auto& [k, v] : lb.items()) {
      int32_t id = 0;
      try {
        size_t used = 0;
        id = std::stoi(k, &used);
        if (used != k.size()) throw std::invalid_argument(k);
      } catch (const std::exception&) {
        bad("logit_bias", fmt::format("key '{}' is not a token id", k));
      }
      if (!v.is_number()) bad("logit_bias", "values must be numbers");
      sp.logit_bias[id] = v.get<float>();
    }
  }
  if (present(j, "stop")) r.params.stop = stop_list(j);
  // vLLM's extension, used by benchmarks that need a fixed output length.
  if (present(j, "ignore_eos")) r.params.ignore_eos = boolean(j, "ignore_eos");
  if (present(j, "n")) r.n = static_cast<int>(integer(j, "n", 1, 16));
  if (present(j, "stream")) r.stream = boolean(j, "stream");
  if (present(j, "stream_options")) {
    const Json& so = j["stream_options"];
    if (!so.is_object()) bad("stream_options", "expected an object");
    if (!r.stream) bad("stream_options", "only allowed when stream is true");
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean()) bad("stream_options.include_usage", "expected bool");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  if (r.logprobs) r.params.top_logprobs = r.top_logprobs;
  return r;
}

std::string error_body(const std::string& message, const std::string& type,
                       const std::optional<std::string>& param,
                       const std::optional<std::string>& code) {
  Json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param ? Json(*param) : Json(nullptr);
  e["code"] = code ? Json(*code) : Json(nullptr);
  return Json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Json usage_json(const Usage& u) {
  Json j;
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  j["prompt_tokens_details"] = {{"cached_tokens", u.cached_tokens}};
  return j;
}

}  // namespace loom::server
