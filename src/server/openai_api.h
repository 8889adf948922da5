// The OpenAI API's request and response shapes (completions and chat completions), kept apart
// from the HTTP plumbing so they can be tested and fuzzed alone. Parsing validates every field
// the way the OpenAI API documents it; a bad field throws loom::Error(kInvalidArgument) whose
// message names it, and the server answers 400 with {"error": {"message", "type", "param",
// "code"}}.
//
// No documented parameter is dropped in silence: each one is honoured, or accepted because it
// cannot change the output (user, metadata, service_tier "auto"), or refused with a 400 that
// names it (e.g. audio). Unknown
// fields are refused as OpenAI does ("Unrecognized request argument"). vLLM's common
// extensions are honoured: top_k, min_p, repetition_penalty, ignore_eos, cache_salt,
// chat_template_kwargs, add_generation_prompt, continue_final_message; llama.cpp's dry_*
// sampler fields; and loom's grammar, regex and degeneration.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/repetition_guard.h"
#include "engine/scheduler.h"

namespace loom::server {

using Json = nlohmann::ordered_json;

// Request bodies nest at most this deep (objects and arrays); deeper is a 400, checked while
// parsing, so no later step (copying, rendering) ever recurses over a hostile depth.
inline constexpr int kMaxJsonDepth = 128;

// Parses a request body: kInvalidArgument for invalid JSON, a non-object or a body nested
// deeper than kMaxJsonDepth.
Json parse_json_body(std::string_view body);

enum class Endpoint { kCompletions, kChatCompletions };

struct ApiRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  // completions: a string prompt or token ids; chat: messages rendered by the chat template.
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_ids;
  // chat: the messages, with every content given as parts turned into text (see
  // normalize_content); the template renders them with `tools` (tool_choice "none": the model
  // sees the tools but no call is parsed) and `template_kwargs`.
  Json messages;
  Json tools;  // null when absent
  Json template_kwargs = Json::object();
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  // max_tokens / max_completion_tokens as given; absent: 16 for completions (OpenAI's
  // default), and for chat the rest of the context ("until a stop or the end of the context").
  std::optional<int64_t> max_tokens;
  RequestParams params;  // prompt and max_tokens filled in once the prompt is tokenized
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;
  std::optional<uint64_t> seed;
  std::string cache_salt;  // separates tenants in the prefix cache (vLLM's name)

  // Structured output: response_format, or loom's `grammar` (GBNF) / `regex` extensions.
  enum class Format { kText, kJsonObject, kJsonSchema, kGrammar, kRegex };
  Format format = Format::kText;
  Json schema;         // kJsonSchema
  std::string source;  // kGrammar, kRegex
  // Tools: tool_choice ("none", "auto", "required", "function" with tool_function) and
  // parallel_tool_calls. tools_called: the output is parsed for calls (tools given, choice
  // not none).
  std::string tool_choice = "auto";
  std::string tool_function;
  bool parallel_tool_calls = true;
  // loom's `degeneration` extension: {"action": "stop" | "penalize" | "off", and for penalize
  // the DRY settings multiplier, base, allowed_length, last_n, sequence_breakers}. No action:
  // the server's default (--guard). llama.cpp's top-level dry_* fields set the same DRY
  // settings in the sampler directly.
  std::optional<GuardAction> guard_action;
  app::GuardChoice guard_settings;
  bool tools_called() const { return !tools.is_null() && !tools.empty() && tool_choice != "none"; }
};

// Parses and validates a request body. Throws loom::Error(kInvalidArgument) naming the field;
// kUnsupported for a documented feature loom does not offer (the server answers 400 for both).
ApiRequest parse_request(Endpoint endpoint, std::string_view body);

// The max_tokens a request runs with once its prompt has `prompt_tokens` tokens and the
// context holds `context` (see ApiRequest::max_tokens). kOutOfRange (OpenAI's
// context_length_exceeded) when an explicit max_tokens does not fit or the prompt fills the
// context.
int64_t effective_max_tokens(const ApiRequest& r, int64_t prompt_tokens, int64_t context);

// Chat content given as a list of parts ([{"type": "text", "text": ...}], as SDKs, LangChain and
// chat UIs send it) becomes the parts' text joined by "\n", as vLLM does for text-only
// templates. A non-text part (image_url, input_audio, file) is kUnsupported naming the message
// and part: loom's text models take no images.
void normalize_content(Json& messages);

// {"error": {...}} bodies.
std::string error_body(const std::string& message, const std::string& type,
                       const std::optional<std::string>& param = std::nullopt,
                       const std::optional<std::string>& code = std::nullopt);

struct ChoiceResult {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<std::vector<std::pair<int32_t, float>>> top_logprobs;
  std::string finish_reason;
  int64_t completion_tokens = 0;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};

Json usage_json(const Usage& u);

}  // namespace loom::server
