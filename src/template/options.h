// Options for parsing and rendering templates (see jinja.h). Plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>

namespace loom::jinja {

struct ParseOptions {
  // Defaults are what transformers' apply_chat_template uses.
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Bounds on one render, so that a hostile or buggy template errors (kOutOfRange) instead of
// hanging, exhausting memory or overflowing the stack.
struct RenderLimits {
  uint64_t max_steps = 10'000'000;             // evaluated nodes and loop iterations
  int max_depth = 512;                         // nested evaluation, macro recursion included
  size_t max_output_bytes = size_t{64} << 20;  // rendered text, and any string built on the way
};

struct RenderOptions {
  RenderLimits limits;
  // The time strftime_now() formats (local time); the system clock when unset.
  std::optional<std::time_t> now;
};

}  // namespace loom::jinja
