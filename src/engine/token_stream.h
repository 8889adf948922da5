// TokenStream — what happens to each generated token of one sequence, the one decode loop that
// `loom run` (Generator) and the server (Scheduler) share: EOS ends it (the EOS id is not
// text), stop strings end it (and are cut from the text), max_tokens and the end of the
// context end it ("length"), and text comes out UTF-8-safe as it becomes final (incremental
// detokenizing, stop-string look-behind), and the degeneration guard ends a generation that
// loops ("repetition").
// Thread-safety: one sequence, one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/degeneration.h"
#include "sample/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace loom {

struct TokenStreamOptions {
  std::vector<std::string> stop;
  std::vector<int32_t> eos_ids;
  bool ignore_eos = false;
  int64_t max_tokens = 16;
  int64_t context = 0;  // prompt + generated may not pass it
  // Special tokens (other than EOS) come out as their text, e.g. "<tool_call>" or
  // "[TOOL_CALLS]", for requests whose output is parsed for tool calls.
  bool special_text = false;
  // The degeneration guard (engine/degeneration.h): kStop ends a looping generation with
  // finish_reason "repetition"; kPenalize only reports the detection (Step::degeneration).
  GuardOptions guard;
};

class TokenStream {
 public:
  // `tokenizer` may be null (a model without one: ids only, no text, no stop strings).
  TokenStream(const tokenizer::Tokenizer* tokenizer, TokenStreamOptions options);

  struct Step {
    std::string text;           // new final text (may be empty)
    bool eos = false;           // the token was an EOS id: not text, not to be streamed
    std::string finish_reason;  // "stop", "length" or "repetition" when generation ends here
    bool degeneration = false;  // the guard recognised a loop at this token
  };
  // After a token was sampled; `total_tokens` counts prompt + generated, this one included.
  Step push(int32_t token, int64_t total_tokens);

  // The text still held back when generation ends for `reason` ("stop", "length"; nothing
  // after "cancelled" or "error", or after a stop string), and the reason, which becomes
  // "stop" when that text completes a stop string.
  struct Final {
    std::string text;
    std::string finish_reason;
    // "repetition": the whole text ends after this many bytes (the end of the loop's first
    // copy). Text already handed out past it cannot be taken back from a stream; a caller that
    // collects the text cuts it here. -1: nothing to cut.
    int64_t text_bytes = -1;
  };
  Final finish(const std::string& reason);

  int64_t generated() const { return generated_; }
  // The guard's detection, once it fired.
  const std::optional<Degeneration>& degeneration() const { return degeneration_; }

 private:
  TokenStreamOptions options_;
  std::optional<tokenizer::IncrementalDecoder> detok_;
  sample::StopStringMatcher stops_;
  int64_t generated_ = 0;
  bool stopped_ = false;
  std::optional<DegenerationDetector> guard_;
  std::optional<Degeneration> degeneration_;
  int64_t emitted_bytes_ = 0;  // text handed out so far
  int64_t cut_at_ = -1;        // Final::text_bytes
};

}  // namespace loom
