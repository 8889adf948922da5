// loom::Error messages are safe to print and to put in JSON whatever input they quote: valid
// UTF-8 is kept, invalid bytes and control characters are escaped, and length is bounded.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace loom {
namespace {

bool is_valid_utf8_without_controls(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return false;
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(ErrorMessage, KeepsPrintableUtf8) {
  Error e(ErrorCode::kCorruption, "token 'héllo 世界 🦙' is bad");
  EXPECT_STREQ(e.what(), "token 'héllo 世界 🦙' is bad");
}

TEST(ErrorMessage, EscapesControlCharacters) {
  Error e(ErrorCode::kCorruption, std::string("a\nb\tc\rd\x01"
                                              "e\x7f",
                                              10));
  EXPECT_STREQ(e.what(), "a\\nb\\tc\\rd\\x01e\\x7f");
}

TEST(ErrorMessage, EscapesInvalidUtf8) {
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate, > U+10FFFF.
  const std::string bad = "x\x80y\xE4\xB8z\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80";
  Error e(ErrorCode::kCorruption, bad);
  EXPECT_TRUE(is_valid_utf8_without_controls(e.what())) << e.what();
  EXPECT_EQ(std::string(e.what()),
            "x\\x80y\\xe4\\xb8z\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80");
}

TEST(ErrorMessage, LengthIsBoundedAtACharacterBoundary) {
  std::string huge;
  for (int i = 0; i < 10000; ++i) huge += "世";
  Error e(ErrorCode::kCorruption, huge);
  const std::string what = e.what();
  EXPECT_LE(what.size(), kMaxErrorMessageBytes + 8);
  EXPECT_TRUE(is_valid_utf8_without_controls(what));
  EXPECT_EQ(what.substr(what.size() - 3), "...");
}

TEST(ErrorMessage, FailFormatsAndSanitizes) {
  try {
    fail(ErrorCode::kNotFound, "key '{}' missing", std::string("a\0b", 3));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "key 'a\\x00b' missing");
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace loom
