// libFuzzer target: the degeneration guard's detector (engine/degeneration.h) on arbitrary token
// streams and text (model output is not trusted to be well-formed: broken UTF-8, any ids).
// Input: records of [id byte][text length byte (low 3 bits)][text bytes]; ids come from a
// 16-token vocabulary so that loops are common. Two detectors run: the default rule and a tiny
// one whose window is rebuilt every few tokens. Every detection is checked: the tokens it
// names really are periodic with its period, over a run long enough for its rule, and what it
// says to keep lies within what was fed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "engine/degeneration.h"

namespace {

void check(const loom::Degeneration& g, const loom::DegenerationRule& rule,
           const std::vector<int32_t>& tokens, int64_t bytes) {
  const auto n = static_cast<int64_t>(tokens.size());
  bool ok = g.at_token == n - 1 && g.loop_start >= 0 && g.loop_start <= g.at_token &&
            g.keep_bytes >= 0 && g.keep_bytes <= bytes;
  if (g.period_tokens > 0) {
    const int64_t d = g.period_tokens;
    ok = ok && d <= rule.max_period && g.keep_tokens == g.loop_start + d;
    const int64_t run = g.at_token - g.loop_start + 1;
    ok = ok && run >= rule.min_loop_tokens && run >= int64_t{rule.min_copies} * d;
    for (int64_t i = g.loop_start + d; ok && i <= g.at_token; ++i) {
      ok = tokens[static_cast<size_t>(i)] == tokens[static_cast<size_t>(i - d)];
    }
  } else {
    ok = ok && g.period_chars >= 1 && g.period_chars <= rule.char_max_period;
  }
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  loom::DegenerationRule tiny;
  tiny.max_period = 8;
  tiny.min_copies = 2;
  tiny.min_loop_tokens = 4;
  tiny.char_max_period = 3;
  tiny.char_min_copies = 2;
  tiny.char_min_run = 6;
  tiny.window_tokens = 16;
  const loom::DegenerationRule rules[2] = {loom::DegenerationRule{}, tiny};
  for (const loom::DegenerationRule& rule : rules) {
    loom::DegenerationDetector detector(rule);
    std::vector<int32_t> tokens;
    int64_t bytes = 0;
    size_t i = 0;
    while (i + 2 <= size) {
      const int32_t id = data[i] % 16;
      const size_t len = std::min<size_t>(data[i + 1] & 7, size - i - 2);
      const std::string_view text(reinterpret_cast<const char*>(data + i + 2), len);
      i += 2 + len;
      tokens.push_back(id);
      bytes += static_cast<int64_t>(len);
      if (auto g = detector.push(id, text)) check(*g, rule, tokens, bytes);
    }
  }
  return 0;
}
