// Decoders (HF `tokenizers` decoders): turn the token strings of a decoded id sequence back
// into text. Each transforms the list of token strings (HF decode_chain); the tokenizer
// concatenates the final list.
//
// Ownership: a SequenceDecoder owns its children. Thread-safety: immutable; decode_chain()
// may run concurrently.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/pipeline.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/regex.h"

namespace loom::tokenizer {

// Maps byte-level stand-in characters back to bytes; the joined bytes are decoded as UTF-8
// with invalid sequences replaced by U+FFFD. A token holding any other character is kept as
// its raw UTF-8 (so added tokens such as "<|im_end|>" survive).
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 2; }  // a 2-byte stand-in may become U+FFFD
  void decode_chain_raw(std::vector<std::string>& tokens) const override;
};

// `replacement` becomes a space, except at the start of the first token when a prefix was
// prepended at encode time.
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 1; }  // the replacement becomes one space
  void decode_chain_raw(std::vector<std::string>& tokens) const override;

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

// Runs of <0xXX> tokens become the UTF-8 text they spell, or one U+FFFD per byte if invalid.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 1; }  // "<0xXX>" becomes at most U+FFFD
  void decode_chain_raw(std::vector<std::string>& tokens) const override;
  bool decodes_byte_runs() const override { return true; }
};

// Joins all tokens into one.
class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 1; }
};

// Removes up to `start` leading and `stop` trailing copies of `content` from each token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 1; }
  void decode_chain_raw(std::vector<std::string>&) const override {}  // only whole texts

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Regex pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override;

 private:
  Regex pattern_;
  std::string content_;
};

// BERT: continuation pieces lose their prefix, other pieces get a leading space; optional
// cleanup of spaces before punctuation and contractions.
class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 2; }  // a leading space per token
  void decode_chain_raw(std::vector<std::string>& tokens) const override;

 private:
  std::string prefix_;
  bool cleanup_;
};

// Classic BPE end-of-word suffix ("</w>") becomes a space.
class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override { return 1; }  // the suffix becomes at most a space

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> children)
      : children_(std::move(children)) {}
  void decode_chain(std::vector<std::string>& tokens) const override;
  double max_growth() const override;
  void decode_chain_raw(std::vector<std::string>& tokens) const override {
    for (const auto& child : children_) child->decode_chain_raw(tokens);
  }
  bool decodes_byte_runs() const override {
    for (const auto& c : children_) {
      if (c->decodes_byte_runs()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> children_;
};

}  // namespace loom::tokenizer
