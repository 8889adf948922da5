#include "tokenizer/pre_tokenizers.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

namespace {

// Covering spans where each character satisfying `pred` is its own match (HF's Pattern for
// `Fn(char) -> bool`).
template <typename Pred>
std::vector<Span> spans_from_predicate(std::string_view text, Pred pred) {
  std::vector<Span> spans;
  size_t pos = 0, last = 0;
  while (pos < text.size()) {
    size_t at = pos;
    char32_t c = next_code_point(text, pos);
    if (pred(c)) {
      if (last < at) spans.push_back({last, at, false});
      spans.push_back({at, pos, true});
      last = pos;
    }
  }
  if (last < text.size()) spans.push_back({last, text.size(), false});
  return spans;
}

// Applies `fn(piece, out)` to every piece, replacing the list.
template <typename Fn>
void split_each(std::vector<Piece>& pieces, Fn fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (const Piece& piece : pieces) fn(piece, out);
  pieces = std::move(out);
}

void split_regex(std::vector<Piece>& pieces, const Regex& regex, SplitBehavior behavior,
                 bool invert) {
  std::vector<Match> matches;
  split_each(pieces, [&](const Piece& piece, std::vector<Piece>& out) {
    matches.clear();
    regex.find_all(piece.text, matches);
    split_piece(piece, spans_from_matches(piece.text, matches, invert), behavior, out);
  });
}

// The GPT-2 pre-tokenization regex (openai/gpt-2 encoder.py), as HF's ByteLevel uses it.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

void SplitPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  split_regex(pieces, pattern_, behavior_, invert_);
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space) {
  if (use_regex) regex_.emplace(kGpt2Pattern);
}

void ByteLevelPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  if (add_prefix_space_) {
    for (Piece& piece : pieces) {
      if (piece.text.empty() || piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
    }
  }
  if (regex_) split_regex(pieces, *regex_, SplitBehavior::kIsolated, false);
  std::string mapped;
  for (Piece& piece : pieces) {
    mapped.clear();
    append_byte_level(piece.text, mapped);
    piece.text.swap(mapped);
  }
}

void MetaspacePreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  split_each(pieces, [&](const Piece& piece, std::vector<Piece>& out) {
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
      if (!replaced.text.empty()) out.push_back(std::move(replaced));
      return;
    }
    std::vector<Span> spans;
    size_t last = 0, pos = 0;
    while ((pos = replaced.text.find(replacement_, pos)) != std::string::npos) {
      if (last < pos) spans.push_back({last, pos, false});
      spans.push_back({pos, pos + replacement_.size(), true});
      pos += replacement_.size();
      last = pos;
    }
    if (last < replaced.text.size()) spans.push_back({last, replaced.text.size(), false});
    split_piece(replaced, spans, SplitBehavior::kMergedWithNext, out);
  });
}

void DigitsPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  auto behavior = individual_digits_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
  split_each(pieces, [&](const Piece& piece, std::vector<Piece>& out) {
    split_piece(piece, spans_from_predicate(piece.text, is_numeric), behavior, out);
  });
}

namespace {
bool is_punct(char32_t c) {
  return is_ascii_punctuation(c) || is_punctuation(c);
}
}  // namespace

void PunctuationPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  split_each(pieces, [&](const Piece& piece, std::vector<Piece>& out) {
    split_piece(piece, spans_from_predicate(piece.text, is_punct), behavior_, out);
  });
}

WhitespacePreTokenizer::WhitespacePreTokenizer() : regex_(R"(\w+|[^\w\s]+)") {}

void WhitespacePreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  split_regex(pieces, regex_, SplitBehavior::kRemoved, /*invert=*/true);
}

void WhitespaceSplitPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  split_each(pieces, [&](const Piece& piece, std::vector<Piece>& out) {
    split_piece(piece, spans_from_predicate(piece.text, is_whitespace), SplitBehavior::kRemoved,
                out);
  });
}

void BertPreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  WhitespaceSplitPreTokenizer().pre_tokenize(pieces);
  split_each(pieces, [&](const Piece& piece, std::vector<Piece>& out) {
    split_piece(piece, spans_from_predicate(piece.text, is_punct), SplitBehavior::kIsolated, out);
  });
}

void SequencePreTokenizer::pre_tokenize(std::vector<Piece>& pieces) const {
  for (const auto& child : children_) child->pre_tokenize(pieces);
}

}  // namespace loom::tokenizer
