// Tokenizer-only subcommands; they read the model's tokenizer and chat template, never its
// weights, so they answer at once for any model size:
//   loom tokenize -m MODEL [--special]          UTF-8 text on stdin -> JSON array of ids
//   loom detokenize -m MODEL [--skip-special]   JSON array of ids on stdin -> text
//   loom chat-template -m MODEL [--add-generation-prompt]
//                                               JSON array of messages on stdin -> rendering
// MODEL is a .gguf file or a HF folder. Text output is written exactly, with no newline added,
// so that it can be compared byte for byte; the id array ends with a newline.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"

namespace loom::cli {

namespace {

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), {});
}

nlohmann::ordered_json parse_stdin_json(const std::string& what) {
  const std::string text = read_stdin();
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message already names the byte and the unexpected token.
    fail(ErrorCode::kInvalidArgument, "stdin: expected {}: invalid JSON: {}", what, e.what());
  }
}

// These commands read a GGUF's header only. Large files are otherwise read whole into memory
// for decode speed (core/mapped_file.cpp); LOOM_MMAP=1 keeps them mapped, so only the pages of
// the metadata are ever touched.
app::TokenizerModel load(const std::string& path) {
  ::setenv("LOOM_MMAP", "1", /*overwrite=*/0);
  return app::load_tokenizer_model(path);
}

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

struct TokenizeArgs {
  std::string model;
  bool special = false;
};

int run_tokenize(const TokenizeArgs& a) {
  app::TokenizerModel m = load(a.model);
  const tokenizer::Tokenizer& tok = m.require_tokenizer();
  const std::vector<int32_t> ids = tok.encode(read_stdin(), a.special);
  write_stdout(fmt::format("[{}]\n", fmt::join(ids, ", ")));
  return 0;
}

struct DetokenizeArgs {
  std::string model;
  bool skip_special = false;
};

int run_detokenize(const DetokenizeArgs& a) {
  app::TokenizerModel m = load(a.model);
  const tokenizer::Tokenizer& tok = m.require_tokenizer();
  const nlohmann::ordered_json j = parse_stdin_json("a JSON array of token ids");
  if (!j.is_array()) {
    fail(ErrorCode::kInvalidArgument, "stdin: expected a JSON array of token ids, got {}",
         j.type_name());
  }
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& v = j[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        v.get<int64_t>() >= static_cast<int64_t>(tok.vocab_size())) {
      fail(ErrorCode::kInvalidArgument,
           "stdin: element {} ({}) is not a token id (an integer in [0, {}))", i, v.dump(),
           tok.vocab_size());
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  write_stdout(tok.decode(ids, a.skip_special));
  return 0;
}

struct ChatTemplateArgs {
  std::string model;
  bool add_generation_prompt = false;
};

int run_chat_template(const ChatTemplateArgs& a) {
  // The stdin is checked before the model is read so that a malformed request fails fast.
  const nlohmann::ordered_json j = parse_stdin_json("a JSON array of messages");
  if (!j.is_array()) {
    fail(ErrorCode::kInvalidArgument, "stdin: expected a JSON array of messages, got {}",
         j.type_name());
  }
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_object()) {
      fail(ErrorCode::kInvalidArgument, "stdin: message {} is {}, not an object", i,
           j[i].type_name());
    }
  }
  app::TokenizerModel m = load(a.model);
  jinja::ChatRequest req;
  req.messages = j;
  req.add_generation_prompt = a.add_generation_prompt;
  write_stdout(m.chat_templates.apply(req));
  return 0;
}

}  // namespace

Command add_tokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "tokenize", "Print the token ids of UTF-8 text read from stdin, as a JSON array");
  auto a = std::make_shared<TokenizeArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_flag("--special", a->special,
                "add the special tokens of the post-processor (e.g. BOS), as HF "
                "add_special_tokens=True");
  return {cmd, [a] { return run_tokenize(*a); }};
}

Command add_detokenize(CLI::App& app) {
  auto* cmd = app.add_subcommand("detokenize",
                                 "Print the text of a JSON array of token ids read from stdin");
  auto a = std::make_shared<DetokenizeArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_flag("--skip-special", a->skip_special, "leave out special tokens (e.g. </s>)");
  return {cmd, [a] { return run_detokenize(*a); }};
}

Command add_chat_template(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "chat-template",
      "Render a JSON array of messages read from stdin with the model's chat template");
  auto a = std::make_shared<ChatTemplateArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_flag("--add-generation-prompt", a->add_generation_prompt,
                "end with the prompt for the assistant's reply");
  return {cmd, [a] { return run_chat_template(*a); }};
}

}  // namespace loom::cli
