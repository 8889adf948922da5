// The OpenAI API's request and response shapes (completions and chat completions), kept apart
// from the HTTP plumbing so they can be tested alone. Parsing validates every field the way the
// OpenAI API documents it; a bad field throws loom::Error(kInvalidArgument) whose message names
// it, and the server answers 400 with {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/scheduler.h"

namespace loom::server {

using Json = nlohmann::ordered_json;

enum class Endpoint { kCompletions, kChatCompletions };

struct ApiRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  // completions: a string prompt or token ids; chat: messages rendered by the chat template.
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_ids;
  Json messages;
  RequestParams params;  // prompt filled in later (after templating/tokenizing)
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;
  std::optional<uint64_t> seed;
};

// Parses and validates a request body. `max_tokens_limit` caps max_tokens (default when absent:
// 16 for completions as OpenAI, the rest of the context for chat).
ApiRequest parse_request(Endpoint endpoint, const std::string& body, int64_t max_tokens_limit);

// {"error": {...}} bodies.
std::string error_body(const std::string& message, const std::string& type,
                       const std::optional<std::string>& param = std::nullopt,
                       const std::optional<std::string>& code = std::nullopt);

// One generated choice as the server accumulates it.
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
