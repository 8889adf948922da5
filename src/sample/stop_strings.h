// loom::sample stop conditions — stop strings over streamed text, EOS ids and max tokens.
//
// StopStringMatcher sits between the incremental detokenizer and the client. Text arrives in
// pieces (one token's worth each); push() returns the part that is safe to send now and holds
// back any tail that could still grow into a stop string, so a stop string split across tokens
// is caught and never partly streamed. Output excludes the stop string (OpenAI's `stop`).
//
// Which stop wins when several match: the one that is complete first in the stream (earliest
// end), and among those ending together the one starting first (the longest). This is the
// answer a token-by-token stream gives, so the result does not depend on how the text was cut
// into pieces (e.g. stops {"abcd", "bc"} on "abcd" stop at "bc" and emit "a").
//
// UTF-8: emitted text never ends inside a multi-byte character; an incomplete trailing
// sequence is held until its last byte arrives (flush() releases it as-is). Stop strings are
// matched bytewise, which for valid UTF-8 is matching by characters.
//
// Thread-safety: none; one per sequence.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom::sample {

class StopStringMatcher {
 public:
  struct Result {
    std::string text;      // safe to emit now (before the stop string, if one was hit)
    bool stopped = false;  // a stop string was completed; generation should end
  };

  // Empty stop strings are ignored (they would match before any text).
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  // Feeds the next piece. After a stop, further pushes return nothing and stay stopped.
  Result push(std::string_view piece);
  // End of generation without a stop: returns everything still held back.
  std::string flush();
  void reset();

  bool stopped() const { return matched_.has_value(); }
  // Index (into the constructor's list) of the stop string that was hit.
  std::optional<size_t> matched_index() const { return matched_; }
  // Bytes held back right now (a possible start of a stop string, or a partial character).
  std::string_view held() const { return held_; }

 private:
  std::vector<std::string> stops_;
  std::vector<size_t> original_index_;  // stops_[i] came from the constructor's list at this index
  std::string held_;
  std::optional<size_t> matched_;
};

// Length of the longest prefix of `text` that does not end inside a UTF-8 character (a
// trailing lead byte without all its continuation bytes is cut off; invalid bytes are kept).
size_t utf8_complete_prefix(std::string_view text);

enum class FinishReason {
  kNone,    // keep generating
  kStop,    // EOS token or stop string (OpenAI "stop")
  kLength,  // max_tokens reached (OpenAI "length")
};

// EOS ids and the token budget of one sequence. An EOS token is not counted as output text.
class StopConditions {
 public:
  // max_tokens: 0 = no limit.
  StopConditions(std::span<const int32_t> eos_ids, int32_t max_tokens);

  bool is_eos(int32_t token) const;
  // Call once per generated token: kStop for an EOS id, kLength when this token used up the
  // budget, else kNone.
  FinishReason on_token(int32_t token);
  int32_t generated() const { return generated_; }
  void reset() { generated_ = 0; }

 private:
  std::vector<int32_t> eos_;  // sorted, unique; usually one to three ids
  int32_t max_tokens_;
  int32_t generated_ = 0;
};

}  // namespace loom::sample
