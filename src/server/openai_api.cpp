#include "server/openai_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "core/error.h"

namespace loom::server {

namespace {

[[noreturn]] void bad(std::string_view param, const std::string& message) {
  fail(ErrorCode::kInvalidArgument, "'{}': {}", param, message);
}

[[noreturn]] void unsupported(std::string_view param, const std::string& message) {
  fail(ErrorCode::kUnsupported, "'{}': {}", param, message);
}

std::string shown(const Json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
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
  if (!v.is_number_integer()) bad(key, fmt::format("expected an integer, got {}", shown(v)));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    bad(key, fmt::format("{} is out of range [{}, {}]", shown(v), lo, hi));
  }
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) bad(key, fmt::format("{} is out of range [{}, {}]", i, lo, hi));
  return i;
}

bool boolean(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_boolean()) bad(key, fmt::format("expected true or false, got {}", shown(v)));
  return v.get<bool>();
}

std::string string(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_string()) bad(key, fmt::format("expected a string, got {}", shown(v)));
  return v.get<std::string>();
}

bool present(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

std::vector<std::string> breaker_list(const Json& v, const std::string& field) {
  if (!v.is_array()) bad(field, fmt::format("expected an array of strings, got {}", shown(v)));
  if (v.size() > 32) bad(field, fmt::format("{} sequence breakers; at most 32", v.size()));
  std::vector<std::string> out;
  for (const Json& b : v) {
    if (!b.is_string() || b.get_ref<const std::string&>().empty() ||
        b.get_ref<const std::string&>().size() > 64) {
      bad(field, fmt::format("{} is not a string of 1 to 64 bytes", shown(b)));
    }
    out.push_back(b.get<std::string>());
  }
  return out;
}

// `degeneration`: {"action", "multiplier", "base", "allowed_length", "last_n",
// "sequence_breakers"}; errors name the nested field.
void parse_degeneration(const Json& d, ApiRequest& r) {
  if (!d.is_object()) {
    bad("degeneration",
        fmt::format("expected an object such as {{\"action\": \"stop\"}}, got {}", shown(d)));
  }
  app::GuardChoice& g = r.guard_settings;
  for (auto it = d.begin(); it != d.end(); ++it) {
    const std::string field = "degeneration." + it.key();
    const Json one = Json{{field, *it}};
    const char* f = field.c_str();
    if (it.key() == "action") {
      const std::string action = string(one, f);
      if (action != "stop" && action != "penalize" && action != "off") {
        bad(field, fmt::format("\"{}\" is not one of \"stop\", \"penalize\", \"off\"", action));
      }
      r.guard_action = parse_guard_action(action);
    } else if (it.key() == "multiplier") {
      g.dry_multiplier = static_cast<float>(number(one, f, 0, 100));
    } else if (it.key() == "base") {
      g.dry_base = static_cast<float>(number(one, f, 1, 10));
    } else if (it.key() == "allowed_length") {
      g.dry_allowed_length = static_cast<int32_t>(integer(one, f, 1, 1 << 20));
    } else if (it.key() == "last_n") {
      g.dry_penalty_last_n = static_cast<int32_t>(integer(one, f, -1, INT32_MAX));
    } else if (it.key() == "sequence_breakers") {
      g.dry_breakers = breaker_list(*it, field);
    } else {
      bad(field,
          "unrecognized field (degeneration takes action, multiplier, base, allowed_length, "
          "last_n, sequence_breakers)");
    }
  }
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
  for (const std::string& s : out) {
    if (s.empty()) bad("stop", "stop sequences must not be empty");
  }
  return out;
}

// Every top-level field a request may carry, and what loom does with it.
enum class Field {
  kHonoured,  // parsed below
  kMetadata,  // cannot change the output: accepted (user, metadata, ...)
  kChecked,   // accepted only with the value that changes nothing; else a 400 naming it
};

struct FieldRule {
  std::string_view name;
  Field rule;
  bool chat, completions;
};

constexpr FieldRule kFields[] = {
    {"model", Field::kHonoured, true, true},
    {"messages", Field::kHonoured, true, false},
    {"prompt", Field::kHonoured, false, true},
    {"max_tokens", Field::kHonoured, true, true},
    {"max_completion_tokens", Field::kHonoured, true, false},
    {"temperature", Field::kHonoured, true, true},
    {"top_p", Field::kHonoured, true, true},
    {"n", Field::kHonoured, true, true},
    {"stream", Field::kHonoured, true, true},
    {"stream_options", Field::kHonoured, true, true},
    {"stop", Field::kHonoured, true, true},
    {"presence_penalty", Field::kHonoured, true, true},
    {"frequency_penalty", Field::kHonoured, true, true},
    {"logit_bias", Field::kHonoured, true, true},
    {"logprobs", Field::kHonoured, true, true},
    {"top_logprobs", Field::kHonoured, true, false},
    {"echo", Field::kHonoured, false, true},
    {"seed", Field::kHonoured, true, true},
    {"tools", Field::kHonoured, true, false},
    {"tool_choice", Field::kHonoured, true, false},
    {"response_format", Field::kHonoured, true, true},
    {"reasoning_effort", Field::kHonoured, true, false},
    // vLLM's extensions.
    {"top_k", Field::kHonoured, true, true},
    {"min_p", Field::kHonoured, true, true},
    {"repetition_penalty", Field::kHonoured, true, true},
    {"ignore_eos", Field::kHonoured, true, true},
    {"cache_salt", Field::kHonoured, true, true},
    {"chat_template_kwargs", Field::kHonoured, true, false},
    {"add_generation_prompt", Field::kHonoured, true, false},
    {"continue_final_message", Field::kHonoured, true, false},
    // loom's extensions: constrained output by a GBNF grammar or a regular expression.
    {"grammar", Field::kHonoured, true, true},
    {"regex", Field::kHonoured, true, true},
    {"degeneration", Field::kHonoured, true, true},
    // llama.cpp's DRY sampler fields.
    {"dry_multiplier", Field::kHonoured, true, true},
    {"dry_base", Field::kHonoured, true, true},
    {"dry_allowed_length", Field::kHonoured, true, true},
    {"dry_penalty_last_n", Field::kHonoured, true, true},
    {"dry_sequence_breakers", Field::kHonoured, true, true},
    // Cannot change what is generated.
    {"user", Field::kMetadata, true, true},
    {"metadata", Field::kMetadata, true, true},
    {"safety_identifier", Field::kMetadata, true, true},
    {"prompt_cache_key", Field::kMetadata, true, true},
    // Accepted only at their no-op value.
    {"store", Field::kChecked, true, false},
    {"service_tier", Field::kChecked, true, true},
    {"parallel_tool_calls", Field::kHonoured, true, false},
    {"modalities", Field::kChecked, true, false},
    {"suffix", Field::kChecked, false, true},
    {"best_of", Field::kChecked, false, true},
    {"verbosity", Field::kChecked, true, false},
    {"audio", Field::kChecked, true, false},
    {"prediction", Field::kChecked, true, false},
    {"web_search_options", Field::kChecked, true, false},
    {"functions", Field::kChecked, true, false},
    {"function_call", Field::kChecked, true, false},
};

void check_fields(const Json& j, Endpoint endpoint) {
  const bool chat = endpoint == Endpoint::kChatCompletions;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const FieldRule* rule = nullptr;
    for (const FieldRule& f : kFields) {
      if (f.name == key && (chat ? f.chat : f.completions)) rule = &f;
    }
    if (rule == nullptr) {
      bad(key, fmt::format("unrecognized request argument for {}",
                           chat ? "/v1/chat/completions" : "/v1/completions"));
    }
    if (rule->rule != Field::kChecked || it->is_null()) continue;
    const Json& v = *it;
    auto refuse = [&](const std::string& why) { unsupported(key, why); };
    if (key == "store") {
      if (!v.is_boolean()) bad(key, "expected true or false");
      if (v.get<bool>()) refuse("loom does not store completions; send false or omit it");
    } else if (key == "service_tier") {
      if (!v.is_string()) bad(key, "expected a string");
      if (v != "auto" && v != "default") {
        refuse(fmt::format("loom has one service tier; {} is not available", shown(v)));
      }
    } else if (key == "modalities") {
      if (!v.is_array()) bad(key, "expected a list");
      for (const Json& m : v) {
        if (m != "text") refuse(fmt::format("loom generates text only, not {}", shown(m)));
      }
    } else if (key == "suffix") {
      if (!v.is_string()) bad(key, "expected a string");
      if (!v.get_ref<const std::string&>().empty()) refuse("insertion (suffix) is not supported");
    } else if (key == "best_of") {
      const int64_t best_of = integer(j, "best_of", 1, 20);
      const int64_t n = present(j, "n") && j["n"].is_number_integer() ? j["n"].get<int64_t>() : 1;
      if (best_of != n) refuse("best_of other than n is not supported");
    } else if (key == "verbosity") {
      if (v != "medium") refuse("only the default verbosity (medium) is available");
    } else {
      refuse("not supported by loom");  // audio, prediction, web_search_options, functions
    }
  }
}

