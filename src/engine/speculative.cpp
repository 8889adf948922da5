#include "engine/speculative.h"

#include <algorithm>

#include "core/error.h"
#include "engine/generator.h"
#include "model/model.h"

namespace loom {

NgramDrafter::NgramDrafter(int32_t ngram_min, int32_t ngram_max,
                           std::shared_ptr<const std::vector<int32_t>> corpus)
    : min_(std::max(1, ngram_min)),
      max_(std::max(ngram_min, ngram_max)),
      corpus_(std::move(corpus)) {}

bool NgramDrafter::follow(std::span<const int32_t> text, std::span<const int32_t> tail,
                          int64_t last_end, int32_t k, std::vector<int32_t>& out) {
  const auto len = static_cast<int64_t>(tail.size());
  // `end` is where the match stops: the proposal starts at text[end].
  for (int64_t end = last_end; end >= len; --end) {
    if (!std::equal(tail.begin(), tail.end(), text.begin() + (end - len))) continue;
    const size_t before = out.size();
    for (int64_t i = end;
         i < static_cast<int64_t>(text.size()) && static_cast<int32_t>(out.size() - before) < k;
         ++i) {
      out.push_back(text[static_cast<size_t>(i)]);
    }
    return true;
  }
  return false;
}

void NgramDrafter::propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) {
  const auto n = static_cast<int64_t>(context.size());
  for (int64_t len = std::min<int64_t>(max_, n - 1); len >= min_; --len) {
    const std::span<const int32_t> tail = context.subspan(static_cast<size_t>(n - len));
    // An earlier occurrence in the context followed by at least one token, then the corpus.
    if (follow(context, tail, n - 1, k, out)) return;
    if (corpus_ && !corpus_->empty() &&
        follow(*corpus_, tail, static_cast<int64_t>(corpus_->size()) - 1, k, out)) {
      return;
    }
  }
}

ModelDrafter::ModelDrafter(CausalLM& draft, int64_t context_tokens)
    : gen_(std::make_unique<Generator>(draft, nullptr, context_tokens)) {}

ModelDrafter::~ModelDrafter() = default;

void ModelDrafter::propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) {
  const auto n = static_cast<int64_t>(context.size());
  if (k <= 0 || n + k > gen_->context_tokens()) return;
  // What the cache holds and still matches the context stays; the rest is run now.
  size_t valid = 0;
  while (valid < fed_.size() && valid < context.size() && fed_[valid] == context[valid]) ++valid;
  if (valid == context.size()) --valid;  // the last token's logits are needed: run it again
  fed_.resize(valid);
  const int64_t vocab = gen_->vocab_size();
  auto argmax = [vocab](const float* row) {
    return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
  };
  const float* row = gen_->forward(context.subspan(valid), static_cast<int64_t>(valid));
  fed_.insert(fed_.end(), context.begin() + static_cast<std::ptrdiff_t>(valid), context.end());
  for (int32_t i = 0; i < k; ++i) {
    const int32_t token = argmax(row);
    out.push_back(token);
    if (i + 1 == k) break;
    const int32_t one[1] = {token};
    row = gen_->forward(one, static_cast<int64_t>(fed_.size()));
    fed_.push_back(token);
  }
}

}  // namespace loom
