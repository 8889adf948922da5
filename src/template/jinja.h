// loom::jinja::Template — the Jinja2 subset that model chat templates are written in.
//
//   auto t = loom::jinja::Template::parse(source, "chat_template");
//   loom::jinja::Dict context;
//   context.set("messages", ...);
//   std::string text = t.render(context);
//
// Semantics follow Jinja2 as transformers configures it for apply_chat_template
// (ImmutableSandboxedEnvironment, trim_blocks and lstrip_blocks on, loopcontrols extension,
// raise_exception, strftime_now and a json.dumps-based tojson). value.h describes the value
// model, interpreter.h scoping, options.h the parse options and render limits.
//
// Errors: parse() throws loom::Error (kInvalidArgument) for a bad template, naming the
// template, line and column. render() throws loom::Error naming the line and column where
// evaluation failed: kInvalidArgument for template errors and raise_exception (whose message is
// included verbatim), kOutOfRange when a RenderLimits bound is exceeded.
//
// Thread-safety: a Template is immutable after parse(); copies share the parsed tree, and any
// number of threads may render one Template at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "template/options.h"
#include "template/value.h"

namespace loom::jinja {

class Template {
 public:
  static Template parse(std::string_view source, std::string name = "template",
                        const ParseOptions& options = {});

  std::string render(const Dict& context, const RenderOptions& options = {}) const;

  const std::string& name() const;

 private:
  struct Impl;
  explicit Template(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace loom::jinja
