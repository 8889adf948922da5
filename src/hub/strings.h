// Small text helpers the hub's two files share (ASCII only: Hub names and headers are ASCII).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <string_view>

namespace loom::hub::detail {

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Exactly n hex digits (n = 0: any non-empty number of them).
inline bool is_hex(std::string_view s, size_t n = 0) {
  return !s.empty() && (n == 0 || s.size() == n) && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
  });
}

// An environment variable, "" when unset.
inline std::string env(const char* key) {
  const char* v = std::getenv(key);
  return v != nullptr ? std::string(v) : std::string();
}

}  // namespace loom::hub::detail
