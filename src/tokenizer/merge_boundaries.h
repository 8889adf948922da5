// MergeBoundaryFilter: where a long BPE word can be cut into independent chunks.
//
// BPE only ever joins neighbours into vocabulary tokens, so between characters x and y where
// no token contains the string "xy", no merge can cross; merging each side alone then gives
// the same ids as merging the whole word (merges on one side never depend on the other, and
// their relative order is unchanged). Tokenizers without a pre-tokenizer (SentencePiece-style
// BPE: Llama 2, Mistral, GGUF "llama") see the whole input as one word; cutting it makes the
// merge loop cache-friendly and lets the word cache work.
//
// The set of adjacent pairs is kept as a Bloom filter: a false positive only forbids a cut,
// so results stay exact while memory stays small (at most 16 MiB).
//
// Ownership: owns its bits. Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/vocab.h"

namespace loom::tokenizer {

class MergeBoundaryFilter {
 public:
  explicit MergeBoundaryFilter(const Vocab& vocab);
  // False when no vocabulary token contains code point `a` directly followed by `b`.
  bool may_join(char32_t a, char32_t b) const {
    uint64_t h = mix(a, b);
    return test(h) && test(h >> 32);
  }

 private:
  static uint64_t mix(char32_t a, char32_t b) {
    uint64_t x = (static_cast<uint64_t>(a) << 32) | b;
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
  }
  bool test(uint64_t h) const {
    uint64_t bit = h & mask_;
    return (bits_[bit >> 6] >> (bit & 63)) & 1;
  }
  void set(uint64_t h) {
    uint64_t bit = h & mask_;
    bits_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }

  std::vector<uint64_t> bits_;
  uint64_t mask_ = 0;
};

}  // namespace loom::tokenizer
