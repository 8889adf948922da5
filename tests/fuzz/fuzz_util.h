// Shared by the libFuzzer targets: what every target checks of an error it catches, and how a
// target splits one input into parts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace loom::fuzz {

// An error a person will read: never empty, always valid UTF-8 without control characters
// (issue 12: a use-after-free printed heap bytes as the message). A violation is a crash.
inline void check_error(const Error& e) {
  const std::string_view what = e.what();
  if (what.empty()) __builtin_trap();
  for (size_t i = 0; i < what.size();) {
    const auto c = static_cast<unsigned char>(what[i]);
    if (c < 0x20 || c == 0x7F) __builtin_trap();
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || i + n > what.size()) __builtin_trap();
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(what[i + k]) & 0xC0) != 0x80) __builtin_trap();
    }
    i += n;
  }
}

// Splits `input` at the first `separator`: (before, after), or (input, nullopt-like empty with
// found=false) when the separator is absent.
struct Parts {
  std::string_view first;
  std::string_view second;
  bool has_second = false;
};
inline Parts split(std::string_view input, std::string_view separator) {
  const size_t at = input.find(separator);
  if (at == std::string_view::npos) return {input, {}, false};
  return {input.substr(0, at), input.substr(at + separator.size()), true};
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace loom::fuzz
