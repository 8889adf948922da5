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

#include <string>

#include "app/loaded_model.h"

namespace loom::server {

// Up to this many inputs per request (OpenAI's limit).
inline constexpr size_t kMaxEmbeddingInputs = 2048;

// The JSON response body. Throws loom::Error: kInvalidArgument for a malformed request,
// kOutOfRange for an input over the model's length or an id outside its vocabulary,
// kUnsupported when the model is not a text encoder, kNotFound when text is given and the model
// has no tokenizer.
std::string embeddings_response(const app::LoadedModel& model, const std::string& body,
                                const std::string& model_id);

}  // namespace loom::server
