// The Jinja parser: tokens -> syntax tree, following Jinja2's grammar and operator precedence
// (filters and tests bind tighter than arithmetic; `not` is looser than comparisons;
// `a if b else c` is the loosest). Unknown tags, filters and tests, unclosed blocks and
// nesting deeper than kMaxNesting are errors at parse time, as they are in Jinja2.
// Thread-safety: pure function.
#pragma once

#include <string>
#include <vector>

#include "template/ast.h"
#include "template/lexer.h"

namespace loom::jinja {

// Bounds the parser's (and so the evaluator's) recursion on hostile input like "((((((...".
inline constexpr int kMaxNesting = 128;

// Throws loom::Error (kInvalidArgument) naming the template, line and column.
Body parse_template(const std::vector<Token>& tokens, const std::string& source,
                    const std::string& name);

}  // namespace loom::jinja
