#include "tokenizer/merge_boundaries.h"

#include <algorithm>
#include <bit>

#include "tokenizer/unicode.h"

namespace loom::tokenizer {

MergeBoundaryFilter::MergeBoundaryFilter(const Vocab& vocab) {
  size_t pairs = 0;
  for (size_t id = 0; id < vocab.id_bound(); ++id) {
    if (const std::string* t = vocab.token(static_cast<int32_t>(id))) pairs += t->size();
  }
  // About 16 bits per pair keeps false positives (forbidden cuts) rare.
  uint64_t bit_count = std::bit_ceil(std::clamp<uint64_t>(pairs * 16, 1 << 16, uint64_t{1} << 27));
  bits_.assign(bit_count / 64, 0);
  mask_ = bit_count - 1;
  for (size_t id = 0; id < vocab.id_bound(); ++id) {
    const std::string* t = vocab.token(static_cast<int32_t>(id));
    if (t == nullptr) continue;
    size_t pos = 0;
    char32_t prev = 0;
    bool first = true;
    while (pos < t->size()) {
      char32_t c = next_code_point(*t, pos);
      if (!first) {
        uint64_t h = mix(prev, c);
        set(h);
        set(h >> 32);
      }
      prev = c;
      first = false;
    }
  }
}

}  // namespace loom::tokenizer
