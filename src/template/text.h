// UTF-8 string helpers with Python str semantics: Python indexes, slices, measures and reverses
// strings by code point, and its strip()/split() treat Unicode whitespace as whitespace.
// Invalid UTF-8 bytes are treated as one code point each, so no input can make these fail.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loom::jinja::text {

// Byte offsets of each code point start, plus s.size() at the end.
std::vector<size_t> code_point_offsets(std::string_view s);
size_t code_point_count(std::string_view s);
std::vector<std::string> code_points(std::string_view s);

bool is_python_space(char32_t c);
std::string strip(std::string_view s, bool left, bool right,
                  const std::optional<std::string>& chars = std::nullopt);
// str.split(sep, maxsplit) / str.rsplit; sep == nullopt splits on runs of whitespace.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit, bool from_right);
std::vector<std::string> splitlines(std::string_view s);
std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                    int64_t count);
int64_t count(std::string_view s, std::string_view sub);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);
// Python's str.title(): a cased letter after an uncased character starts a word.
std::string python_title(std::string_view s);
// Jinja2's title filter: words start after whitespace or one of "-([{<".
std::string jinja_title(std::string_view s);

bool is_alpha(std::string_view s);
bool is_digit(std::string_view s);
bool is_alnum(std::string_view s);
bool is_space(std::string_view s);
bool is_lower(std::string_view s);
bool is_upper(std::string_view s);

}  // namespace loom::jinja::text
