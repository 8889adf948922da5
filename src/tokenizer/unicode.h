// UTF-8 helpers and Unicode properties for the tokenizer pipeline.
//
// All Unicode knowledge (categories, normalization forms, case mapping) comes from utf8proc;
// nothing here holds a hand-made table. The predicates mirror the Rust `char` methods that the
// HF `tokenizers` library uses (is_whitespace, is_alphanumeric, is_punctuation, ...), derived
// from general categories.
//
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loom::tokenizer {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes one code point at `pos` of valid UTF-8 and advances `pos`. Input must be valid
// (see sanitize_utf8); on a malformed byte it returns U+FFFD and advances one byte.
char32_t next_code_point(std::string_view s, size_t& pos);

// Number of bytes of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
inline size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

void append_utf8(std::string& out, char32_t cp);

// Length of the well-formed sequence at s[pos] (Unicode ch. 3, table 3-7: no overlongs, no
// surrogates), or 0 when it is not one. With allow_cut, a sequence that is well-formed as far as
// `s` goes but cut by its end counts (its full length is returned).
size_t valid_sequence_length(std::string_view s, size_t pos, bool allow_cut = false);

bool is_valid_utf8(std::string_view s);

// Returns `s` with each maximal invalid subsequence replaced by U+FFFD, as Python's
// bytes.decode('utf-8', errors='replace') and Rust's String::from_utf8_lossy do.
std::string sanitize_utf8(std::string_view s);

// Unicode properties, as the Rust standard library defines them for `char`.
bool is_whitespace(char32_t c);    // White_Space: Z* categories plus \t\n\v\f\r and U+0085
bool is_alphanumeric(char32_t c);  // L*, N* (approximates Alphabetic || Numeric)
bool is_numeric(char32_t c);       // N*
bool is_punctuation(char32_t c);   // P*
bool is_ascii_punctuation(char32_t c);
bool is_other(char32_t c);            // C* (control, format, surrogate, private, unassigned)
bool is_mark_nonspacing(char32_t c);  // Mn
bool is_combining_mark(char32_t c);   // canonical combining class != 0
bool is_word_char(char32_t c);        // regex \w: alphanumeric, marks, connector punctuation

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
std::string normalize_unicode(std::string_view s, NormalForm form);
std::string to_lower(std::string_view s);

}  // namespace loom::tokenizer
