#include "app/structured_output.h"

#include <fmt/format.h>

#include "core/error.h"
#include "grammar/gbnf.h"
#include "grammar/json_schema.h"
#include "tokenizer/tokenizer.h"

namespace loom::app {

using Json = nlohmann::ordered_json;

StructuredOutput::StructuredOutput(const tokenizer::Tokenizer* tokenizer,
                                   std::vector<int32_t> eos_ids,
                                   std::chrono::milliseconds compile_limit, size_t cache_entries)
    : tokenizer_(tokenizer),
      eos_ids_(std::move(eos_ids)),
      limit_(compile_limit),
      capacity_(cache_entries) {}

std::shared_ptr<const grammar::TokenVocab> StructuredOutput::vocab() {
  std::call_once(vocab_once_, [&] {
    if (tokenizer_ == nullptr) return;
    vocab_ = grammar::TokenVocab::from_tokenizer(*tokenizer_, eos_ids_);
  });
  if (!vocab_) {
    fail(ErrorCode::kUnsupported, "structured output needs the model's tokenizer, and it has none");
  }
  return vocab_;
}

grammar::JsonSchemaOptions StructuredOutput::schema_options() const {
  grammar::JsonSchemaOptions o;
  o.whitespace = grammar::pretty_whitespace();
  o.deadline = std::chrono::steady_clock::now() + limit_;
  return o;
}

std::shared_ptr<const ConstraintSpec> StructuredOutput::cached(const std::string& key,
                                                               std::string_view field,
                                                               const Build& build) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = index_.find(key); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      if (it->second->second.error) throw *it->second->second.error;
      return it->second->second.spec;
    }
  }
  auto v = vocab();
  Entry entry;
  try {
    auto spec = std::make_shared<ConstraintSpec>(build());
    spec->vocab = v;
    entry.spec = std::move(spec);
  } catch (const Error& e) {
    // A grammar past its size or time limits is the request's fault, not the context's.
    const ErrorCode code =
        e.code() == ErrorCode::kUnsupported ? ErrorCode::kUnsupported : ErrorCode::kInvalidArgument;
    const std::string_view what = e.what();
    entry.error = !what.empty() && what[0] == '\''  // names its field already
                      ? Error(code, std::string(what))
                      : Error(code, fmt::format("'{}': {}", field, what));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it == index_.end()) {
    lru_.emplace_front(key, entry);
    index_[key] = lru_.begin();
  }
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  if (entry.error) throw *entry.error;
  return entry.spec;
}

namespace {
ConstraintSpec spec_of(std::shared_ptr<grammar::Grammar> g,
                       std::vector<ConstraintTrigger> triggers = {}) {
  ConstraintSpec s;
  s.grammar = std::make_shared<grammar::CompiledGrammar>(std::move(g));
  s.triggers = std::move(triggers);
  return s;
}
}  // namespace

std::shared_ptr<const ConstraintSpec> StructuredOutput::json_schema(const Json& schema,
                                                                    std::string_view field) {
  const std::string text = schema.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return cached("schema\n" + text, field,
                [&] { return spec_of(grammar::compile_json_schema(schema, schema_options())); });
}

std::shared_ptr<const ConstraintSpec> StructuredOutput::json_object(std::string_view field) {
  return cached("object", field,
                [&] { return spec_of(grammar::json_value_grammar(true, schema_options())); });
}

std::shared_ptr<const ConstraintSpec> StructuredOutput::gbnf(std::string_view text,
                                                             std::string_view field) {
  return cached("gbnf\n" + std::string(text), field, [&] {
    grammar::GbnfOptions o;
    o.tokenizer = tokenizer_;
    return spec_of(grammar::compile_gbnf(text, o));
  });
}

std::shared_ptr<const ConstraintSpec> StructuredOutput::regex(std::string_view pattern,
                                                              std::string_view field) {
  return cached("regex\n" + std::string(pattern), field,
                [&] { return spec_of(grammar::compile_regex_grammar(pattern)); });
}

std::shared_ptr<const ConstraintSpec> StructuredOutput::tool_calls(ToolFormat format,
                                                                   const Json& tools,
                                                                   const ToolChoice& choice,
                                                                   bool parallel) {
  const std::string key =
      fmt::format("tools\n{}\n{}\n{}\n{}\n{}", tool_format_name(format),
                  static_cast<int>(choice.mode), choice.function, parallel ? 1 : 0,
                  tools.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return cached(key, "tools", [&] {
    ToolGrammar tg =
        tool_call_grammar(format, tools, choice, parallel, tokenizer_, schema_options());
    return spec_of(std::move(tg.grammar), std::move(tg.triggers));
  });
}

}  // namespace loom::app
