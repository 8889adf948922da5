// The Jinja lexer: splits template source into data and tag tokens, applying Jinja2's
// whitespace rules at lexing time, as Jinja2 does:
//  - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}", "-#}" all after it;
//  - trim_blocks removes the first newline after a block or comment tag ("+%}" opts out);
//  - lstrip_blocks removes spaces and tabs between the start of a line and a block or comment
//    tag ("{%+" opts out); it never applies to "{{";
//  - newlines are normalised to "\n" and, unless keep_trailing_newline, one trailing newline
//    of the source is dropped.
// Comments produce no tokens; {% raw %} blocks produce one data token.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "template/options.h"

namespace loom::jinja {

enum class TokenKind {
  kData,
  kVarBegin,
  kVarEnd,
  kBlockBegin,
  kBlockEnd,
  kName,
  kString,
  kInt,
  kFloat,
  kOp,
  kEnd
};

struct Token {
  TokenKind kind;
  std::string text;  // data, name, decoded string literal or operator
  size_t offset;     // byte offset into the normalised source
  int64_t int_value = 0;
  double float_value = 0;
};

// Newline normalisation and the trailing-newline rule; offsets in tokens refer to this text.
std::string normalize_source(std::string_view source, const ParseOptions& options);

// Throws loom::Error (kInvalidArgument) naming `name`, line and column on a lexing error.
std::vector<Token> tokenize(const std::string& source, const std::string& name,
                            const ParseOptions& options);

// "template 'NAME', line L, column C" for a byte offset of the normalised source.
std::string describe_location(const std::string& source, const std::string& name, size_t offset);

}  // namespace loom::jinja
