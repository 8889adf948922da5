#include "app/chat_templates.h"

#include <filesystem>

#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/json_util.h"

namespace loom::app {

namespace {

std::optional<std::string> read_if_present(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return std::nullopt;
  return read_text_file(file.string());
}

}  // namespace

void ModelChatTemplates::add(std::string name, std::string_view source,
                             const nlohmann::ordered_json& special_tokens,
                             const std::string& where) {
  Entry entry;
  entry.name = std::move(name);
  entry.source = std::string(source);
  try {
    entry.tmpl = std::make_shared<const jinja::ChatTemplate>(source, special_tokens, where);
  } catch (const Error& e) {
    entry.error = e;
  }
  entries_.push_back(std::move(entry));
}

const ModelChatTemplates::Entry* ModelChatTemplates::find(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

ModelChatTemplates ModelChatTemplates::from_hf_files(
    const std::string& dir, const std::optional<std::string>& tokenizer_config,
    const std::optional<std::string>& chat_template_jinja) {
  namespace fs = std::filesystem;
  ModelChatTemplates out;
  out.path_ = dir;
  const std::string config_name = (fs::path(dir) / "tokenizer_config.json").string();
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (tokenizer_config) {
    try {
      config = nlohmann::ordered_json::parse(*tokenizer_config, nullptr, true, false);
      if (!config.is_object()) {
        fail(ErrorCode::kCorruption, "{}: expected a JSON object", config_name);
      }
    } catch (const nlohmann::json::exception& e) {
      out.error_ = Error(ErrorCode::kCorruption,
                         fmt::format("{}: not valid JSON: {}", config_name, e.what()));
      return out;
    } catch (const Error& e) {
      out.error_ = e;
      return out;
    }
  }
  nlohmann::ordered_json tokens = nlohmann::ordered_json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                          "cls_token", "mask_token"}) {
    auto it = config.find(key);
    if (it == config.end()) continue;
    if (auto text = jinja::special_token_text(*it)) tokens[key] = *text;
  }
  auto extra = config.find("additional_special_tokens");
  if (extra != config.end() && extra->is_array()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& t : *extra) {
      if (auto text = jinja::special_token_text(t)) list.push_back(*text);
    }
    tokens["additional_special_tokens"] = list;
  }
  if (chat_template_jinja) {
    // transformers: chat_template.jinja, when present, is the template.
    out.add("default", *chat_template_jinja, tokens,
            (fs::path(dir) / "chat_template.jinja").string());
    return out;
  }
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.add("default", it->get_ref<const std::string&>(), tokens, config_name + ": chat_template");
  } else if (it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& entry = (*it)[i];
      if (!entry.is_object()) continue;
      auto n = entry.find("name");
      auto t = entry.find("template");
      if (n == entry.end() || t == entry.end() || !n->is_string() || !t->is_string()) continue;
      const std::string& name = n->get_ref<const std::string&>();
      if (out.find(name) != nullptr) continue;  // the first of a name wins, as transformers
      out.add(name, t->get_ref<const std::string&>(), tokens,
              fmt::format("{}: chat_template[{}] '{}'", config_name, i, name));
    }
  } else {
    out.error_ = Error(ErrorCode::kCorruption,
                       fmt::format("{}: 'chat_template' must be a string or a list of "
                                   "{{name, template}} objects",
                                   config_name));
  }
  return out;
}

ModelChatTemplates ModelChatTemplates::from_gguf(const GgufFile& gguf) {
  ModelChatTemplates out;
  out.path_ = gguf.path();
  nlohmann::ordered_json special = nlohmann::ordered_json::object();
  try {
    const GgufArray* tokens = gguf.get_array("tokenizer.ggml.tokens");
    auto token_text = [&](const char* key) -> std::optional<std::string> {
      auto id = gguf.get_int(key);
      if (!id || tokens == nullptr || *id < 0 ||
          *id >= static_cast<int64_t>(tokens->items.size())) {
        return std::nullopt;
      }
      const std::string* s = tokens->items[*id].as_string();
      return s ? std::optional<std::string>(*s) : std::nullopt;
    };
    if (auto b = token_text("tokenizer.ggml.bos_token_id")) special["bos_token"] = *b;
    if (auto e = token_text("tokenizer.ggml.eos_token_id")) special["eos_token"] = *e;
    if (auto source = gguf.get_string("tokenizer.chat_template")) {
      out.add("default", *source, special, gguf.path() + ": tokenizer.chat_template");
    }
    // llama.cpp's converter writes named templates as tokenizer.chat_template.<name>.
    static constexpr std::string_view kPrefix = "tokenizer.chat_template.";
    for (const auto& [key, value] : gguf.metadata()) {
      if (key.size() <= kPrefix.size() || key.compare(0, kPrefix.size(), kPrefix) != 0) continue;
      const std::string* source = value.as_string();
      const std::string name = key.substr(kPrefix.size());
      if (source == nullptr || out.find(name) != nullptr) continue;
      out.add(name, *source, special, gguf.path() + ": " + key);
    }
  } catch (const Error& e) {
    out.error_ = e;
  }
  return out;
}

ModelChatTemplates ModelChatTemplates::load(const std::string& path, const GgufFile* gguf) {
  if (gguf != nullptr) return from_gguf(*gguf);
  namespace fs = std::filesystem;
  try {
    return from_hf_files(path, read_if_present(fs::path(path) / "tokenizer_config.json"),
                         read_if_present(fs::path(path) / "chat_template.jinja"));
  } catch (const Error& e) {  // an unreadable file
    ModelChatTemplates out;
    out.path_ = path;
    out.error_ = e;
    return out;
  }
}

bool ModelChatTemplates::has_template() const {
  const Entry* e = find("default");
  return !error_ && e != nullptr && e->tmpl != nullptr;
}

std::string_view ModelChatTemplates::source(bool tools) const {
  const Entry* entry = tools ? find("tool_use") : nullptr;
  if (entry == nullptr) entry = find("default");
  return entry == nullptr ? std::string_view() : std::string_view(entry->source);
}

std::string ModelChatTemplates::apply(const jinja::ChatRequest& request,
                                      const jinja::RenderOptions& options) const {
  if (error_) throw *error_;
  const Entry* entry = nullptr;
  if (!request.tools.is_null()) entry = find("tool_use");
  if (entry == nullptr) entry = find("default");
  if (entry == nullptr) fail(ErrorCode::kNotFound, "{}: the model has no chat template", path_);
  if (entry->error) throw *entry->error;
  return entry->tmpl->apply(request, options);
}

}  // namespace loom::app
