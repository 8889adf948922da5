// POST /v1/embeddings (OpenAI schema) for an encoder model.
//   request:  {"input": "text" | ["text", ...] | [id, ...] | [[id, ...], ...],
//              "model": ..., "encoding_format": "float" (default) | "base64",
//              loom extensions: "pooling": "mean" (default) | "cls", "normalize": true (default)}
//   response: {"object": "list", "data": [{"object": "embedding", "index": i,
//              "embedding": [floats] | "base64 of little-endian float32"}], "model": ...,
//              "usage": {"prompt_tokens": n, "total_tokens": n}}
// Embeddings are L2-normalised by default, as OpenAI's are. All inputs run as one padded batch.
// Thread-safety: as the model's encoder (one call at a time).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/embed.h"
#include "app/loaded_model.h"

namespace loom::server {

// Up to this many inputs per request (OpenAI's limit).
inline constexpr size_t kMaxEmbeddingInputs = 2048;

// A parsed request: each input is text (tokenized by the model) or token ids.
struct EmbeddingsRequest {
  struct Input {
    std::string text;
    std::vector<int32_t> ids;
    bool is_ids = false;
  };
  std::string model;
  std::vector<Input> inputs;
  bool base64 = false;
  std::optional<int64_t> dimensions;
  Pooling pooling = Pooling::kMean;
  bool normalize = true;
};

// Parses and validates a body: kInvalidArgument naming the field (nesting beyond
// kMaxJsonDepth included).
EmbeddingsRequest parse_embeddings_request(std::string_view body);

// The JSON response body. Throws loom::Error: kInvalidArgument for a malformed request,
// kOutOfRange for an input over the model's length or an id outside its vocabulary,
// kUnsupported when the model is not a text encoder, kNotFound when text is given and the model
// has no tokenizer.
std::string embeddings_response(const app::LoadedModel& model, const std::string& body,
                                const std::string& model_id);

}  // namespace loom::server
