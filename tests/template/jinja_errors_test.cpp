// Errors name the template, line and column; hostile templates hit limits instead of hanging or
// overflowing the stack; rendering is thread-safe; the chat-template helper's extra behaviour.
#include <gtest/gtest.h>

#include <thread>

#include "render_helper.h"

namespace loom::jinja {
namespace {

using testing::render;
using testing::render_error;

std::string parse_error(const std::string& source) {
  try {
    Template::parse(source, "tpl");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(JinjaErrors, SyntaxErrorNamesTemplateLineAndColumn) {
  std::string msg = parse_error("line one\n  {% if %}x{% endif %}");
  EXPECT_TRUE(contains(msg, "template 'tpl', line 2, column 9")) << msg;
}

TEST(JinjaErrors, UnknownFilterAndTestAreParseErrors) {
  EXPECT_TRUE(contains(parse_error("{{ x|nope }}"), "no filter named 'nope'"));
  EXPECT_TRUE(contains(parse_error("\n\n{{ x is nope }}"), "line 3"));
  EXPECT_TRUE(contains(parse_error("{{ x is nope }}"), "no test named 'nope'"));
}

TEST(JinjaErrors, UnclosedConstructs) {
  EXPECT_TRUE(contains(parse_error("{% for x in y %}abc"), "never closed"))
      << parse_error("{% for x in y %}abc");
  EXPECT_TRUE(contains(parse_error("{% if x %}{% for y in x %}{% endif %}"), "endif"));
  EXPECT_TRUE(contains(parse_error("{{ x "), "not closed"));
  EXPECT_TRUE(contains(parse_error("{% if x "), "not closed"));
  EXPECT_TRUE(contains(parse_error("{# comment"), "comment"));
  EXPECT_TRUE(contains(parse_error("{{ 'abc }}"), "unterminated string"));
}

TEST(JinjaErrors, MisplacedAndUnknownTags) {
  EXPECT_TRUE(contains(parse_error("{% endfor %}"), "'endfor'"));
  EXPECT_TRUE(contains(parse_error("{% include 'x' %}"), "unknown tag 'include'"));
  EXPECT_TRUE(contains(parse_error("{% break %}"), "outside of a loop"));
  EXPECT_NE(parse_error("{{ }}"), "");
  EXPECT_NE(parse_error("{{ 1 + }}"), "");
  EXPECT_NE(parse_error("{% set 1 = 2 %}"), "");
}

TEST(JinjaErrors, UndefinedAttributeChainsFailLikeJinja2) {
  EXPECT_TRUE(contains(render_error("{{ missing.x }}"), "'missing' is undefined"));
  EXPECT_TRUE(
      contains(render_error("{{ a.b.c }}", R"({"a":{}})"), "'dict object' has no attribute 'b'"));
  EXPECT_TRUE(contains(render_error("{{ missing + 1 }}"), "'missing' is undefined"));
  EXPECT_TRUE(contains(render_error("{{ missing() }}"), "'missing' is undefined"));
  EXPECT_TRUE(contains(render_error("\n{{ a.b.c }}", R"({"a":{}})"), "line 2"));
}

TEST(JinjaErrors, TypeErrors) {
  EXPECT_TRUE(contains(render_error("{{ 'a' + 1 }}"), "unsupported operand"));
  EXPECT_TRUE(contains(render_error("{{ 1 / 0 }}"), "division by zero"));
  EXPECT_TRUE(contains(render_error("{{ 1 < 'a' }}"), "not supported"));
  EXPECT_TRUE(contains(render_error("{{ 1 in 'abc' }}"), "requires string"));
  EXPECT_TRUE(contains(render_error("{% set x = 1 %}{% set x.y = 2 %}"), "non-namespace"));
  EXPECT_TRUE(contains(render_error("{{ 9223372036854775807 + 1 }}"), "overflow"));
}

TEST(JinjaErrors, RaiseExceptionKeepsTheMessageVerbatim) {
  ErrorCode code{};
  std::string msg = render_error(
      "ok\n{{ raise_exception('Roles must alternate user/assistant/...') }}", "{}", {}, &code);
  EXPECT_EQ(code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(msg, "Roles must alternate user/assistant/...")) << msg;
  EXPECT_TRUE(contains(msg, "line 2")) << msg;
}

TEST(JinjaErrors, MacroArgumentErrors) {
  EXPECT_TRUE(contains(render_error("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}"),
                       "takes not more than 1"));
  EXPECT_TRUE(contains(render_error("{% macro f(a) %}{% endmacro %}{{ f(b=1) }}"),
                       "no keyword argument 'b'"));
}

// ---- limits ----

TEST(JinjaLimits, EndlessLoopRunsOutOfSteps) {
  RenderOptions options;
  options.limits.max_steps = 100000;
  ErrorCode code{};
  std::string msg =
      render_error("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
                   "{}", options, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
  EXPECT_TRUE(contains(msg, "steps")) << msg;
}

TEST(JinjaLimits, RangeIsCappedLikeTheSandbox) {
  ErrorCode code{};
  EXPECT_TRUE(
      contains(render_error("{{ range(1000000000000)|length }}", "{}", {}, &code), "range"));
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
  EXPECT_EQ(render("{{ range(100000)|length }}"), "100000");
}

TEST(JinjaLimits, InfiniteRecursionIsAnErrorNotACrash) {
  ErrorCode code{};
  std::string msg =
      render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}", {}, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
  EXPECT_TRUE(contains(msg, "recursion")) << msg;
}

TEST(JinjaLimits, DeepNestingIsAParseError) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_TRUE(contains(parse_error(deep), "nests deeper"));
  std::string deep_blocks;
  for (int i = 0; i < 500; ++i) deep_blocks += "{% if true %}";
  EXPECT_TRUE(contains(parse_error(deep_blocks), "nests deeper"));
  EXPECT_TRUE(contains(parse_error("{{ " + std::string(5000, '-') + "1 }}"), "nests deeper"));
  EXPECT_TRUE(contains(parse_error("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}"),
                       "nests deeper"));
}

TEST(JinjaLimits, OutputIsBounded) {
  RenderOptions options;
  options.limits.max_output_bytes = 10000;
  ErrorCode code{};
  render_error("{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}", "{}", options, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
  render_error("{{ 'x' * 100000000000 }}", "{}", options, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
}

TEST(JinjaLimits, HugeWidthsAreRefused) {
  EXPECT_NE(render_error("{{ 'a\nb'|indent(1000000000) }}"), "");
  EXPECT_NE(render_error("{{ [1]|tojson(indent=1000000000) }}"), "");
  RenderOptions options;
  options.limits.max_output_bytes = 1000;
  ErrorCode code{};
  render_error("{{ range(500)|list|tojson(indent=4) }}", "{}", options, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
  EXPECT_EQ(render("{{ 2.5|round(1000) }}"), "2.5");
}

TEST(JinjaLimits, DeeplyNestedValuesAreRefused) {
  ErrorCode code{};
  std::string msg = render_error(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor "
      "%}{{ ns.x }}",
      "{}", {}, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
  EXPECT_TRUE(contains(msg, "nests deeper")) << msg;
}

TEST(JinjaLimits, NamespaceCyclesDoNotHangOrLeak) {
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns.self.self is defined }}"),
            "True");
  ErrorCode code{};
  render_error("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}", "{}", {}, &code);
  EXPECT_EQ(code, ErrorCode::kOutOfRange);
}

// ---- concurrency ----

TEST(JinjaThreads, OneTemplateRendersConcurrently) {
  Template t = Template::parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ "
      "m.content|upper }}{% endfor %}{{ ns.n }}");
  Dict context = testing::context_from(R"({"messages":[{"content":"a"},{"content":"b"}]})");
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) results[i] = t.render(context);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) EXPECT_EQ(r, "AB2");
}

// ---- chat template helper ----

TEST(ChatTemplateHelper, SelectsNamedTemplates) {
  auto config = nlohmann::ordered_json::parse(
      R"({"chat_template":[{"name":"default","template":"D"},{"name":"tool_use","template":"T"}]})");
  EXPECT_EQ(select_chat_template(config), "D");
  EXPECT_EQ(select_chat_template(config, "", true), "T");
  EXPECT_EQ(select_chat_template(config, "tool_use"), "T");
  EXPECT_EQ(select_chat_template(config, "other"), std::nullopt);
  EXPECT_EQ(select_chat_template(nlohmann::ordered_json::parse(R"({"chat_template":"S"})")), "S");
  EXPECT_EQ(select_chat_template(nlohmann::ordered_json::parse("{}")), std::nullopt);
}

TEST(ChatTemplateHelper, SpecialTokensFromConfig) {
  auto config = nlohmann::ordered_json::parse(
      R"({"bos_token":{"__type":"AddedToken","content":"<s>"},"eos_token":"</s>","pad_token":null,
          "chat_template":"{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ tools }}|{{ add_generation_prompt }}"})");
  ChatTemplate chat = ChatTemplate::from_tokenizer_config(config);
  EXPECT_EQ(chat.apply(ChatRequest{}), "<s>|</s>|False|None|False");
  ChatRequest with_extra;
  with_extra.extra["bos_token"] = "B";
  EXPECT_EQ(chat.apply(with_extra), "B|</s>|False|None|False");
}

