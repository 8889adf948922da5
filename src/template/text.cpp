#include "template/text.h"

#include <utf8proc.h>

#include <algorithm>

namespace loom::jinja::text {
namespace {

// Decodes the code point at s[i]; an invalid byte decodes as itself with length 1.
char32_t decode(std::string_view s, size_t i, size_t* length) {
  utf8proc_int32_t cp = 0;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                        static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
  if (n <= 0) {
    *length = 1;
    return static_cast<unsigned char>(s[i]);
  }
  *length = static_cast<size_t>(n);
  return static_cast<char32_t>(cp);
}

void append(std::string& out, char32_t c) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

template <typename Fn>
void for_each_cp(std::string_view s, Fn fn) {
  for (size_t i = 0; i < s.size();) {
    size_t n;
    char32_t c = decode(s, i, &n);
    fn(c, s.substr(i, n));
    i += n;
  }
}

bool is_cased_upper(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_LU;
}
bool is_cased_lower(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_LL;
}
bool is_letter(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}
bool is_cased(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}
bool is_decimal(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND;
}
char32_t to_upper(char32_t c) {
  return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}
char32_t to_lower(char32_t c) {
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}
char32_t to_title(char32_t c) {
  return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c)));
}

template <typename Pred>
bool all_of_nonempty(std::string_view s, Pred pred) {
  if (s.empty()) return false;
  bool ok = true;
  for_each_cp(s, [&](char32_t c, std::string_view) { ok = ok && pred(c); });
  return ok;
}

}  // namespace

std::vector<size_t> code_point_offsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    size_t n;
    decode(s, i, &n);
    i += n;
  }
  offsets.push_back(s.size());
  return offsets;
}

size_t code_point_count(std::string_view s) {
  size_t count = 0;
  for_each_cp(s, [&](char32_t, std::string_view) { ++count; });
  return count;
}

std::vector<std::string> code_points(std::string_view s) {
  std::vector<std::string> out;
  for_each_cp(s, [&](char32_t, std::string_view bytes) { out.emplace_back(bytes); });
  return out;
}

// Python's str.isspace(): ASCII whitespace, the information separators 0x1c-0x1f, NEL, and
// the Unicode space separators.
bool is_python_space(char32_t c) {
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85) return true;
  if (c < 0x80) return false;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

std::string strip(std::string_view s, bool left, bool right,
                  const std::optional<std::string>& chars) {
  std::vector<std::string> set;
  if (chars) set = code_points(*chars);
  auto strippable = [&](char32_t c, std::string_view bytes) {
    if (!chars) return is_python_space(c);
    return std::find(set.begin(), set.end(), bytes) != set.end();
  };
  std::vector<size_t> offs = code_point_offsets(s);
  size_t n = offs.size() - 1;
  size_t begin = 0, end = n;
  size_t len;
  if (left) {
    while (begin < end && strippable(decode(s, offs[begin], &len),
                                     s.substr(offs[begin], offs[begin + 1] - offs[begin])))
      ++begin;
  }
  if (right) {
    while (end > begin && strippable(decode(s, offs[end - 1], &len),
                                     s.substr(offs[end - 1], offs[end] - offs[end - 1])))
      --end;
  }
  return std::string(s.substr(offs[begin], offs[end] - offs[begin]));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) return {std::string(s)};  // callers reject an empty separator first
    if (!from_right) {
      size_t pos = 0;
      while (static_cast<int64_t>(parts.size()) < maxsplit) {
        size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      parts.emplace_back(s.substr(pos));
    } else {
      size_t end = s.size();
      while (static_cast<int64_t>(parts.size()) < maxsplit && end >= sep->size()) {
        size_t hit = s.rfind(*sep, end - sep->size());
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
        end = hit;
      }
      parts.emplace_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
    return parts;
  }
  // Whitespace split: runs of whitespace separate words, empty words are dropped.
  std::vector<std::pair<size_t, size_t>> words;  // byte ranges
  std::vector<size_t> offs = code_point_offsets(s);
  size_t len;
  size_t i = 0, n = offs.size() - 1;
  while (i < n) {
    while (i < n && is_python_space(decode(s, offs[i], &len))) ++i;
    if (i == n) break;
    size_t start = i;
    while (i < n && !is_python_space(decode(s, offs[i], &len))) ++i;
    words.emplace_back(offs[start], offs[i]);
  }
  if (static_cast<int64_t>(words.size()) <= maxsplit) {
    for (auto [b, e] : words) parts.emplace_back(s.substr(b, e - b));
    return parts;
  }
  // With maxsplit, the unsplit remainder is kept as written.
  size_t k = static_cast<size_t>(maxsplit);
  if (!from_right) {
    for (size_t w = 0; w < k; ++w)
      parts.emplace_back(s.substr(words[w].first, words[w].second - words[w].first));
    parts.emplace_back(s.substr(words[k].first));  // Python keeps the remainder's trailing space
  } else {
    size_t first = words.size() - k;
    parts.emplace_back(s.substr(0, words[first - 1].second));
    for (size_t w = first; w < words.size(); ++w)
      parts.emplace_back(s.substr(words[w].first, words[w].second - words[w].first));
  }
  return parts;
}

