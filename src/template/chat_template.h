// loom::jinja::ChatTemplate — renders a conversation the way transformers'
// tokenizer.apply_chat_template(messages, tools=..., add_generation_prompt=..., tokenize=False)
// does: the template sees `messages`, `tools` (None when absent), `documents`,
// `add_generation_prompt`, the tokenizer's special tokens (bos_token, eos_token, ...) and any
// extra variables (e.g. enable_thinking), which override special tokens of the same name.
//
// JSON inputs are nlohmann::ordered_json so that object key order survives into the template
// (tojson must print a tool schema's keys in the order the caller wrote them). Overloads taking
// nlohmann::json exist, but that type has already sorted its keys.
//
// Errors: loom::Error, as for jinja::Template; a config without a usable template is kNotFound.
// Thread-safety: immutable after construction; apply() may run concurrently.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "template/jinja.h"

namespace loom::jinja {

// JSON -> Value: objects become insertion-ordered dicts, integers stay integers. Values nested
// deeper than kMaxValueDepth are rejected (kOutOfRange).
Value value_from_json(const nlohmann::ordered_json& json);
Value value_from_json(const nlohmann::json& json);

// A special token in tokenizer_config.json is a string or an AddedToken object
// {"content": "<s>", ...}; nullopt for null or anything else.
std::optional<std::string> special_token_text(const nlohmann::ordered_json& token);

// Picks the template source from tokenizer_config.json's "chat_template", which is a string or
// a list of {"name", "template"}: the one called `name` if given, else "tool_use" when the
// request has tools and such a template exists, else "default". nullopt when there is none.
std::optional<std::string> select_chat_template(const nlohmann::ordered_json& tokenizer_config,
                                                std::string_view name = {}, bool has_tools = false);

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;      // null: no tools (the template sees None)
  nlohmann::ordered_json documents;  // null: none
  bool add_generation_prompt = false;
  // Leave the last message open so generation continues it (cannot combine with the above).
  bool continue_final_message = false;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // more template variables
};

class ChatTemplate {
 public:
  // special_tokens: variable name -> text, e.g. {"bos_token": "<s>", "eos_token": "</s>"}.
  ChatTemplate(std::string_view source, nlohmann::ordered_json special_tokens,
               std::string name = "chat_template");

  // Uses `chat_template_jinja` (the text of a chat_template.jinja file) when given, as
  // transformers does, else select_chat_template(config, name, has_tools); special tokens come
  // from the config's bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
  // mask_token and additional_special_tokens.
  static ChatTemplate from_tokenizer_config(
      const nlohmann::ordered_json& config,
      std::optional<std::string> chat_template_jinja = std::nullopt, std::string_view name = {},
      bool has_tools = false);

  std::string apply(const ChatRequest& request, const RenderOptions& options = {}) const;

  const Template& jinja() const { return template_; }

 private:
  Template template_;
  Dict special_tokens_;
};

}  // namespace loom::jinja
