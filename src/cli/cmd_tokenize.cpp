// Tokenizer-only subcommands; they read the model's tokenizer and chat template, never its
// weights, so they answer at once for any model size:
//   loom tokenize -m MODEL [--special]          UTF-8 text on stdin -> JSON array of ids
//   loom detokenize -m MODEL [--skip-special]   JSON array of ids on stdin -> text
//   loom chat-template -m MODEL [--add-generation-prompt]
//                                               JSON array of messages on stdin -> rendering
//   loom guard-check -m MODEL [--json]          text on stdin -> does the degeneration guard
//                                               fire on it, and where (engine/degeneration.h)
// MODEL is a .gguf file or a HF folder. Text output is written exactly, with no newline added,
// so that it can be compared byte for byte; the id array ends with a newline.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"
#include "engine/degeneration.h"
#include "tokenizer/tokenizer.h"

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

struct GuardCheckArgs {
  std::string model;
  bool json = false;
  std::vector<std::string> files;
};

// The text is tokenized whole (as a model would have produced it, without special tokens) and
// the tokens go through the detector one at a time with the text each one completes, as in
// generation.
nlohmann::ordered_json guard_check(const tokenizer::Tokenizer& tok, const std::string& text) {
  const std::vector<int32_t> ids = tok.encode(text, /*add_special_tokens=*/false);
  tokenizer::IncrementalDecoder detok(tok, /*skip_special_tokens=*/false);
  DegenerationDetector detector;
  std::optional<Degeneration> found;
  for (const int32_t id : ids) {
    found = detector.push(id, detok.step(id));
    if (found) break;
  }
  nlohmann::ordered_json j;
  j["tokens"] = ids.size();
  j["flagged"] = found.has_value();
  j["at_token"] = found ? found->at_token : -1;
  j["at_char"] = found ? found->at_char : -1;
  j["period_tokens"] = found ? nlohmann::ordered_json(found->period_tokens) : nullptr;
  if (found) {
    j["period_chars"] = found->period_chars;
    j["loop_start_token"] = found->loop_start;
  }
  return j;
}

std::string describe_guard_check(const nlohmann::ordered_json& j) {
  if (!j["flagged"].get<bool>())
    return fmt::format("clean: {} tokens, no loop", j["tokens"].dump());
  if (j["period_tokens"].get<int64_t>() > 0) {
    return fmt::format(
        "flagged at token {} (character {}): a loop of {} tokens repeated from token {}",
        j["at_token"].dump(), j["at_char"].dump(), j["period_tokens"].dump(),
        j["loop_start_token"].dump());
  }
  return fmt::format(
      "flagged at token {} (character {}): a run of a {}-character unit from token {}",
      j["at_token"].dump(), j["at_char"].dump(), j["period_chars"].dump(),
      j["loop_start_token"].dump());
}

int run_guard_check(const GuardCheckArgs& a) {
  app::TokenizerModel m = load(a.model);
  const tokenizer::Tokenizer& tok = m.require_tokenizer();
  if (a.files.empty()) {
    const nlohmann::ordered_json j = guard_check(tok, read_stdin());
    write_stdout((a.json ? j.dump() : describe_guard_check(j)) + "\n");
    return 0;
  }
  // Each file is a document of its own (the detector starts afresh), one line each.
  int flagged = 0;
  for (const std::string& path : a.files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorCode::kNotFound, "{}: cannot open", path);
    nlohmann::ordered_json j =
        guard_check(tok, std::string(std::istreambuf_iterator<char>(in), {}));
    flagged += j["flagged"].get<bool>() ? 1 : 0;
    if (a.json) {
      nlohmann::ordered_json line;
      line["file"] = path;
      line.update(j);
      write_stdout(line.dump() + "\n");
    } else {
      write_stdout(fmt::format("{}: {}\n", path, describe_guard_check(j)));
    }
  }
  if (!a.json) write_stdout(fmt::format("{} of {} files flagged\n", flagged, a.files.size()));
  return 0;
}

}  // namespace

Command add_guard_check(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "guard-check",
      "Run the degeneration guard over text read from stdin, tokenized with the model's "
      "tokenizer; says whether and where it would stop a generation");
  auto a = std::make_shared<GuardCheckArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_flag("--json", a->json,
                "print one JSON object: tokens, flagged, at_token, at_char, period_tokens");
  cmd->add_option("files", a->files,
                  "check these files instead of stdin, each a document of its own (one line "
                  "each)");
  return {cmd, [a] { return run_guard_check(*a); }};
}

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
