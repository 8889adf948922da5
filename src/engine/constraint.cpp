#include "engine/constraint.h"

#include <algorithm>

#include "core/error.h"

namespace loom {

SequenceConstraint::SequenceConstraint(std::shared_ptr<const ConstraintSpec> spec)
    : spec_(std::move(spec)) {
  LOOM_ASSERT(spec_ && spec_->grammar && spec_->vocab);
  for (const ConstraintTrigger& t : spec_->triggers)
    max_trigger_ = std::max(max_trigger_, t.bytes.size());
  if (spec_->triggers.empty()) matcher_.emplace(spec_->grammar, spec_->vocab);
}

void SequenceConstraint::compute_mask() {
  if (!active()) return;
  matcher_->fill_mask(mask_);
  bool any_text = false;
  const auto& eos = spec_->vocab->eos();
  const auto& words = mask_.words();
  for (size_t w = 0; w < words.size() && !any_text; ++w) {
    uint64_t bits = words[w];
    for (int32_t e : eos) {
      if (e >= 0 && static_cast<size_t>(e) / 64 == w) bits &= ~(uint64_t{1} << (e % 64));
    }
    any_text = bits != 0;
  }
  // Nothing but an end: stop without drawing (also right for a vocabulary without EOS).
  must_stop_ = !any_text && matcher_->can_stop();
}

void SequenceConstraint::start_matcher(size_t from) {
  matcher_.emplace(spec_->grammar, spec_->vocab);
  if (!matcher_->consume_bytes(std::string_view(output_).substr(from))) dropped_ = true;
  output_.clear();
  output_.shrink_to_fit();
}

SequenceConstraint::Result SequenceConstraint::accept(int32_t token) {
  const grammar::TokenVocab& vocab = *spec_->vocab;
  if (active()) {
    if (!matcher_->consume_token(token)) {
      fail(ErrorCode::kInternal, "constrained decoding: the grammar refuses token {}", token);
    }
    return matcher_->finished() ? Result::kEnded : Result::kOk;
  }
  if (matcher_) return Result::kOk;  // dropped: free text from here on
  // Lazy: look for a trigger in the new output.
  if (token < 0 || static_cast<size_t>(token) >= vocab.size() || !vocab.is_text(token)) {
    return Result::kOk;
  }
  output_ += vocab.bytes(token);
  for (const ConstraintTrigger& t : spec_->triggers) {
    if (!t.at_start) continue;
    const size_t lead = output_.find_first_not_of(" \t\r\n");
    if (lead == std::string::npos) continue;
    if (output_.compare(lead, t.bytes.size(), t.bytes, 0,
                        std::min(t.bytes.size(), output_.size() - lead)) != 0) {
      continue;
    }
    if (output_.size() - lead >= t.bytes.size()) {
      start_matcher(lead);
      return Result::kOk;
    }
  }
  const size_t from = scanned_ > max_trigger_ ? scanned_ - max_trigger_ : 0;
  size_t best = std::string::npos;
  for (const ConstraintTrigger& t : spec_->triggers) {
    if (t.at_start || t.bytes.empty()) continue;
    best = std::min(best, output_.find(t.bytes, from));
  }
  scanned_ = output_.size();
  if (best != std::string::npos) start_matcher(best);
  return Result::kOk;
}

}  // namespace loom
