// A model's chat templates, read and parsed once when the model is loaded and rendered per
// request, so that a request never re-reads tokenizer_config.json or re-parses Jinja.
//
// Where they come from, as transformers and llama.cpp read them:
//   HF folder: chat_template.jinja (the default template, transformers >= 4.43) or
//              tokenizer_config.json's "chat_template", a string or a list of {name, template};
//              the special tokens (bos_token, ...) from tokenizer_config.json.
//   GGUF:      tokenizer.chat_template, tokenizer.chat_template.<name> for named ones; bos/eos
//              token texts from the vocabulary.
// A request with tools uses the "tool_use" template when the model has one, else the default.
//
// Errors: reading never throws for a bad template or a bad tokenizer_config.json; the error is
// kept and raised by apply() (so a model with a broken template still serves completions).
// apply() throws kNotFound when the model has no template, and the template's own errors
// (raise_exception, limits) as loom::Error.
// Thread-safety: immutable after construction; apply() may run concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "template/chat_template.h"

namespace loom {
class GgufFile;
}

namespace loom::app {

class ModelChatTemplates {
 public:
  ModelChatTemplates() = default;

  // `path`: a HF folder (gguf null) or the GGUF file `gguf` was read from.
  static ModelChatTemplates load(const std::string& path, const GgufFile* gguf);
  // From the texts of a HF folder's files, nullopt for an absent file. `dir` names them in
  // errors.
  static ModelChatTemplates from_hf_files(const std::string& dir,
                                          const std::optional<std::string>& tokenizer_config,
                                          const std::optional<std::string>& chat_template_jinja);
  static ModelChatTemplates from_gguf(const GgufFile& gguf);

  // Renders `request` with the template it selects (see above).
  std::string apply(const jinja::ChatRequest& request,
                    const jinja::RenderOptions& options = {}) const;

  // The text of the template a request with (or without) tools renders with; empty if none.
  std::string_view source(bool tools) const;

  // Whether a usable default template exists (parsed without error).
  bool has_template() const;

 private:
  struct Entry {
    std::string name;  // "default", "tool_use", ...
    std::string source;
    std::shared_ptr<const jinja::ChatTemplate> tmpl;
    std::optional<Error> error;  // why `tmpl` is null
  };
  void add(std::string name, std::string_view source, const nlohmann::ordered_json& special_tokens,
           const std::string& where);
  const Entry* find(std::string_view name) const;

  std::string path_;
  std::vector<Entry> entries_;
  std::optional<Error> error_;  // the model's template files could not be read at all
};

}  // namespace loom::app
