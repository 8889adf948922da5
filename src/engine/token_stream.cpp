#include "engine/token_stream.h"

#include <algorithm>

namespace loom {

TokenStream::TokenStream(const tokenizer::Tokenizer* tokenizer, TokenStreamOptions options)
    : options_(std::move(options)), stops_(options_.stop) {
  if (tokenizer != nullptr) detok_.emplace(*tokenizer, !options_.special_text);
}

TokenStream::Step TokenStream::push(int32_t token, int64_t total_tokens) {
  Step step;
  ++generated_;
  const auto& eos = options_.eos_ids;
  if (!options_.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) {
    step.eos = true;
    step.finish_reason = "stop";
    return step;
  }
  if (detok_) {
    auto r = stops_.push(detok_->step(token));
    step.text = std::move(r.text);
    if (r.stopped) {
      stopped_ = true;
      step.finish_reason = "stop";
      return step;
    }
  }
  if (generated_ >= options_.max_tokens ||
      (options_.context > 0 && total_tokens >= options_.context)) {
    step.finish_reason = "length";
  }
  return step;
}

TokenStream::Final TokenStream::finish(const std::string& reason) {
  Final f{{}, reason};
  if (reason == "cancelled" || reason == "error" || stopped_ || !detok_) return f;
  auto r = stops_.push(detok_->finish());
  f.text = std::move(r.text);
  if (r.stopped) {
    stopped_ = true;
    f.finish_reason = "stop";
  } else {
    f.text += stops_.flush();
  }
  return f;
}

}  // namespace loom
