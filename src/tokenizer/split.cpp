#include "tokenizer/split.h"

#include "tokenizer/unicode.h"

namespace loom::tokenizer {

void SplitEmitter::emit(size_t begin, size_t end) {
  if (begin == end) return;  // HF drops empty splits
  sink_(Piece{piece_.text.substr(begin, end - begin), piece_.at_start && begin == 0});
}

void SplitEmitter::span(size_t begin, size_t end, bool is_match) {
  switch (behavior_) {
    case SplitBehavior::kIsolated:
      emit(begin, end);
      break;
    case SplitBehavior::kRemoved:
      if (!is_match) emit(begin, end);
      break;
    case SplitBehavior::kContiguous:
      // Runs of spans with the same flag become one piece.
      if (has_pending_ && is_match == previous_match_) {
        pending_end_ = end;
      } else {
        if (has_pending_) emit(pending_begin_, pending_end_);
        has_pending_ = true;
        pending_begin_ = begin;
        pending_end_ = end;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      // A delimiter joins the piece before it (unless that one was a delimiter too).
      if (is_match && !previous_match_ && has_pending_) {
        pending_end_ = end;
      } else {
        if (has_pending_) emit(pending_begin_, pending_end_);
        has_pending_ = true;
        pending_begin_ = begin;
        pending_end_ = end;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      // A delimiter waits for the following span and joins it unless that is a delimiter.
      if (has_pending_) {
        if (!is_match) {
          emit(pending_begin_, end);
          has_pending_ = false;
          break;
        }
        emit(pending_begin_, pending_end_);
        has_pending_ = false;
      }
      if (is_match) {
        has_pending_ = true;
        pending_begin_ = begin;
        pending_end_ = end;
      } else {
        emit(begin, end);
      }
      break;
  }
  previous_match_ = is_match;
}

void SplitEmitter::finish() {
  if (has_pending_) emit(pending_begin_, pending_end_);
  has_pending_ = false;
}

void split_by_regex(const Piece& piece, const Regex& regex, bool invert, SplitBehavior behavior,
                    PieceSink sink) {
  SplitEmitter emitter(piece, behavior, sink);
  size_t prev = 0;
  regex.for_each_match(piece.text, [&](size_t begin, size_t end) {
    if (prev != begin) emitter.span(prev, begin, invert);
    emitter.span(begin, end, !invert);
    prev = end;
  });
  if (prev != piece.text.size()) emitter.span(prev, piece.text.size(), invert);
  emitter.finish();
}

void split_by_char(const Piece& piece, bool (*pred)(char32_t), SplitBehavior behavior,
                   PieceSink sink) {
  SplitEmitter emitter(piece, behavior, sink);
  const std::string& text = piece.text;
  size_t pos = 0, last = 0;
  while (pos < text.size()) {
    size_t at = pos;
    char32_t c = next_code_point(text, pos);
    if (pred(c)) {
      if (last < at) emitter.span(last, at, false);
      emitter.span(at, pos, true);
      last = pos;
    }
  }
  if (last < text.size()) emitter.span(last, text.size(), false);
  emitter.finish();
}

}  // namespace loom::tokenizer