std::string part_text(const Json& part, size_t m, size_t p) {
  const std::string where = fmt::format("messages[{}].content[{}]", m, p);
  if (part.is_string()) return part.get<std::string>();
  if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
    bad(where, "a content part must be an object with a string 'type'");
  }
  const std::string& type = part["type"].get_ref<const std::string&>();
  if (type == "text" || type == "input_text") {
    if (!part.contains("text") || !part["text"].is_string()) {
      bad(where, fmt::format("a '{}' part needs a string 'text'", type));
    }
    return part["text"].get<std::string>();
  }
  if (type == "image_url" || type == "input_image" || type == "image" || type == "input_audio" ||
      type == "audio" || type == "file" || type == "video_url") {
    unsupported(where, fmt::format("this model takes text only; a '{}' part cannot be read", type));
  }
  bad(where, fmt::format("unknown content part type '{}'", type));
}

void parse_tools(const Json& j, ApiRequest& r) {
  const Json& tools = j["tools"];
  if (!tools.is_array()) bad("tools", "expected a list of tools");
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& t = tools[i];
    if (!t.is_object() || !t.contains("function") || !t["function"].is_object() ||
        !t["function"].contains("name") || !t["function"]["name"].is_string()) {
      bad(fmt::format("tools[{}]", i),
          "expected {\"type\": \"function\", \"function\": {\"name\"...}}");
    }
  }
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& t = tools[i];
    if (t.contains("type") && t["type"] != "function") {
      unsupported(fmt::format("tools[{}].type", i), "only function tools are supported");
    }
    const Json& f = t["function"];
    const std::string& name = f["name"].get_ref<const std::string&>();
    if (name.empty() || name.size() > 64 ||
        name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
      bad(fmt::format("tools[{}].function.name", i),
          "must be 1-64 characters of a-z, A-Z, 0-9, underscores and dashes");
    }
    if (!names.insert(name).second) {
      bad(fmt::format("tools[{}].function.name", i), fmt::format("'{}' is given twice", name));
    }
    if (f.contains("parameters") && !f["parameters"].is_null() && !f["parameters"].is_object() &&
        !f["parameters"].is_boolean()) {
      bad(fmt::format("tools[{}].function.parameters", i), "expected a JSON Schema object");
    }
  }
  if (present(j, "tool_choice")) {
    const Json& c = j["tool_choice"];
    if (c.is_string()) {
      r.tool_choice = c.get<std::string>();
      if (r.tool_choice != "none" && r.tool_choice != "auto" && r.tool_choice != "required") {
        bad("tool_choice",
            fmt::format("expected none, auto, required or a function, got '{}'", r.tool_choice));
      }
    } else if (c.is_object() && c.contains("function") && c["function"].is_object() &&
               c["function"].contains("name") && c["function"]["name"].is_string()) {
      r.tool_choice = "function";
      r.tool_function = c["function"]["name"].get<std::string>();
      if (!names.count(r.tool_function)) {
        bad("tool_choice", fmt::format("no tool named '{}' in tools", r.tool_function));
      }
    } else {
      bad("tool_choice",
          "expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
          "\"function\": {\"name\": ...}}");
    }
  }
  if (present(j, "parallel_tool_calls")) r.parallel_tool_calls = boolean(j, "parallel_tool_calls");
  if (tools.empty()) return;
  r.tools = tools;
}

