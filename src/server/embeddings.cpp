#include "server/embeddings.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "app/embed.h"
#include "core/error.h"
#include "server/openai_api.h"

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

std::vector<int32_t> ids_of(const Json& a, size_t index) {
  std::vector<int32_t> ids;
  for (const auto& v : a) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      fail(ErrorCode::kInvalidArgument, "'input[{}]': token ids must be non-negative integers",
           index);
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

}  // namespace

EmbeddingsRequest parse_embeddings_request(std::string_view body) {
  Json req = parse_json_body(body);
  for (auto it = req.begin(); it != req.end(); ++it) {
    static constexpr std::string_view kKnown[] = {
        "input", "model", "encoding_format", "dimensions", "user", "pooling", "normalize"};
    if (std::find(std::begin(kKnown), std::end(kKnown), it.key()) == std::end(kKnown)) {
      fail(ErrorCode::kInvalidArgument, "'{}': unrecognized request argument for /v1/embeddings",
           it.key());
    }
  }
  if (!req.contains("input")) fail(ErrorCode::kInvalidArgument, "'input' is required");
  EmbeddingsRequest r;
  if (req.contains("model") && !req["model"].is_null()) {
    if (!req["model"].is_string()) fail(ErrorCode::kInvalidArgument, "'model': expected a string");
    r.model = req["model"].get<std::string>();
  }
  const Json& input = req["input"];
  auto add_text = [&](const Json& s) {
    EmbeddingsRequest::Input in;
    in.text = s.get<std::string>();
    r.inputs.push_back(std::move(in));
  };
  auto add_ids = [&](const Json& a, size_t i) {
    EmbeddingsRequest::Input in;
    in.ids = ids_of(a, i);
    in.is_ids = true;
    r.inputs.push_back(std::move(in));
  };
  if (input.is_string()) {
    add_text(input);
  } else if (input.is_array() && !input.empty() && input[0].is_number()) {
    add_ids(input, 0);  // one token list
  } else if (input.is_array() && !input.empty()) {
    if (input.size() > kMaxEmbeddingInputs) {
      fail(ErrorCode::kInvalidArgument, "'input': {} items; at most {} per request", input.size(),
           kMaxEmbeddingInputs);
    }
    for (size_t i = 0; i < input.size(); ++i) {
      if (input[i].is_string()) {
        add_text(input[i]);
      } else if (input[i].is_array()) {
        add_ids(input[i], i);
      } else {
        fail(ErrorCode::kInvalidArgument, "'input[{}]': must be a string or an array of token ids",
             i);
      }
    }
  } else {
    fail(ErrorCode::kInvalidArgument,
         "'input' must be a non-empty string, array of strings or array of token ids");
  }
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    const auto& in = r.inputs[i];
    if (in.is_ids ? in.ids.empty() : in.text.empty()) {
      fail(ErrorCode::kInvalidArgument, "'input[{}]': is empty", i);
    }
  }
  if (req.contains("encoding_format") && !req["encoding_format"].is_null()) {
    if (!req["encoding_format"].is_string()) {
      fail(ErrorCode::kInvalidArgument, "'encoding_format': must be \"float\" or \"base64\"");
    }
    const std::string format = req["encoding_format"].get<std::string>();
    if (format != "float" && format != "base64") {
      fail(ErrorCode::kInvalidArgument, "'encoding_format': {}: expected float or base64", format);
    }
    r.base64 = format == "base64";
  }
  if (req.contains("dimensions") && !req["dimensions"].is_null()) {
    const Json& d = req["dimensions"];
    if (!d.is_number_integer() || d.get<int64_t>() < 1) {
      fail(ErrorCode::kInvalidArgument, "'dimensions': expected a positive integer");
    }
    r.dimensions = d.get<int64_t>();
  }
  if (req.contains("pooling") && !req["pooling"].is_null()) {
    if (!req["pooling"].is_string()) {
      fail(ErrorCode::kInvalidArgument, "'pooling': must be a string");
    }
    r.pooling = app::parse_pooling(req["pooling"].get<std::string>());
  }
  if (req.contains("normalize") && !req["normalize"].is_null()) {
    if (!req["normalize"].is_boolean()) {
      fail(ErrorCode::kInvalidArgument, "'normalize': must be true or false");
    }
    r.normalize = req["normalize"].get<bool>();
  }
  return r;
}

std::string embeddings_response(const app::LoadedModel& m, const std::string& body,
                                const std::string& model_id) {
  if (!m.encoder || m.encoder->info().vision) {
    fail(ErrorCode::kUnsupported,
         "the model is not a text embedding model (/v1/embeddings needs "
         "an encoder such as bert)");
  }
  const EmbeddingsRequest req = parse_embeddings_request(body);
  if (!req.model.empty() && req.model != model_id) {
    fail(ErrorCode::kNotFound, "'model': the model '{}' does not exist (this server has '{}')",
         req.model, model_id);
  }
  if (req.dimensions && *req.dimensions != m.encoder->info().hidden_size) {
    fail(ErrorCode::kInvalidArgument, "'dimensions': this model makes {}-dimensional embeddings",
         m.encoder->info().hidden_size);
  }
  std::vector<std::vector<int32_t>> inputs;
  for (const auto& in : req.inputs) {
    inputs.push_back(in.is_ids ? in.ids : app::encoder_tokens(m, in.text));
  }
  const Pooling pooling = req.pooling;
  const bool normalize = req.normalize;
  const bool base64_format = req.base64;
  const auto vectors = app::embed_token_lists(m, inputs, pooling, normalize);
  int64_t tokens = 0;
  for (const auto& ids : inputs) tokens += static_cast<int64_t>(ids.size());
  Json data = Json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    Json e = {{"object", "embedding"}, {"index", i}};
    if (base64_format) {
      // OpenAI's base64 format: the float32 values' bytes, little-endian (x86's order).
      e["embedding"] = base64(reinterpret_cast<const uint8_t*>(vectors[i].data()),
                              vectors[i].size() * sizeof(float));
    } else {
      e["embedding"] = vectors[i];
    }
    data.push_back(std::move(e));
  }
  const Json res = {{"object", "list"},
                    {"data", std::move(data)},
                    {"model", model_id},
                    {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
  return res.dump();
}

}  // namespace loom::server
