// Pre-tokenizers (HF `tokenizers` pre_tokenizers): split normalized text into pieces that the
// model tokenizes independently. Regex work goes through PCRE2 (see regex.h).
//
// Ownership: a SequencePreTokenizer owns its children. Thread-safety: immutable;
// split() may run concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/split.h"

namespace loom::tokenizer {

// Split on a literal or regex pattern with the given behaviour; `invert` swaps which spans
// count as delimiters.
class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override { return 1; }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2 byte-level: optional prefix space, optional GPT-2 regex split, then every byte is
// mapped to its printable stand-in character (byte_level.h).
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
  void split(Piece&& piece, PieceSink sink) const override;
  // Each byte becomes at most 2; a piece may gain a prefix space: 2 * (n + 1) <= 4 * max(n, 1).
  double max_growth() const override { return add_prefix_space_ ? 4 : 2; }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// SentencePiece-style: spaces become `replacement` (U+2581), a replacement is prepended per
// `scheme`, and with `split` the text is split before each replacement.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void split(Piece&& piece, PieceSink sink) const override;
  // Each space becomes the replacement, and one may be prepended per piece.
  double max_growth() const override { return 2.0 * static_cast<double>(replacement_.size()); }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

// Numbers apart from the rest: each digit alone, or runs of digits.
class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual_digits) : individual_digits_(individual_digits) {}
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override { return 1; }

 private:
  bool individual_digits_;
};

class PunctuationPreTokenizer final : public PreTokenizer {
 public:
  explicit PunctuationPreTokenizer(SplitBehavior behavior) : behavior_(behavior) {}
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override { return 1; }

 private:
  SplitBehavior behavior_;
};

// Words (\w+) and runs of other non-space characters; whitespace is dropped.
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  WhitespacePreTokenizer();
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override { return 1; }

 private:
  Regex regex_;
};

// Split on whitespace, dropping it.
class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override { return 1; }
};

// Whitespace removed, then each punctuation character isolated.
class BertPreTokenizer final : public PreTokenizer {
 public:
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override { return 1; }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> children)
      : children_(std::move(children)) {}
  void split(Piece&& piece, PieceSink sink) const override;
  double max_growth() const override;

 private:
  void run(size_t stage, Piece&& piece, PieceSink sink) const;

  std::vector<std::unique_ptr<PreTokenizer>> children_;
};

}  // namespace loom::tokenizer
