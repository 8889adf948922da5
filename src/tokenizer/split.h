// Streaming split of one piece at delimiter spans, shared by the pre-tokenizers (HF
// NormalizedString::split with a SplitDelimiterBehavior). Spans arrive left to right and
// cover the piece; finished pieces go to the sink as soon as the behaviour allows.
//
// Thread-safety: a SplitEmitter is per-call state.
#pragma once

#include <string_view>

#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"

namespace loom::tokenizer {

// Split behaviour of a delimiter inside a piece (HF SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class SplitEmitter {
 public:
  SplitEmitter(const Piece& piece, SplitBehavior behavior, PieceSink sink)
      : piece_(piece), behavior_(behavior), sink_(sink) {}
  // The next span [begin, end); `is_match` says whether it is a delimiter.
  void span(size_t begin, size_t end, bool is_match);
  // Flushes what is held back; call once after the last span.
  void finish();

 private:
  void emit(size_t begin, size_t end);

  const Piece& piece_;
  SplitBehavior behavior_;
  PieceSink sink_;
  bool has_pending_ = false;  // a range held back until the next span decides its fate
  size_t pending_begin_ = 0, pending_end_ = 0;
  bool previous_match_ = false;
};

// Splits `piece` at the matches of `regex` (or, with `invert`, at the gaps between them).
void split_by_regex(const Piece& piece, const Regex& regex, bool invert, SplitBehavior behavior,
                    PieceSink sink);

// Splits `piece` where single characters satisfy `pred` (each such character is a delimiter).
void split_by_char(const Piece& piece, bool (*pred)(char32_t), SplitBehavior behavior,
                   PieceSink sink);

}  // namespace loom::tokenizer
