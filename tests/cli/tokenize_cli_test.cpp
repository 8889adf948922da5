// `loom tokenize`, `loom detokenize` and `loom chat-template` through the real binary, with text
// piped on stdin, for a HF folder and for GGUF files (a llama.cpp vocabulary and a GGUF that
// `loom convert` wrote): these are the contracts external checks call.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string out;  // stdout only
  std::string err;
};

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / "loom-tokenize-cli-test";
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `loom ARGS` with `input` on stdin.
Result run(const std::string& args, const std::string& input) {
  static int counter = 0;
  const fs::path dir = temp_dir();
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const fs::path in = dir / ("in-" + tag), out = dir / ("out-" + tag), err = dir / ("err-" + tag);
  std::ofstream(in, std::ios::binary) << input;
  const std::string cmd = std::string(LOOM_BIN) + " " + args + " < '" + in.string() + "' > '" +
                          out.string() + "' 2> '" + err.string() + "'";
  int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  fs::remove(in);
  fs::remove(out);
  fs::remove(err);
  return r;
}

std::string model(const std::string& name) {
  return std::string(LOOM_TEST_DATA_DIR) + "/ref/models/" + name;
}
const std::string kSpmGguf =
    std::string(LOOM_TEST_DATA_DIR) + "/ref/llamacpp-vocab/ggml-vocab-llama-spm.gguf";

nlohmann::json reference(const std::string& name) {
  return nlohmann::json::parse(slurp(model(name) + "/reference.json"));
}

TEST(CliTokenize, HfFolderMatchesReferenceIds) {
  for (const char* name : {"llama-tiny-llama2vocab", "qwen3-tiny-qwen3vocab"}) {
    const nlohmann::json ref = reference(name);
    // The reference prompt ids were made with add_special_tokens=True (BOS for llama2).
    Result r = run("tokenize --special -m " + model(name), ref["prompt_text"].get<std::string>());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out), ref["prompt_ids"]) << name;
  }
  // Without --special there is no BOS.
  Result plain = run("tokenize -m " + model("llama-tiny-llama2vocab"), "Once upon a time");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(nlohmann::json::parse(plain.out), nlohmann::json::array({5713, 3714, 264, 727}));
}

TEST(CliDetokenize, HfFolderRoundTrip) {
  const nlohmann::json ref = reference("qwen3-tiny-qwen3vocab");
  Result r = run("detokenize -m " + model("qwen3-tiny-qwen3vocab"), ref["greedy_ids"].dump());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ref["greedy_text"].get<std::string>());  // exact: no newline added

  Result special = run("detokenize -m " + model("llama-tiny-llama2vocab"), "[1, 5713, 3714]");
  EXPECT_EQ(special.out, "<s> Once upon");
  Result skipped =
      run("detokenize --skip-special -m " + model("llama-tiny-llama2vocab"), "[1, 5713, 3714]");
  EXPECT_EQ(skipped.out, "Once upon");
}

TEST(CliTokenize, LlamaCppGgufVocabulary) {
  Result r = run("tokenize --special -m " + kSpmGguf, "Hello world");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::array({1, 15043, 3186}));
  Result back = run("detokenize -m " + kSpmGguf, r.out);
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, "<s> Hello world");
}

TEST(CliChatTemplate, HfFolder) {
  const std::string messages =
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])";
  Result r =
      run("chat-template --add-generation-prompt -m " + model("qwen3-tiny-qwen3vocab"), messages);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  Result no_prompt = run("chat-template -m " + model("qwen3-tiny-qwen3vocab"), messages);
  EXPECT_EQ(no_prompt.out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(CliChatTemplate, TemplateErrorsComeBackWithTheirMessage) {
  const fs::path dir = temp_dir() / "raising-template";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"chat_template": "{% if messages[0].role != 'user' %}{{ raise_exception('first )"
         R"(message must be from the user') }}{% endif %}{{ messages[0].content }}"})";
  Result ok = run("chat-template -m " + dir.string(), R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "x");
  Result raised =
      run("chat-template -m " + dir.string(), R"([{"role": "system", "content": "x"}])");
  EXPECT_NE(raised.exit_code, 0);
  EXPECT_NE(raised.err.find("first message must be from the user"), std::string::npos)
      << raised.err;
}

