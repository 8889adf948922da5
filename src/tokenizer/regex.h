// A compiled PCRE2 regular expression (UTF + UCP mode, JIT when available), used where HF
// `tokenizers` uses Oniguruma: Split pre-tokenizer, Replace normalizer/decoder, the ByteLevel
// pre-tokenizer. In UCP mode \s, \w, \d and \p{..} are Unicode-aware as in Oniguruma.
//
// Ownership: owns the compiled code. Thread-safety: immutable after construction; find_all
// may be called concurrently (per-thread match data lives in thread_local storage).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/function_ref.h"

namespace loom::tokenizer {

struct Match {
  size_t begin;
  size_t end;
};

// Rewrites the Oniguruma escapes whose meaning differs in PCRE2 (\w, \W, \h, \H) so that a
// pattern from tokenizer.json matches what HF `tokenizers` matches.
std::string oniguruma_to_pcre2(std::string_view pattern);

class Regex {
 public:
  // `pattern` uses Oniguruma syntax (see oniguruma_to_pcre2). Throws loom::Error
  // (kInvalidArgument) naming the pattern when it does not compile.
  explicit Regex(const std::string& pattern);
  // A regex that matches `literal` exactly (metacharacters escaped).
  static Regex literal(std::string_view literal);
  ~Regex();
  Regex(Regex&& other) noexcept;
  Regex& operator=(Regex&&) = delete;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches, left to right. An empty match advances by one character,
  // as Oniguruma's search loop does. `text` must be valid UTF-8.
  void find_all(std::string_view text, std::vector<Match>& out) const;
  // Same matches, handed to `on_match(begin, end)` one by one (no list is built).
  void for_each_match(std::string_view text, FunctionRef<void(size_t, size_t)> on_match) const;
  const std::string& pattern() const { return pattern_; }
  // A lower bound on the bytes of any match: the literal's length, else 1 when PCRE2 proves
  // the pattern cannot match the empty string, else 0. Bounds how often it can match.
  size_t min_match_bytes() const;

 private:
  std::string pattern_;
  void* code_ = nullptr;                // pcre2_code_8*
  size_t literal_bytes_ = kNotLiteral;  // set by literal()
  static constexpr size_t kNotLiteral = static_cast<size_t>(-1);
};

// The growth factor (pipeline.h) of replacing every match of `pattern` by `content`: with
// matches of at least m >= 1 bytes, c / m; when matches may be empty, up to n + 1 of them
// in n bytes, 1 + 2c.
double replace_growth(const Regex& pattern, std::string_view content);

}  // namespace loom::tokenizer
