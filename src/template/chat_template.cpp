#include "template/chat_template.h"

#include <fmt/format.h>

#include "core/error.h"

namespace loom::jinja {
namespace {

template <typename Json>
Value convert(const Json& j, int depth) {
  if (depth > kMaxValueDepth) {
    fail(ErrorCode::kOutOfRange, "JSON input nests deeper than {} levels", kMaxValueDepth);
  }
  switch (j.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return Value(nullptr);
    case Json::value_t::boolean:
      return Value(j.template get<bool>());
    case Json::value_t::number_integer:
      return Value(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float:
      return Value(j.template get<double>());
    case Json::value_t::string:
      return Value(j.template get_ref<const std::string&>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert(item, depth + 1));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it)
        d.set(it.key(), convert(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    case Json::value_t::binary:
      break;
  }
  fail(ErrorCode::kInvalidArgument, "JSON binary values cannot be passed to a template");
}

template <typename Json>
Value convert_top(const Json& j) {
  try {
    return convert(j, 0);
  } catch (const TemplateRuntimeError& e) {
    throw Error(e.code(), e.what());
  }
}

}  // namespace

Value value_from_json(const nlohmann::ordered_json& json) {
  return convert_top(json);
}
Value value_from_json(const nlohmann::json& json) {
  return convert_top(json);
}

std::optional<std::string> special_token_text(const nlohmann::ordered_json& token) {
  if (token.is_string()) return token.get<std::string>();
  if (token.is_object()) {
    auto it = token.find("content");
    if (it != token.end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

std::optional<std::string> select_chat_template(const nlohmann::ordered_json& config,
                                                std::string_view name, bool has_tools) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) return std::nullopt;
  auto find = [&](std::string_view wanted) -> std::optional<std::string> {
    for (const auto& entry : *it) {
      if (!entry.is_object()) continue;
      auto n = entry.find("name");
      auto t = entry.find("template");
      if (n != entry.end() && t != entry.end() && n->is_string() && t->is_string() &&
          n->get<std::string>() == wanted) {
        return t->get<std::string>();
      }
    }
    return std::nullopt;
  };
  if (!name.empty()) return find(name);
  if (has_tools) {
    if (auto tool_use = find("tool_use")) return tool_use;
  }
  return find("default");
}

ChatTemplate::ChatTemplate(std::string_view source, nlohmann::ordered_json special_tokens,
                           std::string name)
    : template_(Template::parse(source, std::move(name))) {
  if (!special_tokens.is_object()) return;
  for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it) {
    if (it.value().is_null()) continue;  // transformers leaves unset tokens out of the map
    special_tokens_.set(it.key(), value_from_json(it.value()));
  }
}

ChatTemplate ChatTemplate::from_tokenizer_config(const nlohmann::ordered_json& config,
                                                 std::optional<std::string> chat_template_jinja,
                                                 std::string_view name, bool has_tools) {
  std::optional<std::string> source = std::move(chat_template_jinja);
  if (!source) source = select_chat_template(config, name, has_tools);
  if (!source) {
    if (name.empty()) fail(ErrorCode::kNotFound, "tokenizer config has no chat template");
    fail(ErrorCode::kNotFound, "tokenizer config has no chat template named '{}'", name);
  }
  nlohmann::ordered_json tokens = nlohmann::ordered_json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    auto it = config.find(key);
    if (it == config.end()) continue;
    if (auto text = special_token_text(*it)) tokens[key] = *text;
  }
  auto extra = config.find("additional_special_tokens");
  if (extra != config.end() && extra->is_array()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& t : *extra) {
      if (auto text = special_token_text(t)) list.push_back(*text);
    }
    tokens["additional_special_tokens"] = list;
  }
  return ChatTemplate(*source, tokens);
}

std::string ChatTemplate::apply(const ChatRequest& request, const RenderOptions& options) const {
  if (!request.messages.is_array())
    fail(ErrorCode::kInvalidArgument, "chat messages must be a JSON array");
  if (request.add_generation_prompt && request.continue_final_message) {
    fail(ErrorCode::kInvalidArgument,
         "continue_final_message and add_generation_prompt are not compatible");
  }
  Dict context;
  for (const auto& [key, value] : special_tokens_) context.set(key, value);
  if (request.extra.is_object()) {
    for (auto it = request.extra.begin(); it != request.extra.end(); ++it) {
      context.set(it.key(), value_from_json(it.value()));
    }
  }
  context.set("messages", value_from_json(request.messages));
  context.set("tools", value_from_json(request.tools));
  context.set("documents", value_from_json(request.documents));
  context.set("add_generation_prompt", Value(request.add_generation_prompt));
  std::string rendered = template_.render(context, options);
  if (!request.continue_final_message) return rendered;

  // transformers: cut the text right after the final message's content so generation
  // continues it; content given as blocks continues the last text block.
  if (request.messages.empty())
    fail(ErrorCode::kInvalidArgument, "continue_final_message needs a message");
  const auto& content = request.messages.back().value("content", nlohmann::ordered_json());
  std::string final_text;
  if (content.is_string()) {
    final_text = content.get<std::string>();
  } else if (content.is_array()) {
    bool found = false;
    for (auto it = content.rbegin(); it != content.rend() && !found; ++it) {
      if (it->is_object() && it->contains("text") && (*it)["text"].is_string()) {
        final_text = (*it)["text"].get<std::string>();
        found = true;
      }
    }
    if (!found)
      fail(ErrorCode::kInvalidArgument,
           "continue_final_message: the final message has no text to continue");
  } else {
    fail(ErrorCode::kInvalidArgument,
         "continue_final_message: the final message has no text to continue");
  }
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  size_t b = 0, e = final_text.size();
  while (b < e && is_space(final_text[b])) ++b;
  while (e > b && is_space(final_text[e - 1])) --e;
  std::string stripped = final_text.substr(b, e - b);
  size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) {
    fail(ErrorCode::kInvalidArgument,
         "continue_final_message: the final message does not appear in the rendered chat");
  }
  // The template kept the message's trailing whitespace only if the text matches as a whole.
  bool no_leading_space = b == 0;
  if (no_leading_space && rendered.compare(at, final_text.size(), final_text) == 0) {
    return rendered.substr(0, at + final_text.size());
  }
  return rendered.substr(0, at + stripped.size());
}

}  // namespace loom::jinja