// Assistant messages' tool_calls carry arguments as JSON text (OpenAI); chat templates
// (transformers' convention) expect objects: parse them, as vLLM does.
void normalize_tool_calls(Json& messages) {
  for (size_t m = 0; m < messages.size(); ++m) {
    Json& msg = messages[m];
    auto it = msg.find("tool_calls");
    if (it == msg.end() || it->is_null()) continue;
    if (!it->is_array()) bad(fmt::format("messages[{}].tool_calls", m), "expected a list");
    for (size_t k = 0; k < it->size(); ++k) {
      Json& call = (*it)[k];
      const std::string where = fmt::format("messages[{}].tool_calls[{}]", m, k);
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object() ||
          !call["function"].contains("name") || !call["function"]["name"].is_string()) {
        bad(where,
            "expected {\"id\", \"type\": \"function\", \"function\": {\"name\", "
            "\"arguments\"}}");
      }
      Json& args = call["function"]["arguments"];
      if (args.is_string()) {
        try {
          args = parse_json_body(args.get<std::string>());
        } catch (const Error&) {
          // Not a JSON object: the template gets the text as it is.
        }
      }
    }
  }
}

void parse_response_format(const Json& j, ApiRequest& r) {
  const Json& f = j["response_format"];
  if (!f.is_object() || !f.contains("type") || !f["type"].is_string()) {
    bad("response_format", "expected {\"type\": \"text\" | \"json_object\" | \"json_schema\"}");
  }
  const std::string& type = f["type"].get_ref<const std::string&>();
  if (type == "text") return;
  if (type == "json_object") {
    r.format = ApiRequest::Format::kJsonObject;
    return;
  }
  if (type != "json_schema") {
    bad("response_format.type",
        fmt::format("expected text, json_object or json_schema, got '{}'", type));
  }
  if (!f.contains("json_schema") || !f["json_schema"].is_object()) {
    bad("response_format.json_schema", "expected {\"name\", \"schema\", \"strict\"}");
  }
  const Json& js = f["json_schema"];
  if (js.contains("name") && !js["name"].is_string()) {
    bad("response_format.json_schema.name", "expected a string");
  }
  if (js.contains("strict") && !js["strict"].is_null() && !js["strict"].is_boolean()) {
    bad("response_format.json_schema.strict", "expected true or false");
  }
  r.format = ApiRequest::Format::kJsonSchema;
  // No schema: any JSON value, as OpenAI's non-strict mode allows.
  r.schema = js.contains("schema") && !js["schema"].is_null() ? js["schema"] : Json::object();
  if (!r.schema.is_object() && !r.schema.is_boolean()) {
    bad("response_format.json_schema.schema", "expected a JSON Schema object");
  }
}

}  // namespace

