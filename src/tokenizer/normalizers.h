// Normalizers (HF `tokenizers` normalizers): each rewrites a piece of input text before
// pre-tokenization. Unicode work (normal forms, case, categories) is delegated to utf8proc.
//
// Ownership: a SequenceNormalizer owns its children. Thread-safety: immutable; normalize()
// may run concurrently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace loom::tokenizer {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override;
  // UAX #15's maximum expansion in UTF-8: 3x for NFC/NFD, 11x for NFKC/NFKD (U+FDFA).
  double max_growth() const override;

 private:
  NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override;
  double max_growth() const override { return 2; }  // e.g. U+023A (2 bytes) -> U+2C65 (3)
};

// Replaces every match of `pattern` (a literal or a regex) by `content`.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override;
  double max_growth() const override;

 private:
  Regex pattern_;
  std::string content_;
};

// Prepends `prefix` to non-empty text (SentencePiece's "▁" before the first word).
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override;
  double max_growth() const override { return 1.0 + static_cast<double>(prefix_.size()); }

 private:
  std::string prefix_;
};

// Removes leading and/or trailing whitespace.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override;
  double max_growth() const override { return 1; }

 private:
  bool left_, right_;
};

// Removes combining marks (meant to follow NFD/NFKD).
class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override;
  double max_growth() const override { return 1; }
};

// BERT's cleanup: drop control chars, map whitespace to ' ', space out CJK ideographs,
// optionally strip accents (default: same as lowercase) and lowercase.
class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}
  void normalize(std::string& text) const override;
  double max_growth() const override;

 private:
  bool clean_text_, handle_chinese_chars_, strip_accents_, lowercase_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> children)
      : children_(std::move(children)) {}
  void normalize(std::string& text) const override;
  double max_growth() const override;

 private:
  std::vector<std::unique_ptr<Normalizer>> children_;
};

}  // namespace loom::tokenizer
