#include "server/embeddings.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "app/embed.h"
#include "core/error.h"

namespace loom::server {

namespace {

std::string base64(const uint8_t* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (i + 1 < n ? uint32_t{p[i + 1]} << 8 : 0) |
                       (i + 2 < n ? uint32_t{p[i + 2]} : 0);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
  return out;
}

std::vector<int32_t> ids_of(const nlohmann::json& a, size_t index) {
  std::vector<int32_t> ids;
  for (const auto& v : a) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      fail(ErrorCode::kInvalidArgument, "input[{}]: token ids must be non-negative integers",
           index);
    }
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

}  // namespace

std::string embeddings_response(const app::LoadedModel& m, const std::string& body,
                                const std::string& model_id) {
  if (!m.encoder || m.encoder->info().vision) {
    fail(ErrorCode::kUnsupported,
         "the model is not a text embedding model (/v1/embeddings needs "
         "an encoder such as bert)");
  }
  nlohmann::json req;
  try {
    req = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::kInvalidArgument, "the request body is not JSON: {}", e.what());
  }
  if (!req.is_object() || !req.contains("input")) {
    fail(ErrorCode::kInvalidArgument, "'input' is required");
  }
  const nlohmann::json& input = req["input"];
  std::vector<std::vector<int32_t>> inputs;
  if (input.is_string()) {
    inputs.push_back(app::encoder_tokens(m, input.get<std::string>()));
  } else if (input.is_array() && !input.empty() && input[0].is_number()) {
    inputs.push_back(ids_of(input, 0));  // one token list
  } else if (input.is_array() && !input.empty()) {
    if (input.size() > kMaxEmbeddingInputs) {
      fail(ErrorCode::kInvalidArgument, "'input' has {} items; at most {} per request",
           input.size(), kMaxEmbeddingInputs);
    }
    for (size_t i = 0; i < input.size(); ++i) {
      if (input[i].is_string()) {
        inputs.push_back(app::encoder_tokens(m, input[i].get<std::string>()));
      } else if (input[i].is_array()) {
        inputs.push_back(ids_of(input[i], i));
      } else {
        fail(ErrorCode::kInvalidArgument, "input[{}] must be a string or an array of token ids", i);
      }
    }
  } else {
    fail(ErrorCode::kInvalidArgument,
         "'input' must be a non-empty string, array of strings or array of token ids");
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].empty()) fail(ErrorCode::kInvalidArgument, "input[{}] is empty", i);
  }
  std::string format = "float";
  if (req.contains("encoding_format") && !req["encoding_format"].is_null()) {
    if (!req["encoding_format"].is_string()) {
      fail(ErrorCode::kInvalidArgument, "'encoding_format' must be \"float\" or \"base64\"");
    }
    format = req["encoding_format"].get<std::string>();
    if (format != "float" && format != "base64") {
      fail(ErrorCode::kInvalidArgument, "'encoding_format' {}: expected float or base64", format);
    }
  }
  if (req.contains("dimensions") && !req["dimensions"].is_null() &&
      req["dimensions"] != m.encoder->info().hidden_size) {
    fail(ErrorCode::kInvalidArgument, "'dimensions': this model makes {}-dimensional embeddings",
         m.encoder->info().hidden_size);
  }
  Pooling pooling = Pooling::kMean;
  if (req.contains("pooling")) {
    if (!req["pooling"].is_string())
      fail(ErrorCode::kInvalidArgument, "'pooling' must be a string");
    pooling = app::parse_pooling(req["pooling"].get<std::string>());
  }
  bool normalize = true;
  if (req.contains("normalize")) {
    if (!req["normalize"].is_boolean()) {
      fail(ErrorCode::kInvalidArgument, "'normalize' must be true or false");
    }
    normalize = req["normalize"].get<bool>();
  }
  const auto vectors = app::embed_token_lists(m, inputs, pooling, normalize);
  int64_t tokens = 0;
  for (const auto& ids : inputs) tokens += static_cast<int64_t>(ids.size());
  nlohmann::json data = nlohmann::json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    nlohmann::json e = {{"object", "embedding"}, {"index", i}};
    if (format == "base64") {
      // OpenAI's base64 format: the float32 values' bytes, little-endian (x86's order).
      e["embedding"] = base64(reinterpret_cast<const uint8_t*>(vectors[i].data()),
                              vectors[i].size() * sizeof(float));
    } else {
      e["embedding"] = vectors[i];
    }
    data.push_back(std::move(e));
  }
  const nlohmann::json res = {{"object", "list"},
                              {"data", std::move(data)},
                              {"model", model_id},
                              {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  return res.dump();
}

}  // namespace loom::server
