#include "tokenizer/byte_level.h"

#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {

// The GPT-2 construction (openai/gpt-2 encoder.py, bytes_to_unicode): bytes in '!'..'~',
// U+00A1..U+00AC and U+00AE..U+00FF keep their code point; the remaining 68 bytes take
// U+0100, U+0101, ... in byte order.
struct Mapping {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<int, 0x200> cp_to_byte{};
  Mapping() {
    cp_to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char32_t cp = keep ? static_cast<char32_t>(b) : next++;
      byte_to_cp[b] = cp;
      append_utf8(byte_to_utf8[b], cp);
      cp_to_byte[cp] = b;
    }
  }
};

const Mapping& mapping() {
  static const Mapping m;
  return m;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() {
  return mapping().byte_to_utf8;
}

std::optional<unsigned char> unicode_to_byte(char32_t cp) {
  if (cp >= 0x200) return std::nullopt;
  int b = mapping().cp_to_byte[cp];
  if (b < 0) return std::nullopt;
  return static_cast<unsigned char>(b);
}

void append_byte_level(std::string_view text, std::string& out) {
  const auto& table = mapping().byte_to_utf8;
  for (char ch : text) out += table[static_cast<unsigned char>(ch)];
}

}  // namespace loom::tokenizer
