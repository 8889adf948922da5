// loom embed -m MODEL [--pooling mean|cls] [--normalize] [-t THREADS]
// Reads JSON lines on stdin, each a JSON string, {"text": "..."}, a JSON array of token ids or
// {"ids": [...]}, and prints one JSON array of floats per input line (the pooled embedding).
// A line that cannot be read is an error naming its line number (nothing is skipped silently).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "app/embed.h"
#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"

namespace loom::cli {

namespace {

struct EmbedArgs {
  std::string model, pooling = "mean";
  bool normalize = false;
  int threads = 0;
  std::string device = "cpu";
};

std::vector<int32_t> ids_from_json(const nlohmann::json& a, int64_t line) {
  std::vector<int32_t> ids;
  for (const auto& v : a) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      fail(ErrorCode::kInvalidArgument, "stdin line {}: token ids must be non-negative integers",
           line);
    }
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

int run_embed(const EmbedArgs& a) {
  const Pooling pooling = app::parse_pooling(a.pooling);
  app::LoadedModel m =
      app::load_model(a.model, a.threads, true, /*allow_encoder=*/true, false, a.device);
  if (!m.encoder || m.encoder->info().vision) {
    fail(ErrorCode::kUnsupported, "{}: {} is not a text encoder (loom embed needs bert)", a.model,
         m.spec.architecture);
  }
  std::string text;
  int64_t line = 0;
  while (std::getline(std::cin, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorCode::kInvalidArgument, "stdin line {}: not JSON: {}", line, e.what());
    }
    std::vector<int32_t> ids;
    if (j.is_string()) {
      ids = app::encoder_tokens(m, j.get<std::string>());
    } else if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      ids = app::encoder_tokens(m, j["text"].get<std::string>());
    } else if (j.is_array()) {
      ids = ids_from_json(j, line);
    } else if (j.is_object() && j.contains("ids") && j["ids"].is_array()) {
      ids = ids_from_json(j["ids"], line);
    } else {
      fail(ErrorCode::kInvalidArgument,
           "stdin line {}: expected a JSON string, {{\"text\": ...}}, an id array or "
           "{{\"ids\": [...]}}",
           line);
    }
    const auto v = app::embed_token_lists(m, {ids}, pooling, a.normalize);
    fmt::print("{}\n", nlohmann::json(v[0]).dump());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

Command add_embed(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "embed",
      "Embed JSON lines of text from stdin with an encoder model (bert); one JSON array "
      "per line out");
  auto a = std::make_shared<EmbedArgs>();
  cmd->add_option("-m,--model", a->model, "a Hugging Face encoder folder (bert)")->required();
  cmd->add_option("--pooling", a->pooling, "mean (default) or cls")
      ->check(CLI::IsMember({"mean", "cls"}));
  cmd->add_flag("--normalize", a->normalize, "L2-normalise each embedding");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  return {cmd, [a] { return run_embed(*a); }};
}

}  // namespace loom::cli