std::vector<std::string> splitlines(std::string_view s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.emplace_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                    int64_t count) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  if (old_text.empty()) {
    // Python inserts the replacement before every code point and at the end.
    std::vector<std::string> cps = code_points(s);
    int64_t done = 0;
    for (const std::string& cp : cps) {
      if (done < count) {
        out += new_text;
        ++done;
      }
      out += cp;
    }
    if (done < count) out += new_text;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (done < count) {
    size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(new_text);
    pos = hit + old_text.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

int64_t count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(code_point_count(s)) + 1;
  int64_t n = 0;
  for (size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size()))
    ++n;
  return n;
}

std::string upper(std::string_view s) {
  std::string out;
  for_each_cp(s, [&](char32_t c, std::string_view) { append(out, to_upper(c)); });
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  for_each_cp(s, [&](char32_t c, std::string_view) { append(out, to_lower(c)); });
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for_each_cp(s, [&](char32_t c, std::string_view) {
    append(out, first ? to_title(c) : to_lower(c));
    first = false;
  });
  return out;
}

std::string python_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for_each_cp(s, [&](char32_t c, std::string_view) {
    append(out, prev_cased ? to_lower(c) : to_title(c));
    prev_cased = is_cased(c);
  });
  return out;
}

std::string jinja_title(std::string_view s) {
  std::string out;
  bool word_start = true;
  for_each_cp(s, [&](char32_t c, std::string_view) {
    bool sep = is_python_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      append(out, c);
      word_start = true;
    } else {
      append(out, word_start ? to_upper(c) : to_lower(c));
      word_start = false;
    }
  });
  return out;
}

bool is_alpha(std::string_view s) {
  return all_of_nonempty(s, is_letter);
}
bool is_digit(std::string_view s) {
  return all_of_nonempty(s, is_decimal);
}
bool is_alnum(std::string_view s) {
  return all_of_nonempty(s, [](char32_t c) { return is_letter(c) || is_decimal(c); });
}
bool is_space(std::string_view s) {
  return all_of_nonempty(s, is_python_space);
}

bool is_lower(std::string_view s) {
  bool any_cased = false, ok = true;
  for_each_cp(s, [&](char32_t c, std::string_view) {
    if (is_cased_upper(c) ||
        utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_LT)
      ok = false;
    if (is_cased_lower(c)) any_cased = true;
  });
  return ok && any_cased;
}

bool is_upper(std::string_view s) {
  bool any_cased = false, ok = true;
  for_each_cp(s, [&](char32_t c, std::string_view) {
    if (is_cased_lower(c) ||
        utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_LT)
      ok = false;
    if (is_cased_upper(c)) any_cased = true;
  });
  return ok && any_cased;
}

}  // namespace loom::jinja::text
