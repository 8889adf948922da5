#include "tokenizer/pre_tokenizers.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

void PreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece& piece : pieces)
    split(std::move(piece), [&](Piece&& p) { out.push_back(std::move(p)); });
  pieces = std::move(out);
}

namespace {

// The GPT-2 pre-tokenization regex (openai/gpt-2 encoder.py), as HF's ByteLevel uses it.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

bool is_punct(char32_t c) {
  return is_ascii_punctuation(c) || is_punctuation(c);
}

}  // namespace

void SplitPreTokenizer::split(Piece&& piece, PieceSink sink) const {
  split_by_regex(piece, pattern_, invert_, behavior_, sink);
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space) {
  if (use_regex) regex_.emplace(kGpt2Pattern);
}

void ByteLevelPreTokenizer::split(Piece&& piece, PieceSink sink) const {
  if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) {
    piece.text.insert(0, 1, ' ');
  }
  auto map_bytes = [&](Piece&& p) {
    std::string mapped;
    mapped.reserve(p.text.size() * 2);
    append_byte_level(p.text, mapped);
    p.text.swap(mapped);
    sink(std::move(p));
  };
  if (regex_) {
    split_by_regex(piece, *regex_, false, SplitBehavior::kIsolated, map_bytes);
  } else if (!piece.text.empty()) {
    map_bytes(std::move(piece));
  }
}

void MetaspacePreTokenizer::split(Piece&& piece, PieceSink sink) const {
  Piece replaced{std::string(), piece.at_start};
  replaced.text.reserve(piece.text.size() + replacement_.size());
  for (char ch : piece.text) {
    if (ch == ' ') {
      replaced.text += replacement_;
    } else {
      replaced.text += ch;
    }
  }
  bool starts = replaced.text.compare(0, replacement_.size(), replacement_) == 0;
  bool prepend = !starts && (scheme_ == PrependScheme::kAlways ||
                             (scheme_ == PrependScheme::kFirst && piece.at_start));
  if (prepend) replaced.text.insert(0, replacement_);
  if (!split_) {
    if (!replaced.text.empty()) sink(std::move(replaced));
    return;
  }
  // Each replacement starts a new piece (HF: split on it, MergedWithNext).
  SplitEmitter emitter(replaced, SplitBehavior::kMergedWithNext, sink);
  size_t last = 0, pos = 0;
  while ((pos = replaced.text.find(replacement_, pos)) != std::string::npos) {
    if (last < pos) emitter.span(last, pos, false);
    emitter.span(pos, pos + replacement_.size(), true);
    pos += replacement_.size();
    last = pos;
  }
  if (last < replaced.text.size()) emitter.span(last, replaced.text.size(), false);
  emitter.finish();
}

void DigitsPreTokenizer::split(Piece&& piece, PieceSink sink) const {
  split_by_char(piece, is_numeric,
                individual_digits_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, sink);
}

void PunctuationPreTokenizer::split(Piece&& piece, PieceSink sink) const {
  split_by_char(piece, is_punct, behavior_, sink);
}

WhitespacePreTokenizer::WhitespacePreTokenizer() : regex_(R"(\w+|[^\w\s]+)") {}

void WhitespacePreTokenizer::split(Piece&& piece, PieceSink sink) const {
  split_by_regex(piece, regex_, /*invert=*/true, SplitBehavior::kRemoved, sink);
}

void WhitespaceSplitPreTokenizer::split(Piece&& piece, PieceSink sink) const {
  split_by_char(piece, is_whitespace, SplitBehavior::kRemoved, sink);
}

void BertPreTokenizer::split(Piece&& piece, PieceSink sink) const {
  split_by_char(piece, is_whitespace, SplitBehavior::kRemoved, [&](Piece&& word) {
    split_by_char(word, is_punct, SplitBehavior::kIsolated, sink);
  });
}

double SequencePreTokenizer::max_growth() const {
  double growth = 1;
  for (const auto& child : children_) growth *= child->max_growth();
  return growth;
}

void SequencePreTokenizer::split(Piece&& piece, PieceSink sink) const {
  run(0, std::move(piece), sink);
}

void SequencePreTokenizer::run(size_t stage, Piece&& piece, PieceSink sink) const {
  if (stage == children_.size()) {
    sink(std::move(piece));
    return;
  }
  children_[stage]->split(std::move(piece), [&](Piece&& p) { run(stage + 1, std::move(p), sink); });
}

}  // namespace loom::tokenizer
