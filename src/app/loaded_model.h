// What the entry points (CLI subcommands, the server) share: loading a model (spec, backend,
// network, tokenizer), rendering its chat template, and parsing id lists.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/gguf.h"
#include "io/model_spec.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace loom::app {

struct LoadedModel {
  ModelSpec spec;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<CausalLM> model;
  std::optional<tokenizer::Tokenizer> tokenizer;  // absent when the model ships none

  // The tokenizer, or kNotFound saying the model has none.
  const tokenizer::Tokenizer& require_tokenizer() const;
  // EOS ids from the config and the tokenizer.
  std::vector<int32_t> eos_ids() const;
};

LoadedModel load_model(const std::string& path, int threads, bool want_tokenizer);

// Renders `messages` (a JSON array of {role, content}) with the model's chat template
// (tokenizer_config.json / chat_template.jinja, or GGUF tokenizer.chat_template).
std::string render_chat(const LoadedModel& m, const nlohmann::ordered_json& messages,
                        bool add_generation_prompt);

// Adds tokenizer.ggml.* and tokenizer.chat_template metadata for `spec`'s tokenizer to a GGUF
// being written (nothing when the model has no tokenizer).
void write_tokenizer_metadata(const ModelSpec& spec, GgufWriter& w);

// "1,2,3" or "[1, 2, 3]" -> ids; kInvalidArgument naming the bad element.
std::vector<int32_t> parse_id_list(const std::string& text);

int default_threads();

}  // namespace loom::app
