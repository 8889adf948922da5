#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace loom {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kCorruption:
      return "corrupt input";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kIoError:
      return "I/O error";
    case ErrorCode::kOutOfRange:
      return "out of range";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown error";
}

void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "loom: internal invariant broken: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

}  // namespace loom
