// DegenerationDetector — recognises a generation that has fallen into a loop, as it happens.
//
// Two detectors run on every generated token:
//
// Token loops. The token stream is fed into an online suffix automaton (Blumer et al. 1985) over
// a sliding window. After each token the automaton gives, in amortised O(1), the longest suffix
// of the stream that occurred before (L) and where its first occurrence ended (d tokens back).
// When L >= d the two occurrences touch or overlap, so the last n = L + d tokens are periodic
// with period d: a verbatim loop of n / d copies of a d-token unit. It fires when
//     d <= max_period  and  n >= max(min_copies * d, min_loop_tokens),
// i.e. (defaults) four verbatim copies of a unit of up to 512 tokens (a paragraph), and at least
// 56 tokens for short units, so that "very very", a refrain, a markdown rule or a row of table
// separators stays clean, while a one-token run is caught after 56 tokens and a 100-token
// paragraph loop after 400. Texts that repeat with variation (Psalm 136's refrain after a new
// line each time, Numbers 7's offerings differing in names and days, code with changing
// identifiers) never form four verbatim copies and never fire.
//
// Character runs. Inside long tokens (or when a model spells one run with tokens of varying
// length, so the token stream is not periodic) the decoded text is checked for a character
// period q <= char_max_period: a run of m codepoints in which each equals the one q before
// fires when m >= max(char_min_copies * q, char_min_run), unless the unit is all whitespace
// (indentation and alignment make long blank runs in clean text; a model stuck on whitespace
// tokens is a token loop). Defaults: 160 characters and eight copies, above the longest runs of
// clean text (an 80-column rule of '=' is 79).
//
// A detection says where the loop started and what to keep (the text up to the end of the
// loop's first copy), so a caller can end the generation there. The detector reports once;
// after that push() returns nothing.
//
// Memory: the window (window_tokens, default 4096, rebuilt when it doubles, so rebuilding costs
// O(1) amortised per token) and the automaton over it.
// Thread-safety: none; one detector per sequence.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace loom {

struct DegenerationRule {
  int32_t max_period = 512;      // longest loop unit, tokens
  int32_t min_copies = 4;        // verbatim copies of the unit
  int32_t min_loop_tokens = 56;  // periodic tokens before a short loop counts
  int32_t char_max_period = 16;  // longest character unit, codepoints
  int32_t char_min_copies = 8;
  int32_t char_min_run = 160;    // codepoints
  int32_t window_tokens = 4096;  // tokens kept for matching (>= min_copies * max_period)
};

struct Degeneration {
  int64_t at_token = 0;       // index of the token at which it fired (0 = first pushed)
  int64_t at_char = 0;        // codepoints of text up to and including that token
  int64_t loop_start = 0;     // index of the first token of the loop
  int64_t period_tokens = 0;  // token loop: the unit's length; 0 for a character run
  int64_t period_chars = 0;   // character run: the unit's length; 0 for a token loop
  int64_t keep_tokens = 0;    // tokens before the end of the first copy (token loop)
  int64_t keep_bytes = 0;     // bytes of text before the end of the first copy
};

// What a generation does when the detector fires: end it with finish_reason "repetition"
// (the text up to the end of the loop's first copy kept), or only count it (the DRY penalty,
// SamplingParams::dry_*, steers the sampler away from repeats), or nothing at all.
enum class GuardAction { kOff, kStop, kPenalize };

// "stop", "penalize", "off"; kInvalidArgument naming the choices otherwise.
GuardAction parse_guard_action(std::string_view name);
std::string_view guard_action_name(GuardAction action);

struct GuardOptions {
  GuardAction action = GuardAction::kOff;
  DegenerationRule rule;
};

class DegenerationDetector {
 public:
  explicit DegenerationDetector(DegenerationRule rule = {});

  // Feeds one token and the text it completed (UTF-8, possibly empty: text can lag a token).
  // Returns the detection the first time a loop is recognised, then nothing.
  std::optional<Degeneration> push(int32_t token, std::string_view text);

  bool fired() const { return fired_; }
  int64_t tokens() const { return tokens_; }
  const DegenerationRule& rule() const { return rule_; }

 private:
  struct State {
    int32_t len = 0;
    int32_t link = -1;
    int64_t first_end = -1;                         // stream index where the first occurrence ends
    std::vector<std::pair<int32_t, int32_t>> next;  // token -> state (not for the root)
  };
  int32_t transition(int32_t state, int32_t token) const;
  void set_transition(int32_t state, int32_t token, int32_t target);
  // Appends the token at stream index `pos`; returns (L, first end of that suffix) for the
  // longest suffix that occurred before, L = 0 when none.
  std::pair<int32_t, int64_t> extend(int32_t token, int64_t pos);
  void rebuild();
  std::optional<Degeneration> check_tokens(int64_t pos);
  std::optional<Degeneration> check_chars(std::string_view text);
  bool blank_unit(int64_t i, int64_t q) const;  // the q-character unit ending at i is whitespace

  DegenerationRule rule_;
  bool fired_ = false;
  int64_t tokens_ = 0;
  // Token loops: the automaton over window_ (stream indices base_ ..).
  std::vector<State> states_;
  std::unordered_map<int32_t, int32_t> root_next_;
  int32_t last_ = 0;
  std::vector<int32_t> window_;
  int64_t base_ = 0;
  std::vector<int64_t> token_end_bytes_;  // bytes of text after each token of the window
  // Character runs.
  int64_t chars_ = 0;
  int64_t bytes_ = 0;
  uint32_t partial_ = 0;  // a UTF-8 sequence split across pushes (rare: text comes whole)
  int partial_need_ = 0;
  int64_t partial_len_ = 0;
  std::vector<uint32_t> recent_;                        // last char_max_period codepoints (ring)
  std::vector<int64_t> run_;                            // per period q: codepoints equal to q back
  std::vector<std::pair<int64_t, int64_t>> run_start_;  // per q: (token index, byte offset)
  std::vector<int64_t> recent_token_;                   // ring: token index of each recent char
};

}  // namespace loom
