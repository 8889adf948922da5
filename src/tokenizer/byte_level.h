// GPT-2's reversible byte <-> character mapping: each of the 256 byte values is shown as a
// printable code point (printable Latin-1 bytes as themselves, the rest shifted to U+0100..),
// so byte-level BPE vocabularies are valid UTF-8 strings. This is computed, not a table of
// Unicode data.
//
// Thread-safety: the mapping is built once (function-local static) and read-only.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace loom::tokenizer {

// UTF-8 encoding of the stand-in character for each byte.
const std::array<std::string, 256>& byte_to_unicode();
// The byte a stand-in code point represents, or nullopt for any other code point.
std::optional<unsigned char> unicode_to_byte(char32_t cp);

// Maps every byte of `text` to its stand-in character.
void append_byte_level(std::string_view text, std::string& out);

}  // namespace loom::tokenizer
