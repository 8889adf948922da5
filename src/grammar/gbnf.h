// GBNF (llama.cpp's grammar format, so existing grammars work) and whole-output regular
// expressions -> Grammar.
//
// GBNF as llama.cpp reads it:
//   root ::= "yes" | "no" ws item*      # rules; `root` is where the output starts
//   item ::= [a-z0-9_-]+ ("," [ \t]?){0,3} .
// Rule names are letters, digits, '-' and '_'. Terminals: "literals" and [character classes]
// (negated with ^, ranges a-z) with the escapes \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH
// \UHHHHHHHH, and `.` for any character. Grouping ( ), alternatives |, repetition * + ?
// {m} {m,} {m,n} {,n}. `#` starts a comment. A rule ends at a newline, except inside
// parentheses and right after `::=` or `|`. Tokens: <[123]> is token id 123 and <|name|>
// (any <...>) the token with that text; a special token is matched as the token itself,
// which no text can spell. Negated tokens (!<...>) are refused (kUnsupported).
//
// The grammar is exact: every terminal is one character (a lexeme that cannot be continued), so
// the greedy lexer never has to choose where a lexeme ends. Errors (kInvalidArgument) name the
// line and column: a syntax error, an undefined rule (and where it is used), a rule defined
// twice, a missing root, an unknown token; repetition counts past max_repeat are kOutOfRange.
// Thread-safety: pure functions.
#pragma once

#include <memory>
#include <string_view>

#include "grammar/grammar.h"

namespace loom::tokenizer {
class Tokenizer;
}

namespace loom::grammar {

struct GbnfOptions {
  const tokenizer::Tokenizer* tokenizer = nullptr;  // resolves <...> tokens; none: an error
  int64_t max_repeat = 4096;                        // {m,n} bounds
  size_t max_symbols = 2'000'000;                   // symbols in all productions together
};

std::shared_ptr<Grammar> compile_gbnf(std::string_view text, const GbnfOptions& options = {});

// The whole output matches `pattern` (ECMA syntax, see parse_regex); an empty output is allowed
// when the pattern matches the empty string.
std::shared_ptr<Grammar> compile_regex_grammar(std::string_view pattern);

// A lexeme that matches exactly `text`: the special token's bytes when `text` is a special
// token of `tok` (see special_token_bytes in matcher.h), else the literal text.
Regex token_or_text(const tokenizer::Tokenizer* tok, std::string_view text);
// The bytes the same match stands for (special_token_bytes or the text itself).
std::string special_token_bytes_or_text(const tokenizer::Tokenizer* tok, std::string_view text);

}  // namespace loom::grammar
