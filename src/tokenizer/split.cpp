#include "tokenizer/split.h"

#include <algorithm>

namespace loom::tokenizer {

std::vector<Span> spans_from_matches(std::string_view text, const std::vector<Match>& matches,
                                     bool invert) {
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const Match& m : matches) {
    if (prev != m.begin) spans.push_back({prev, m.begin, invert});
    spans.push_back({m.begin, m.end, !invert});
    prev = m.end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});
  return spans;
}

void split_piece(const Piece& piece, const std::vector<Span>& spans, SplitBehavior behavior,
                 std::vector<Piece>& out) {
  // First fold the spans into (range, keep) per behaviour, then emit the non-empty ones.
  struct Range {
    size_t begin, end;
    bool remove;
  };
  std::vector<Range> ranges;
  ranges.reserve(spans.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) ranges.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) ranges.push_back({s.begin, s.end, s.is_match});
      break;
    case SplitBehavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !ranges.empty()) {
          ranges.back().end = s.end;
        } else {
          ranges.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !ranges.empty()) {
          ranges.back().end = s.end;
        } else {
          ranges.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      // Walk backwards: a match joins the piece that follows it.
      for (size_t i = spans.size(); i-- > 0;) {
        const Span& s = spans[i];
        if (s.is_match && !previous_match && !ranges.empty()) {
          ranges.back().begin = s.begin;
        } else {
          ranges.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      std::reverse(ranges.begin(), ranges.end());
      break;
  }
  bool first = true;
  for (const Range& r : ranges) {
    if (r.remove || r.begin == r.end) continue;
    out.push_back(
        {piece.text.substr(r.begin, r.end - r.begin), piece.at_start && first && r.begin == 0});
    first = false;
  }
}

}  // namespace loom::tokenizer
