// libFuzzer target: arbitrary bytes as a chat template, parsed and rendered against a
// conversation that exercises what real templates read (roles, tool calls, tools, documents,
// special tokens, content blocks). Parsing and rendering must end in text or a loom::Error,
// within the render limits (steps, depth, output bytes): never a crash, hang or blow-up.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "template/chat_template.h"

namespace {

const nlohmann::ordered_json& messages() {
  static const auto m = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2+2? <s> {{ x }}"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
      "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "4"},
    {"role": "assistant", "content": "4", "reasoning_content": "easy"},
    {"role": "user", "content": [{"type": "text", "text": "and 3+3?"}, {"type": "image"}]}
  ])");
  return m;
}

const nlohmann::ordered_json& tools() {
  static const auto t = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {
    "name": "add", "description": "Adds", "parameters": {"type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "number", "enum": [1, 2.5]}},
    "required": ["a"]}}}])");
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source = loom::fuzz::as_text(data, size);
  try {
    loom::jinja::ChatTemplate tmpl(
        source, {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}}, "fuzz");
    loom::jinja::RenderOptions options;
    options.now = 1700000000;  // strftime_now: deterministic
    // Production limits, but fewer steps: a unit must finish well inside libFuzzer's timeout.
    options.limits.max_steps = 200'000;
    for (int variant = 0; variant < 2; ++variant) {
      loom::jinja::ChatRequest request;
      request.messages = messages();
      request.add_generation_prompt = variant == 0;
      if (variant == 1) {
        request.tools = tools();
        request.documents = nlohmann::ordered_json::parse(R"([{"title": "t", "text": "d"}])");
        request.extra = {{"enable_thinking", false}};
      }
      try {
        (void)tmpl.apply(request, options);
      } catch (const loom::Error& e) {
        loom::fuzz::check_error(e);
      }
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
