#include "engine/token_stream.h"

#include <algorithm>

namespace loom {

TokenStream::TokenStream(const tokenizer::Tokenizer* tokenizer, TokenStreamOptions options)
    : options_(std::move(options)), stops_(options_.stop) {
  if (tokenizer != nullptr) detok_.emplace(*tokenizer, !options_.special_text);
  if (options_.guard.action != GuardAction::kOff) guard_.emplace(options_.guard.rule);
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
  std::string piece = detok_ ? detok_->step(token) : std::string();
  std::optional<Degeneration> loop;
  if (guard_) loop = guard_->push(token, piece);
  if (detok_) {
    auto r = stops_.push(piece);
    step.text = std::move(r.text);
    if (r.stopped) {
      stopped_ = true;
      step.finish_reason = "stop";
      emitted_bytes_ += static_cast<int64_t>(step.text.size());
      return step;
    }
  }
  if (loop) {
    degeneration_ = loop;
    step.degeneration = true;
    if (options_.guard.action == GuardAction::kStop) {
      // Hand out the text up to the end of the loop's first copy (held-back text included) and
      // nothing after it; what already went out past it is for the caller to cut.
      if (detok_) step.text += stops_.flush();
      const int64_t room = std::max<int64_t>(0, loop->keep_bytes - emitted_bytes_);
      if (static_cast<int64_t>(step.text.size()) > room)
        step.text.resize(static_cast<size_t>(room));
      if (loop->keep_bytes < emitted_bytes_) cut_at_ = loop->keep_bytes;
      emitted_bytes_ += static_cast<int64_t>(step.text.size());
      stopped_ = true;
      step.finish_reason = "repetition";
      return step;
    }
  }
  emitted_bytes_ += static_cast<int64_t>(step.text.size());
  if (generated_ >= options_.max_tokens ||
      (options_.context > 0 && total_tokens >= options_.context)) {
    step.finish_reason = "length";
  }
  return step;
}

TokenStream::Final TokenStream::finish(const std::string& reason) {
  Final f{{}, reason, cut_at_};
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
