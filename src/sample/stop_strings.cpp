#include "sample/stop_strings.h"

#include <algorithm>

#include "core/error.h"

namespace loom::sample {

size_t utf8_complete_prefix(std::string_view text) {
  const size_t size = text.size();
  if (size == 0) return 0;
  // Walk back over at most three continuation bytes (10xxxxxx) to the last character's start.
  size_t start = size - 1;
  while (start > 0 && size - start < 4 &&
         (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
    --start;
  }
  const auto lead = static_cast<unsigned char>(text[start]);
  size_t expected = 0;
  if (lead < 0x80) {
    expected = 1;
  } else if ((lead & 0xE0) == 0xC0) {
    expected = 2;
  } else if ((lead & 0xF0) == 0xE0) {
    expected = 3;
  } else if ((lead & 0xF8) == 0xF0) {
    expected = 4;
  } else {
    return size;  // not a lead byte: invalid UTF-8, nothing to wait for
  }
  return size - start < expected ? start : size;
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) {
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) continue;
    stops_.push_back(std::move(stop_strings[i]));
    original_index_.push_back(i);
  }
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view piece) {
  Result result;
  if (matched_) return result;
  held_.append(piece);

  // Earliest end wins, then earliest start: what a byte-by-byte stream would have seen first.
  // held_ never contains a complete stop from an earlier push (it would have stopped then), so
  // the first occurrence of each stop is the candidate.
  size_t best = stops_.size();
  size_t best_pos = 0;
  size_t best_end = std::string::npos;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t pos = held_.find(stops_[i]);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stops_[i].size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best = i;
      best_pos = pos;
      best_end = end;
    }
  }
  if (best < stops_.size()) {
    result.text = held_.substr(0, best_pos);
    result.stopped = true;
    matched_ = original_index_[best];
    held_.clear();
    return result;
  }

  // Hold back the longest tail of held_ that is a proper prefix of some stop string: it may
  // still be completed by the next pieces.
  size_t hold = 0;
  const std::string_view text = held_;
  for (const std::string& stop : stops_) {
    for (size_t k = std::min(stop.size() - 1, text.size()); k > hold; --k) {
      if (text.ends_with(std::string_view(stop).substr(0, k))) {
        hold = k;
        break;
      }
    }
  }
  // Never cut inside a character: a cut at a continuation byte, or a trailing incomplete
  // character, moves back to the character's start.
  const size_t cut = utf8_complete_prefix(text.substr(0, text.size() - hold));
  result.text = held_.substr(0, cut);
  held_.erase(0, cut);
  return result;
}

std::string StopStringMatcher::flush() {
  std::string rest;
  rest.swap(held_);
  return rest;
}

void StopStringMatcher::reset() {
  held_.clear();
  matched_.reset();
}

StopConditions::StopConditions(std::span<const int32_t> eos_ids, int32_t max_tokens)
    : eos_(eos_ids.begin(), eos_ids.end()), max_tokens_(max_tokens) {
  if (max_tokens < 0) {
    fail(ErrorCode::kInvalidArgument,
         "max_tokens = {} is out of range: must be >= 0 (0 = no limit)", max_tokens);
  }
  std::sort(eos_.begin(), eos_.end());
  eos_.erase(std::unique(eos_.begin(), eos_.end()), eos_.end());
}

bool StopConditions::is_eos(int32_t token) const {
  return std::binary_search(eos_.begin(), eos_.end(), token);
}

FinishReason StopConditions::on_token(int32_t token) {
  if (is_eos(token)) return FinishReason::kStop;
  ++generated_;
  if (max_tokens_ > 0 && generated_ >= max_tokens_) return FinishReason::kLength;
  return FinishReason::kNone;
}

}  // namespace loom::sample