TEST(ChatTemplateHelper, MessagesKeepKeyOrder) {
  ChatTemplate chat("{{ messages[0]|tojson }}", nlohmann::ordered_json::object());
  ChatRequest request;
  request.messages =
      nlohmann::ordered_json::parse(R"([{"role":"user","content":"x","z":1,"a":2}])");
  EXPECT_EQ(chat.apply(request), R"({"role": "user", "content": "x", "z": 1, "a": 2})");
}

TEST(ChatTemplateHelper, ContinueFinalMessageCutsAfterTheLastMessage) {
  ChatTemplate chat("{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}",
                    nlohmann::ordered_json::object());
  ChatRequest request;
  request.messages = nlohmann::ordered_json::parse(
      R"([{"role":"user","content":"hi"},{"role":"assistant","content":"Sure, "}])");
  request.continue_final_message = true;
  // The template kept the trailing space, so it stays (as in transformers).
  EXPECT_EQ(chat.apply(request), "<user>hi</s><assistant>Sure, ");
  request.messages.back()["content"] = "Sure";
  EXPECT_EQ(chat.apply(request), "<user>hi</s><assistant>Sure");
  request.add_generation_prompt = true;
  EXPECT_THROW(chat.apply(request), Error);
}

TEST(ChatTemplateHelper, MissingTemplateIsNotFound) {
  try {
    ChatTemplate::from_tokenizer_config(nlohmann::ordered_json::parse("{}"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace loom::jinja
