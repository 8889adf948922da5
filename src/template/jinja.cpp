#include "template/jinja.h"

#include <new>
#include <stdexcept>

#include "core/error.h"
#include "template/ast.h"
#include "template/interpreter.h"
#include "template/lexer.h"
#include "template/parser.h"

namespace loom::jinja {

struct Template::Impl {
  std::string name;
  std::string source;  // normalised; node offsets point into it
  Body body;
};

Template Template::parse(std::string_view source, std::string name, const ParseOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(name);
  impl->source = normalize_source(source, options);
  std::vector<Token> tokens = tokenize(impl->source, impl->name, options);
  impl->body = parse_template(tokens, impl->source, impl->name);
  return Template(std::move(impl));
}

std::string Template::render(const Dict& context, const RenderOptions& options) const {
  Interpreter interpreter(impl_->source, impl_->name, options);
  try {
    return interpreter.render(impl_->body, context);
  } catch (const std::bad_alloc&) {
    // Limits bound what a template can build; this is the backstop for what they miss.
    fail(ErrorCode::kOutOfRange, "template '{}': out of memory while rendering", impl_->name);
  } catch (const std::length_error&) {
    fail(ErrorCode::kOutOfRange, "template '{}': a value grew too large while rendering",
         impl_->name);
  }
}

const std::string& Template::name() const {
  return impl_->name;
}

}  // namespace loom::jinja
