// Tool calling: the model's own tool-call syntax, as a grammar that constrains its calls and
// as a parser that turns its output back into OpenAI `tool_calls`.
//
// Formats (chosen from the chat template's text, detect_tool_format):
//   kHermes      Hermes, Qwen 2.5, Qwen 3: <tool_call>{"name": N, "arguments": {...}}</tool_call>,
//                one block per call. Also the format for templates with no tool syntax of
//                their own (the tools are then described in a system message).
//   kLlama3Json  Llama 3.1-3.3: {"name": N, "parameters": {...}} as the whole reply; several
//                calls separated by ";" or whitespace.
//   kMistral     [TOOL_CALLS][{"name": N, "arguments": {...}}, ...]
//   kDeepSeekV3  <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>N
//                ```json {...} ```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// Markers that are special tokens in the vocabulary are matched as those tokens.
//
// The grammar (tool_call_grammar): with tool_choice "required" or a named function it holds
// from the first token; with "auto" it is lazy (ConstraintSpec::triggers): free text until the
// model opens a call, then every call's arguments follow the tool's JSON Schema exactly, and
// after the last call only the end of the reply may come. parallel_tool_calls false: one call.
//
// Parsing (parse_tool_output) works on partial text too, for streaming: content before the
// first call (a possible start of a marker held back), then each call's name and its
// arguments' text so far.
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "app/chat_templates.h"
#include "engine/constraint.h"
#include "grammar/json_schema.h"

namespace loom::tokenizer {
class Tokenizer;
}

namespace loom::app {

enum class ToolFormat { kHermes, kLlama3Json, kMistral, kDeepSeekV3 };

std::string_view tool_format_name(ToolFormat f);
// From the chat template's source text; kHermes when it shows no syntax of its own.
ToolFormat detect_tool_format(std::string_view template_source);
// Whether the template renders the `tools` variable at all (else describe_tools() goes into
// a system message).
bool template_renders_tools(std::string_view template_source);
// A system-message text that lists the tools and the Hermes call syntax, for templates that do
// not render tools themselves.
std::string describe_tools(const nlohmann::ordered_json& tools);

// An assistant turn that only calls tools has content null. Templates that test for it
// (DeepSeek V3: `message['content'] is none`) keep null; the others get "" (Qwen 3 tests it
// with `in` and string methods, which fail on none, in transformers too).
void null_content_for_template(nlohmann::ordered_json& messages, std::string_view template_source);

// Renders a chat request whose history may hold assistant tool calls. Their arguments arrive as
// JSON text (OpenAI) and go to the template as objects (transformers' convention, which Qwen
// and Llama templates expect); a template that fails on objects (DeepSeek V3 concatenates the
// arguments as a string) is rendered again with the text. Null content: see above.
std::string render_chat(const ModelChatTemplates& templates, jinja::ChatRequest request);

struct ToolChoice {
  enum class Mode { kNone, kAuto, kRequired, kFunction } mode = Mode::kAuto;
  std::string function;  // kFunction
};

struct ToolGrammar {
  std::shared_ptr<grammar::Grammar> grammar;
  std::vector<ConstraintTrigger> triggers;  // empty: constrained from the first token
};

// `tools`: the request's list ({"type": "function", "function": {name, parameters, ...}}).
// Throws kInvalidArgument / kUnsupported naming the tool whose parameters schema cannot be
// compiled (with the schema's pointer), kInvalidArgument for a named function not in tools.
ToolGrammar tool_call_grammar(ToolFormat format, const nlohmann::ordered_json& tools,
                              const ToolChoice& choice, bool parallel,
                              const tokenizer::Tokenizer* tok,
                              const grammar::JsonSchemaOptions& options);

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON text (partial while !complete)
  bool complete = false;
};

struct ToolOutput {
  std::string content;  // text before the calls (final: all text that is not a call)
  std::vector<ParsedToolCall> calls;
  bool started = false;  // a call has been opened
  bool valid = true;     // the calls parsed (final: all of them complete)
};

// `text` is the output so far; `final` when generation has ended. Text that is not a
// well-formed call (e.g. cut off by max_tokens) stays content when final.
ToolOutput parse_tool_output(ToolFormat format, std::string_view text, bool final);

}  // namespace loom::app
