// Splitting a piece at delimiter spans, shared by the pre-tokenizers (HF
// NormalizedString::split with a SplitDelimiterBehavior).
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>
#include <vector>

#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"

namespace loom::tokenizer {

// Split behaviour of a delimiter inside a piece (HF SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A run of the input that is either a delimiter match or not.
struct Span {
  size_t begin;
  size_t end;
  bool is_match;
};

// Appends the pieces of `piece` for the given covering spans (as HF NormalizedString::split
// does): merges or drops the matched spans per `behavior` and skips empty results. Only the
// first output piece inherits `piece.at_start`.
void split_piece(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior,
                 std::vector<Piece>& out);

// Covering spans from regex matches (non-matching gaps included, in order).
std::vector<Span> spans_from_matches(std::string_view text, const std::vector<Match>& m,
                                     bool invert);

}  // namespace loom::tokenizer
