#include "sample/penalties.h"

#include <algorithm>

#include "core/error.h"

namespace loom::sample {
namespace {

auto find_token(std::vector<std::pair<int32_t, int32_t>>& v, int32_t token) {
  return std::lower_bound(
      v.begin(), v.end(), token,
      [](const std::pair<int32_t, int32_t>& e, int32_t t) { return e.first < t; });
}

}  // namespace

void TokenCounts::add(int32_t token) {
  auto it = find_token(counts_, token);
  if (it != counts_.end() && it->first == token) {
    ++it->second;
  } else {
    counts_.insert(it, {token, 1});
  }
}

void TokenCounts::remove(int32_t token) {
  auto it = find_token(counts_, token);
  LOOM_ASSERT(it != counts_.end() && it->first == token);
  if (--it->second == 0) counts_.erase(it);
}

int32_t TokenCounts::count(int32_t token) const {
  auto it =
      std::lower_bound(counts_.begin(), counts_.end(), token,
                       [](const std::pair<int32_t, int32_t>& e, int32_t t) { return e.first < t; });
  return it != counts_.end() && it->first == token ? it->second : 0;
}

PenaltiesStep::PenaltiesStep(float repetition_penalty, int32_t penalty_last_n,
                             float frequency_penalty, float presence_penalty)
    : repetition_(repetition_penalty),
      last_n_(repetition_penalty == 1.0f ? 0 : penalty_last_n),
      frequency_(frequency_penalty),
      presence_(presence_penalty) {
  if (last_n_ > 0) {
    ring_.assign(static_cast<size_t>(last_n_), 0);
    window_.reserve(static_cast<size_t>(last_n_));
  }
  generated_.reserve(256);
}

void PenaltiesStep::push_context(int32_t token) {
  if (last_n_ == 0) return;
  if (last_n_ > 0) {
    if (ring_fill_ == ring_.size()) {
      window_.remove(ring_[ring_head_]);
    } else {
      ++ring_fill_;
    }
    ring_[ring_head_] = token;
    ring_head_ = (ring_head_ + 1) % ring_.size();
  }
  window_.add(token);
}

void PenaltiesStep::accept_prompt(std::span<const int32_t> tokens) {
  // Only the last last_n_ tokens can stay in the window; skip the rest.
  size_t start = 0;
  if (last_n_ == 0) return;
  if (last_n_ > 0 && tokens.size() > static_cast<size_t>(last_n_)) {
    start = tokens.size() - static_cast<size_t>(last_n_);
  }
  for (size_t i = start; i < tokens.size(); ++i) push_context(tokens[i]);
}

void PenaltiesStep::accept(int32_t token) {
  push_context(token);
  if (frequency_ != 0.0f || presence_ != 0.0f) generated_.add(token);
}

void PenaltiesStep::reset() {
  ring_head_ = 0;
  ring_fill_ = 0;
  window_.clear();
  generated_.clear();
}

float PenaltiesStep::penalised(float logit, int32_t window_count, int32_t generated_count) const {
  if (window_count > 0) logit = logit > 0.0f ? logit / repetition_ : logit * repetition_;
  if (generated_count > 0) {
    logit -= static_cast<float>(generated_count) * frequency_ + presence_;
  }
  return logit;
}

void PenaltiesStep::apply(Candidates& candidates) {
  if (window_.items().empty() && generated_.items().empty()) return;
  if (candidates.id_ordered()) {
    // Full vocabulary in id order: touch only the tokens seen, O(distinct seen).
    for (const auto& [token, count] : window_.items()) {
      Candidate& c = candidates[static_cast<size_t>(token)];
      c.logit = penalised(c.logit, count, 0);
    }
    for (const auto& [token, count] : generated_.items()) {
      Candidate& c = candidates[static_cast<size_t>(token)];
      c.logit = penalised(c.logit, 0, count);
    }
  } else {
    // A reduced or reordered set (penalties placed after a truncation): look each one up.
    for (Candidate& c : candidates.entries()) {
      c.logit = penalised(c.logit, window_.count(c.id), generated_.count(c.id));
    }
  }
  candidates.logits_changed(false);
}

}  // namespace loom::sample
