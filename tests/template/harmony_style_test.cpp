// A template in the style of gpt-oss's harmony template (written for this test): a recursive
// macro turning JSON schemas into TypeScript types, loop variables reassigned inside the loop,
// namespaces carrying state across iterations, look-ahead slices, strftime_now, tojson and
// raise_exception. The npm package for gptoss ships no template, so this covers its constructs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "render_helper.h"

namespace loom::jinja {
namespace {

const char* kHarmonyStyle = R"JINJA(
{%- macro ts_type(spec) -%}
  {%- if spec.type == "array" -%}
    {{- ts_type(spec['items']) ~ "[]" -}}
  {%- elif spec.type == "object" -%}
    {{- "{ " -}}
    {%- for name, sub in spec.properties.items() -%}
      {{- name ~ ("" if name in (spec.required or []) else "?") ~ ": " ~ ts_type(sub) -}}
      {{- ", " if not loop.last else " " -}}
    {%- endfor -%}
    {{- "}" -}}
  {%- elif spec.enum is defined -%}
    {{- '"' ~ spec.enum|join('" | "') ~ '"' -}}
  {%- else -%}
    {{- spec.type -}}
  {%- endif -%}
{%- endmacro -%}
{{- "<|start|>system<|message|>Current date: " ~ strftime_now("%Y-%m-%d") ~ "<|end|>" -}}
{%- if tools -%}
  {{- "<|start|>developer<|message|>" -}}
  {%- for tool in tools -%}
    {%- set tool = tool.function -%}
    {{- "type " ~ tool.name ~ " = (_: " ~ ts_type(tool.parameters) ~ ") => any;\n" -}}
  {%- endfor -%}
  {{- "<|end|>" -}}
{%- endif -%}
{%- set last = namespace(name=none) -%}
{%- for m in messages -%}
  {%- if m.role == "assistant" and "tool_calls" in m -%}
    {%- set later = namespace(final=false) -%}
    {%- for f in messages[loop.index:] if f.role == "assistant" and "tool_calls" not in f -%}
      {%- set later.final = true -%}
    {%- endfor -%}
    {%- set call = m.tool_calls[0].function -%}
    {%- if m.thinking and not later.final -%}
      {{- "<|start|>assistant<|channel|>analysis<|message|>" ~ m.thinking ~ "<|end|>" -}}
    {%- endif -%}
    {{- "<|start|>assistant to=functions." ~ call.name ~ "<|channel|>commentary json<|message|>" ~ call.arguments|tojson ~ "<|call|>" -}}
    {%- set last.name = call.name -%}
  {%- elif m.role == "tool" -%}
    {%- if last.name is none -%}{{- raise_exception("tool message without a call") -}}{%- endif -%}
    {{- "<|start|>functions." ~ last.name ~ " to=assistant<|channel|>commentary<|message|>" ~ m.content|tojson ~ "<|end|>" -}}
  {%- else -%}
    {{- "<|start|>" ~ m.role ~ "<|message|>" ~ m.content ~ "<|end|>" -}}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}
)JINJA";

const char* kTools = R"([{"type": "function", "function": {"name": "get_weather", "parameters": {
  "type": "object", "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]},
  "days": {"type": "array", "items": {"type": "integer"}}}, "required": ["city"]}}}])";

class HarmonyStyle : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);  // strftime_now formats local time
    tzset();
    options_.now = 1700049600;  // 2023-11-15 12:00 UTC
  }

  std::string apply(const char* messages, bool add_generation_prompt) {
    ChatTemplate chat(kHarmonyStyle, nlohmann::ordered_json::object(), "harmony-style");
    ChatRequest request;
    request.messages = nlohmann::ordered_json::parse(messages);
    request.tools = nlohmann::ordered_json::parse(kTools);
    request.add_generation_prompt = add_generation_prompt;
    return chat.apply(request, options_);
  }

  RenderOptions options_;
};

constexpr const char* kHeader =
    "<|start|>system<|message|>Current date: 2023-11-15<|end|>"
    "<|start|>developer<|message|>type get_weather = (_: { city: string, units?: \"c\" | \"f\", "
    "days?: integer[] }) => any;\n<|end|>";

TEST_F(HarmonyStyle, DropsAnalysisOnceAFinalAnswerFollows) {
  std::string out = apply(R"([
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "thinking": "Need weather.", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo", "days": [1, 2]}}}]},
    {"role": "tool", "content": "{\"temp\": -3}"},
    {"role": "assistant", "content": "It is -3°C."}])",
                          false);
  EXPECT_EQ(out,
            std::string(kHeader) +
                "<|start|>user<|message|>Weather in Oslo?<|end|>"
                "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
                "{\"city\": \"Oslo\", \"days\": [1, 2]}<|call|>"
                "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"
                "\"{\\\"temp\\\": -3}\"<|end|>"
                "<|start|>assistant<|message|>It is -3°C.<|end|>");
}

TEST_F(HarmonyStyle, KeepsAnalysisBeforeAPendingToolCall) {
  std::string out = apply(R"([
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "thinking": "Need weather.", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
    {"role": "tool", "content": "cold"}])",
                          true);
  EXPECT_EQ(out,
            std::string(kHeader) +
                "<|start|>user<|message|>Weather in Oslo?<|end|>"
                "<|start|>assistant<|channel|>analysis<|message|>Need weather.<|end|>"
                "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
                "{\"city\": \"Oslo\"}<|call|>"
                "<|start|>functions.get_weather "
                "to=assistant<|channel|>commentary<|message|>\"cold\"<|end|>"
                "<|start|>assistant");
}

TEST_F(HarmonyStyle, ToolMessageWithoutCallRaises) {
  try {
    apply(R"([{"role": "tool", "content": "x"}])", false);
    FAIL() << "expected raise_exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tool message without a call"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace loom::jinja
