// Internal: builders that turn the JSON of one HF tokenizer.json component (normalizer,
// pre_tokenizer, post_processor, decoder, model) into loom pipeline stages. A null component
// gives nullptr. Unknown `type`s are kUnsupported errors naming the JSON path.
#pragma once

#include <memory>

#include "tokenizer/json_cursor.h"
#include "tokenizer/pipeline.h"

namespace loom::tokenizer {

std::unique_ptr<Normalizer> build_normalizer(const JsonCursor& json);
std::unique_ptr<PreTokenizer> build_pre_tokenizer(const JsonCursor& json);
std::unique_ptr<PostProcessor> build_post_processor(const JsonCursor& json);
std::unique_ptr<Decoder> build_decoder(const JsonCursor& json);
struct ModelTables;  // hf_json_tables.h
// `extra_ids`: the number of added tokens beside the model, which bounds the model's ids.
// `tables`: model.vocab and model.merges when read_tokenizer_json took them out of `json`;
// build_model moves them out.
std::unique_ptr<Model> build_model(const JsonCursor& json, size_t extra_ids,
                                   ModelTables* tables = nullptr);

}  // namespace loom::tokenizer
