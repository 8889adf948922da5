// Text embeddings from a loaded encoder, shared by `loom embed` and the server's
// /v1/embeddings: inputs (text or token ids) -> token ids -> one batch -> pooled vectors.
// Thread-safety: as the LoadedModel's encoder (one call at a time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/loaded_model.h"
#include "model/encoder.h"

namespace loom::app {

// The ids a text encoder sees for `text`: the tokenizer's encoding with special tokens
// ([CLS] ... [SEP] for BERT, as sentence-transformers feeds it). kNotFound when the model has
// no tokenizer. Inputs longer than the model's positions are kOutOfRange (not truncated: a
// silently cut embedding is a wrong answer).
std::vector<int32_t> encoder_tokens(const LoadedModel& m, const std::string& text);

// "mean" | "cls" -> Pooling; kInvalidArgument otherwise.
Pooling parse_pooling(const std::string& name);

// One vector per input, computed in one padded batch. Throws kInvalidArgument for an empty
// input, kOutOfRange for an id outside the vocabulary or an input over max_tokens.
std::vector<std::vector<float>> embed_token_lists(const LoadedModel& m,
                                                  const std::vector<std::vector<int32_t>>& inputs,
                                                  Pooling pooling, bool normalize);

}  // namespace loom::app
