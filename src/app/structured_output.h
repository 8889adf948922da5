// Structured output for the entry points (server, loom run): requests' JSON Schemas, GBNF
// grammars, regular expressions and tool-call grammars compiled into ConstraintSpecs over the
// model's vocabulary, with a cache so that the same schema sent again (the common case: one
// application, one schema) is not compiled again.
//
// Every compile has a time limit (a schema built to explode is an error, not a stuck worker)
// and bounded memory (the grammar layer's size limits). Errors name the request field first
// ("'response_format': ...") and are kInvalidArgument or kUnsupported, so the server answers
// 400 with the reason.
// Thread-safety: all methods may be called concurrently. The specs it returns are used by one
// scheduler thread (grammar::CompiledGrammar grows lazily; see matcher.h).
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/tool_calls.h"
#include "core/error.h"
#include "engine/constraint.h"

namespace loom::tokenizer {
class Tokenizer;
}

namespace loom::app {

class StructuredOutput {
 public:
  StructuredOutput(const tokenizer::Tokenizer* tokenizer, std::vector<int32_t> eos_ids,
                   std::chrono::milliseconds compile_limit = std::chrono::seconds(10),
                   size_t cache_entries = 64);

  // `field` names the request field in errors.
  std::shared_ptr<const ConstraintSpec> json_schema(const nlohmann::ordered_json& schema,
                                                    std::string_view field);
  std::shared_ptr<const ConstraintSpec> json_object(std::string_view field);
  std::shared_ptr<const ConstraintSpec> gbnf(std::string_view text, std::string_view field);
  std::shared_ptr<const ConstraintSpec> regex(std::string_view pattern, std::string_view field);
  std::shared_ptr<const ConstraintSpec> tool_calls(ToolFormat format,
                                                   const nlohmann::ordered_json& tools,
                                                   const ToolChoice& choice, bool parallel);

  // The vocabulary as the grammar engine sees it (built on first use).
  std::shared_ptr<const grammar::TokenVocab> vocab();

 private:
  using Build = std::function<ConstraintSpec()>;
  std::shared_ptr<const ConstraintSpec> cached(const std::string& key, std::string_view field,
                                               const Build& build);
  grammar::JsonSchemaOptions schema_options() const;

  const tokenizer::Tokenizer* tokenizer_;
  std::vector<int32_t> eos_ids_;
  std::chrono::milliseconds limit_;
  size_t capacity_;
  std::once_flag vocab_once_;
  std::shared_ptr<const grammar::TokenVocab> vocab_;
  std::mutex mu_;
  // Newest first. Failures are kept too (spec null, error set), so a schema that fails after
  // seconds of compiling is not compiled again for every request that repeats it.
  struct Entry {
    std::shared_ptr<const ConstraintSpec> spec;
    std::optional<Error> error;
  };
  std::list<std::pair<std::string, Entry>> lru_;
  std::unordered_map<std::string, decltype(lru_)::iterator> index_;
};

}  // namespace loom::app