Json parse_json_body(std::string_view body) {
  Json j;
  try {
    j = Json::parse(body, [](int depth, nlohmann::json::parse_event_t, Json&) {
      if (depth > kMaxJsonDepth) {
        fail(ErrorCode::kInvalidArgument, "the request body nests deeper than {} levels",
             kMaxJsonDepth);
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kInvalidArgument, "the request body is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) fail(ErrorCode::kInvalidArgument, "the request body must be a JSON object");
  return j;
}

void normalize_content(Json& messages) {
  for (size_t m = 0; m < messages.size(); ++m) {
    Json& msg = messages[m];
    auto it = msg.find("content");
    if (it == msg.end() || !it->is_array()) continue;
    std::string text;
    for (size_t p = 0; p < it->size(); ++p) {
      if (p > 0) text += '\n';
      text += part_text((*it)[p], m, p);
    }
    *it = std::move(text);
  }
}

ApiRequest parse_request(Endpoint endpoint, std::string_view body) {
  const Json j = parse_json_body(body);
  check_fields(j, endpoint);
  ApiRequest r;
  r.endpoint = endpoint;
  if (present(j, "model")) r.model = string(j, "model");
  if (endpoint == Endpoint::kCompletions) {
    if (!present(j, "prompt")) bad("prompt", "is required");
    const Json& p = j["prompt"];
    if (p.is_string()) {
      r.prompt_text = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt_text = p[0].get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_number()) {
      for (const Json& id : p) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
          bad("prompt", "token ids must be non-negative integers");
        }
        r.prompt_ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else if (p.is_array() && p.size() > 1) {
      unsupported("prompt", "a list of several prompts is not supported: send one per request");
    } else {
      bad("prompt", "expected a string or a list of token ids");
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
    for (size_t i = 0; i < r.messages.size(); ++i) {
      const Json& m = r.messages[i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        bad(fmt::format("messages[{}]", i), "each message needs a string 'role'");
      }
      if (m.contains("content") && !m["content"].is_string() && !m["content"].is_array() &&
          !m["content"].is_null()) {
        bad(fmt::format("messages[{}].content", i), "expected a string or a list of content parts");
      }
    }
    normalize_content(r.messages);
    if (present(j, "logprobs")) r.logprobs = boolean(j, "logprobs");
    if (present(j, "top_logprobs")) {
      r.top_logprobs = static_cast<int>(integer(j, "top_logprobs", 0, 20));
      if (!r.logprobs) bad("top_logprobs", "requires logprobs to be true");
    }
    normalize_tool_calls(r.messages);
    if (present(j, "tools") || present(j, "tool_choice")) {
      if (present(j, "tools")) {
        parse_tools(j, r);
      } else if (j["tool_choice"] != "none" && j["tool_choice"] != "auto") {
        bad("tool_choice", "given without tools");
      }
    }
    if (present(j, "chat_template_kwargs")) {
      if (!j["chat_template_kwargs"].is_object()) bad("chat_template_kwargs", "expected an object");
      r.template_kwargs = j["chat_template_kwargs"];
    }
    if (present(j, "reasoning_effort")) {
      const std::string effort = string(j, "reasoning_effort");
      if (effort != "minimal" && effort != "low" && effort != "medium" && effort != "high") {
        bad("reasoning_effort", "expected minimal, low, medium or high");
      }
      r.template_kwargs["reasoning_effort"] = effort;  // the templates that read it (gpt-oss)
    }
    if (present(j, "add_generation_prompt")) {
      r.add_generation_prompt = boolean(j, "add_generation_prompt");
    }
    if (present(j, "continue_final_message")) {
      r.continue_final_message = boolean(j, "continue_final_message");
      if (r.continue_final_message && !present(j, "add_generation_prompt")) {
        r.add_generation_prompt = false;
      }
    }
  }
  {
    const bool rf = present(j, "response_format") && j["response_format"].is_object() &&
                    j["response_format"].value("type", "text") != "text";
    if ((rf ? 1 : 0) + (present(j, "grammar") ? 1 : 0) + (present(j, "regex") ? 1 : 0) > 1) {
      bad("response_format", "give one of response_format, grammar and regex");
    }
  }
  if (present(j, "response_format")) parse_response_format(j, r);
  if (present(j, "grammar")) {
    r.source = string(j, "grammar");
    r.format = ApiRequest::Format::kGrammar;
  }
  if (present(j, "regex")) {
    r.source = string(j, "regex");
    r.format = ApiRequest::Format::kRegex;
  }
  if (r.format != ApiRequest::Format::kText && r.tools_called()) {
    unsupported("response_format",
                "structured output together with tool calls is not supported; send "
                "tool_choice \"none\" or leave response_format out");
  }
  const char* max_key =
      present(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (present(j, max_key)) r.max_tokens = integer(j, max_key, 1, int64_t{1} << 40);
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
  if (present(j, "top_k")) {
    const int64_t k = integer(j, "top_k", -1, INT32_MAX);
    sp.top_k = k < 0 ? 0 : static_cast<int32_t>(k);  // vLLM: -1 (and 0) mean off
  }
  if (present(j, "min_p")) sp.min_p = static_cast<float>(number(j, "min_p", 0, 1));
  if (present(j, "repetition_penalty")) {
    sp.repetition_penalty = static_cast<float>(number(j, "repetition_penalty", 1e-6, 10));
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
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      const std::string& k = it.key();
      int32_t id = 0;
      auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), id);
      if (ec != std::errc() || end != k.data() + k.size() || id < 0) {
        bad("logit_bias", fmt::format("key '{}' is not a token id", k));
      }
      if (!it->is_number()) bad("logit_bias", "values must be numbers");
      const double v = it->get<double>();
      if (!(v >= -100 && v <= 100))
        bad("logit_bias", fmt::format("{} is out of range [-100, 100]", v));
      sp.logit_bias[id] = static_cast<float>(v);
    }
  }
  if (present(j, "degeneration")) parse_degeneration(j["degeneration"], r);
  if (present(j, "dry_multiplier")) {
    sp.dry_multiplier = static_cast<float>(number(j, "dry_multiplier", 0, 100));
  }
  if (present(j, "dry_base")) sp.dry_base = static_cast<float>(number(j, "dry_base", 1, 10));
  if (present(j, "dry_allowed_length")) {
    sp.dry_allowed_length = static_cast<int32_t>(integer(j, "dry_allowed_length", 1, 1 << 20));
  }
  if (present(j, "dry_penalty_last_n")) {
    sp.dry_penalty_last_n = static_cast<int32_t>(integer(j, "dry_penalty_last_n", -1, INT32_MAX));
  }
  if (present(j, "dry_sequence_breakers")) {
    r.guard_settings.dry_breakers =
        breaker_list(j["dry_sequence_breakers"], "dry_sequence_breakers");
  }
  if (present(j, "stop")) r.params.stop = stop_list(j);
  if (present(j, "ignore_eos")) r.params.ignore_eos = boolean(j, "ignore_eos");
  if (present(j, "n")) r.n = static_cast<int>(integer(j, "n", 1, 16));
  if (present(j, "stream")) r.stream = boolean(j, "stream");
  if (present(j, "stream_options")) {
    const Json& so = j["stream_options"];
    if (!so.is_object()) bad("stream_options", "expected an object");
    if (!r.stream) bad("stream_options", "only allowed when stream is true");
    for (auto it = so.begin(); it != so.end(); ++it) {
      if (it.key() == "include_usage") {
        if (!it->is_boolean()) bad("stream_options.include_usage", "expected true or false");
        r.include_usage = it->get<bool>();
      } else if (it.key() != "include_obfuscation" && it.key() != "continuous_usage_stats") {
        bad("stream_options." + it.key(), "unrecognized stream option");
      }
    }
  }
  if (present(j, "cache_salt")) {
    r.cache_salt = string(j, "cache_salt");
    if (r.cache_salt.empty()) bad("cache_salt", "must not be empty");
  }
  if (r.logprobs) r.params.top_logprobs = r.top_logprobs;
  return r;
}

int64_t effective_max_tokens(const ApiRequest& r, int64_t prompt_tokens, int64_t context) {
  const int64_t room = context - prompt_tokens;
  if (room < 1) {
    fail(ErrorCode::kOutOfRange,
         "this model's maximum context length is {} tokens; the prompt has {} tokens, which "
         "leaves no room to generate",
         context, prompt_tokens);
  }
  if (r.max_tokens) {
    if (*r.max_tokens > room) {
      // OpenAI's wording: the client can shorten the prompt or lower max_tokens.
      fail(ErrorCode::kOutOfRange,
           "this model's maximum context length is {} tokens; the prompt has {} tokens and "
           "max_tokens is {}",
           context, prompt_tokens, *r.max_tokens);
    }
    return *r.max_tokens;
  }
  return r.endpoint == Endpoint::kCompletions ? std::min<int64_t>(16, room) : room;
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
