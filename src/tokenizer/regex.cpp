#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {

// Per-thread scratch: match data and a JIT stack large enough for patterns such as
// `\s+(?!\S)` over long whitespace runs (the default 32 KiB stack can overflow).
struct ThreadScratch {
  pcre2_match_data* match_data = pcre2_match_data_create(16, nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadScratch() {
    if (jit_stack && context) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadScratch() {
    pcre2_match_data_free(match_data);
    pcre2_match_context_free(context);
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
  }
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;
};

ThreadScratch& scratch() {
  thread_local ThreadScratch s;
  return s;
}

}  // namespace

std::string oniguruma_to_pcre2(std::string_view pattern) {
  // Oniguruma's (and Rust regex's) \w is the Unicode "word" property: letters, marks, decimal
  // and letter numbers, connector punctuation, joiners. PCRE2 10.42 leaves marks out, so it is
  // spelled out. Oniguruma's \h is a hex digit, PCRE2's is horizontal space.
  static const std::string kWord = R"(\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\x{200C}\x{200D})";
  static const std::string kHex = "0-9a-fA-F";
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false, quoted = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (quoted) {  // \Q...\E: copied verbatim
      if (c == '\\' && i + 1 < pattern.size() && pattern[i + 1] == 'E') {
        quoted = false;
        out += "\\E";
        ++i;
      } else {
        out += c;
      }
      continue;
    }
    if (c == '\\' && i + 1 < pattern.size()) {
      char n = pattern[++i];
      if (n == 'Q') {
        quoted = true;
        out += "\\Q";
      } else if (n == 'w') {
        out += in_class ? kWord : "[" + kWord + "]";
      } else if (n == 'W' && !in_class) {
        out += "[^" + kWord + "]";
      } else if (n == 'h') {
        out += in_class ? kHex : "[" + kHex + "]";
      } else if (n == 'H' && !in_class) {
        out += "[^" + kHex + "]";
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A leading '^' and a ']' right after the opening are part of the class, not its end.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      size_t end = pattern.find(":]", i + 2);  // POSIX class such as [:alpha:]
      if (end != std::string_view::npos) {
        out.append(pattern.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& source) : pattern_(source) {
  const std::string pattern = oniguruma_to_pcre2(source);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    fail(ErrorCode::kInvalidArgument, "regex '{}' does not compile at offset {}: {}", source,
         error_offset, reinterpret_cast<const char*>(message));
  }
  // JIT is an optimisation only; the interpreter gives the same matches when it is missing.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Regex Regex::literal(std::string_view literal) {
  // \Q..\E quotes everything except a literal "\E", which is split out.
  std::string pattern;
  size_t pos = 0;
  while (pos <= literal.size()) {
    size_t e = literal.find("\\E", pos);
    std::string_view part = literal.substr(pos, e == std::string_view::npos ? e : e - pos);
    if (!part.empty()) pattern += "\\Q" + std::string(part) + "\\E";
    if (e == std::string_view::npos) break;
    pattern += "\\\\E";
    pos = e + 2;
  }
  Regex regex(pattern);
  regex.literal_bytes_ = literal.size();
  return regex;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Regex::Regex(Regex&& other) noexcept
    : pattern_(std::move(other.pattern_)),
      code_(std::exchange(other.code_, nullptr)),
      literal_bytes_(other.literal_bytes_) {}

double replace_growth(const Regex& pattern, std::string_view content) {
  const double c = static_cast<double>(content.size());
  const size_t m = pattern.min_match_bytes();
  if (m == 0) return 1.0 + 2.0 * c;
  return std::max(1.0, c / static_cast<double>(m));
}

size_t Regex::min_match_bytes() const {
  if (literal_bytes_ != kNotLiteral) return literal_bytes_;
  uint32_t min_chars = 0;
  if (pcre2_pattern_info(static_cast<pcre2_code*>(code_), PCRE2_INFO_MINLENGTH, &min_chars) != 0)
    return 0;
  return min_chars > 0 ? 1 : 0;
}

void Regex::find_all(std::string_view text, std::vector<Match>& out) const {
  for_each_match(text, [&](size_t begin, size_t end) { out.push_back({begin, end}); });
}

void Regex::for_each_match(std::string_view text,
                           FunctionRef<void(size_t, size_t)> on_match) const {
  auto* code = static_cast<pcre2_code*>(code_);
  ThreadScratch& s = scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    int rc = pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, s.match_data,
                         s.context);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      fail(ErrorCode::kInternal, "regex '{}' failed to match (PCRE2 error {})", pattern_, rc);
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.match_data);
    size_t begin = ov[0], end = ov[1];
    on_match(begin, end);
    if (end > begin) {
      offset = end;
    } else {
      if (begin >= text.size()) break;
      offset = begin + utf8_length(static_cast<unsigned char>(text[begin]));
    }
  }
}

}  // namespace loom::tokenizer