TEST(CliTokenize, BadInputIsExitCode2) {
  const std::string qwen = model("qwen3-tiny-qwen3vocab");
  Result not_json = run("detokenize -m " + qwen, "[1, 2");
  EXPECT_EQ(not_json.exit_code, 2);
  EXPECT_NE(not_json.err.find("invalid JSON"), std::string::npos) << not_json.err;

  Result not_ids = run("detokenize -m " + qwen, R"([1, "two"])");
  EXPECT_EQ(not_ids.exit_code, 2);
  EXPECT_NE(not_ids.err.find("element 1"), std::string::npos) << not_ids.err;

  Result out_of_vocab = run("detokenize -m " + qwen, "[99999999]");
  EXPECT_EQ(out_of_vocab.exit_code, 2);

  Result not_messages = run("chat-template -m " + qwen, R"({"role": "user"})");
  EXPECT_EQ(not_messages.exit_code, 2);
  EXPECT_NE(not_messages.err.find("JSON array of messages"), std::string::npos) << not_messages.err;

  Result bad_message = run("chat-template -m " + qwen, R"([{"role": "user"}, 3])");
  EXPECT_EQ(bad_message.exit_code, 2);
  EXPECT_NE(bad_message.err.find("message 1"), std::string::npos) << bad_message.err;

  Result missing = run("tokenize -m /nonexistent/model.gguf", "x");
  EXPECT_EQ(missing.exit_code, 4) << missing.err;
}

// `loom convert` writes the vocabulary and chat template: the GGUF tokenizes, renders and
// generates exactly as the HF folder it came from.
TEST(CliConvertedGguf, SameTokensTemplateAndGreedyTextAsTheHfFolder) {
  for (const char* name : {"llama-tiny-llama2vocab", "qwen3-tiny-qwen3vocab"}) {
    const std::string gguf = (temp_dir() / (std::string(name) + "-f32.gguf")).string();
    Result conv = run("convert " + model(name) + " --type f32 -o " + gguf, "");
    ASSERT_EQ(conv.exit_code, 0) << conv.err;
    const nlohmann::json ref = reference(name);
    const std::string prompt = ref["prompt_text"];

    Result ids = run("tokenize --special -m " + gguf, prompt);
    ASSERT_EQ(ids.exit_code, 0) << ids.err;
    EXPECT_EQ(nlohmann::json::parse(ids.out), ref["prompt_ids"]) << name;
    Result text = run("detokenize -m " + gguf, ref["greedy_ids"].dump());
    EXPECT_EQ(text.out, ref["greedy_text"].get<std::string>()) << name;

    const std::string n = std::to_string(ref["greedy_ids"].size());
    const std::string args = " -p '" + prompt + "' --temp 0 --ignore-eos -n " + n + " -t 2";
    Result from_gguf = run("run -m " + gguf + args, "");
    Result from_hf = run("run -m " + model(name) + args, "");
    ASSERT_EQ(from_gguf.exit_code, 0) << from_gguf.err;
    EXPECT_EQ(from_gguf.out, ref["greedy_text"].get<std::string>() + "\n") << name;
    EXPECT_EQ(from_gguf.out, from_hf.out) << name;

    const std::string messages = R"([{"role": "user", "content": "Hi"}])";
    Result hf_chat = run("chat-template --add-generation-prompt -m " + model(name), messages);
    Result gguf_chat = run("chat-template --add-generation-prompt -m " + gguf, messages);
    EXPECT_EQ(gguf_chat.exit_code, hf_chat.exit_code) << gguf_chat.err << hf_chat.err;
    EXPECT_EQ(gguf_chat.out, hf_chat.out) << name;
    std::filesystem::remove(gguf);
  }
}

}  // namespace
