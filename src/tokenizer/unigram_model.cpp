#include "tokenizer/unigram_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {
// SentencePiece's penalty for an unknown character, relative to the lowest piece score
// (sentencepiece unigram_model.cc, kUnkPenalty).
constexpr double kUnkPenalty = 10.0;
}  // namespace

UnigramModel::UnigramModel(std::vector<std::pair<std::string, double>> pieces,
                           std::optional<int32_t> unk_id, bool byte_fallback)
    : unk_id_(unk_id), byte_fallback_(byte_fallback) {
  if (unk_id_ && (*unk_id_ < 0 || static_cast<size_t>(*unk_id_) >= pieces.size())) {
    fail(ErrorCode::kCorruption, "unk_id {} is outside the vocab of {} pieces", *unk_id_,
         pieces.size());
  }
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(pieces.size());
  double min_score = std::numeric_limits<double>::max();
  for (size_t i = 0; i < pieces.size(); ++i) {
    scores_.push_back(pieces[i].second);
    min_score = std::min(min_score, pieces[i].second);
    max_piece_bytes_ = std::max(max_piece_bytes_, pieces[i].first.size());
    entries.emplace_back(std::move(pieces[i].first), static_cast<int32_t>(i));
  }
  unk_score_ = (pieces.empty() ? 0.0 : min_score) - kUnkPenalty;
  vocab_ = Vocab(std::move(entries), pieces.size());  // ids are positions: dense
}

void UnigramModel::tokenize(std::string_view piece, std::vector<int32_t>& ids) const {
  const size_t n = piece.size();
  // best[i]: best score of a segmentation of piece[0, i); from[i]: start of its last token;
  // token[i]: id of that token (-1 for an unknown span).
  std::vector<double> best(n + 1, -std::numeric_limits<double>::infinity());
  std::vector<size_t> from(n + 1, 0);
  std::vector<int32_t> token(n + 1, -1);
  best[0] = 0;
  for (size_t pos = 0; pos < n;) {
    size_t char_len = std::min(utf8_length(static_cast<unsigned char>(piece[pos])), n - pos);
    if (best[pos] == -std::numeric_limits<double>::infinity()) {
      pos += char_len;
      continue;
    }
    bool single_char_covered = false;
    size_t limit = std::min(n - pos, max_piece_bytes_);
    for (size_t len = 1; len <= limit; ++len) {
      // Only character boundaries can end a token.
      if (pos + len < n && (static_cast<unsigned char>(piece[pos + len]) & 0xC0) == 0x80) continue;
      auto id = vocab_.find(piece.substr(pos, len));
      if (!id) continue;
      if (len == char_len) single_char_covered = true;
      double score = best[pos] + scores_[*id];
      if (score > best[pos + len]) {
        best[pos + len] = score;
        from[pos + len] = pos;
        token[pos + len] = *id;
      }
    }
    if (!single_char_covered) {
      double score = best[pos] + unk_score_;
      if (score > best[pos + char_len]) {
        best[pos + char_len] = score;
        from[pos + char_len] = pos;
        token[pos + char_len] = -1;
      }
    }
    pos += char_len;
  }
  // Backtrack, then emit left to right with unknown spans fused.
  std::vector<std::pair<size_t, size_t>> spans;  // (begin, end)
  std::vector<int32_t> span_ids;
  for (size_t end = n; end > 0;) {
    size_t begin = from[end];
    spans.emplace_back(begin, end);
    span_ids.push_back(token[end]);
    end = begin;
  }
  std::reverse(spans.begin(), spans.end());
  std::reverse(span_ids.begin(), span_ids.end());
  for (size_t i = 0; i < spans.size(); ++i) {
    if (span_ids[i] >= 0) {
      ids.push_back(span_ids[i]);
      continue;
    }
    size_t begin = spans[i].first, end = spans[i].second;
    while (i + 1 < spans.size() && span_ids[i + 1] < 0) end = spans[++i].second;
    if (byte_fallback_) {
      bool all = true;
      std::vector<int32_t> bytes;
      for (size_t b = begin; b < end; ++b) {
        auto id = vocab_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(piece[b])));
        if (!id) {
          all = false;
          break;
        }
        bytes.push_back(*id);
      }
      if (all) {
        ids.insert(ids.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (unk_id_) ids.push_back(*unk_id_);
  }
}

}  // namespace loom::tokenizer
