// Shared helpers for the template tests: render a template string with a JSON context.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "template/chat_template.h"
#include "template/jinja.h"

namespace loom::jinja::testing {

inline Dict context_from(const std::string& json_text) {
  Value v = value_from_json(nlohmann::ordered_json::parse(json_text));
  Dict d;
  for (const auto& [k, item] : v.dict_data()) d.set(k, item);
  return d;
}

inline std::string render(const std::string& source, const std::string& json_context = "{}",
                          const ParseOptions& parse = {}, const RenderOptions& options = {}) {
  return Template::parse(source, "test", parse).render(context_from(json_context), options);
}

// Jinja2's defaults (no trim_blocks / lstrip_blocks), for whitespace tests.
inline ParseOptions plain() {
  ParseOptions o;
  o.trim_blocks = false;
  o.lstrip_blocks = false;
  return o;
}

// The message of the loom::Error that rendering throws ("" if it does not throw).
inline std::string render_error(const std::string& source, const std::string& json_context = "{}",
                                const RenderOptions& options = {}, ErrorCode* code = nullptr) {
  try {
    render(source, json_context, {}, options);
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

}  // namespace loom::jinja::testing
