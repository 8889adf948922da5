// What the entry points (CLI subcommands, the server) share: loading a model (spec, backend,
// network, tokenizer) or only its tokenizer, rendering its chat template, and parsing id lists.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "app/chat_templates.h"
#include "backend/backend.h"
#include "io/gguf.h"
#include "io/model_spec.h"
#include "model/encoder.h"
#include "model/model.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace loom::app {

struct LoadedModel {
  ModelSpec spec;
  std::unique_ptr<Backend> backend;
  std::string device;  // the --device it was loaded for (a draft model loads on the same)
  std::unique_ptr<CausalLM> model;                // null for an encoder
  std::unique_ptr<Encoder> encoder;               // bert / clip / siglip; null for a language model
  std::optional<tokenizer::Tokenizer> tokenizer;  // absent when the model ships none
  // Why a tokenizer the model ships could not be used (e.g. an unsupported GGUF pre-tokenizer):
  // the model still runs from ids, and require_tokenizer() reports this.
  std::string tokenizer_error;
  // Read and parsed at load (with the tokenizer); rendering never touches the files again.
  ModelChatTemplates chat_templates;

  // The tokenizer, or kNotFound saying the model has none (or why it could not be read).
  const tokenizer::Tokenizer& require_tokenizer() const;
  // EOS ids from the config and the tokenizer.
  std::vector<int32_t> eos_ids() const;
};

// Builds the CausalLM, or with allow_encoder the Encoder of an encoder architecture (bert,
// clip, siglip); an encoder without allow_encoder is kUnsupported (the caller generates text).
// batch_invariant: see make_cpu_backend (the server wants it). device: a --device name
// (make_backend).
// MODEL: a path or a Hugging Face Hub name (hub::resolve_model_argument).
LoadedModel load_model(const std::string& model, int threads, bool want_tokenizer,
                       bool allow_encoder = false, bool batch_invariant = false,
                       const std::string& device = "cpu");

// The tokenizer of a model file or folder: a GGUF's tokenizer.ggml.* metadata, or a HF
// folder's tokenizer.json (with tokenizer_config.json's special tokens). nullopt when there is
// none; loom::Error when there is one that cannot be read. `gguf` is the parsed file for a GGUF
// model (null for a HF folder at `path`).
std::optional<tokenizer::Tokenizer> load_tokenizer(const std::string& path, const GgufFile* gguf);

// A model's tokenizer and chat template without its network: nothing but the GGUF header (or
// the HF folder's tokenizer files) is read, so it is fast for any model size.
struct TokenizerModel {
  std::string path;
  std::shared_ptr<const GgufFile> gguf;  // null for a HF folder
  std::optional<tokenizer::Tokenizer> tokenizer;
  ModelChatTemplates chat_templates;

  // The tokenizer, or kNotFound saying the model has none.
  const tokenizer::Tokenizer& require_tokenizer() const;
};

// `path`: a .gguf file or a HF folder. kNotFound when it is neither.
TokenizerModel load_tokenizer_model(const std::string& model);

// Renders `messages` (a JSON array of {role, content}) with the model's chat template (see
// ModelChatTemplates). kNotFound when the model has no template; a template's raise_exception
// comes back as loom::Error with the template's message.
std::string render_chat(const LoadedModel& m, const nlohmann::ordered_json& messages,
                        bool add_generation_prompt);

// Adds tokenizer.ggml.* and tokenizer.chat_template metadata for `spec`'s tokenizer to a GGUF
// being written (nothing when the model has no tokenizer).
void write_tokenizer_metadata(const ModelSpec& spec, GgufWriter& w);

// "1,2,3" or "[1, 2, 3]" -> ids; kInvalidArgument naming the bad element.
std::vector<int32_t> parse_id_list(const std::string& text);

int default_threads();

}  // namespace loom::app
