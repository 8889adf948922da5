// loom::Error — the one error type for anything caused by input (files, requests, prompts,
// templates). It carries a category, used at the edge to pick an exit code or HTTP status, and
// a message that already names the file, byte offset, tensor or key involved.
//
// Contract: library code throws loom::Error for bad input and never calls exit() or abort()
// for it. A broken internal invariant is a programming error and uses LOOM_ASSERT instead.
// Thread-safety: values; copy freely.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace loom {

enum class ErrorCode {
  kInvalidArgument,  // a caller's request is malformed (bad flag, bad JSON request field)
  kCorruption,       // a file's bytes contradict its format (truncated, out-of-range offset)
  kNotFound,         // a file, key or tensor that must exist does not
  kUnsupported,      // well-formed, but a feature loom does not implement (e.g. an IQ quant)
  kIoError,          // the operating system refused (open, mmap, write)
  kOutOfRange,       // a request exceeds a configured limit (context length, body size)
  kInternal,         // should not happen; reported rather than crashing
};

std::string_view error_code_name(ErrorCode code);

// `message` made safe to print, log and put in a JSON response: invalid UTF-8 bytes and control
// characters become \xNN (\n, \t, \r as such), and past kMaxErrorMessageBytes it is cut at a
// character boundary with "...". Messages quote input (token strings, JSON keys, template
// text), and input is not trusted to be printable.
constexpr size_t kMaxErrorMessageBytes = 4096;
std::string sanitize_error_message(std::string_view message);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string_view message)
      : std::runtime_error(sanitize_error_message(message)), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// Throws loom::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(code, fmt::format(format, std::forward<Args>(args)...));
}

[[noreturn]] void assert_failed(const char* expr, const char* file, int line);

}  // namespace loom

// For invariants that only a bug in loom can break (never for input checks).
#define LOOM_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::loom::assert_failed(#expr, __FILE__, __LINE__))
