#include "engine/degeneration.h"

#include <algorithm>

#include "core/error.h"

namespace loom {

GuardAction parse_guard_action(std::string_view name) {
  if (name == "stop") return GuardAction::kStop;
  if (name == "penalize") return GuardAction::kPenalize;
  if (name == "off") return GuardAction::kOff;
  fail(ErrorCode::kInvalidArgument,
       "degeneration guard action \"{}\" is not one of \"stop\", \"penalize\", \"off\"", name);
}

std::string_view guard_action_name(GuardAction action) {
  switch (action) {
    case GuardAction::kStop:
      return "stop";
    case GuardAction::kPenalize:
      return "penalize";
    case GuardAction::kOff:
      break;
  }
  return "off";
}

DegenerationDetector::DegenerationDetector(DegenerationRule rule) : rule_(rule) {
  if (rule_.max_period < 1 || rule_.min_copies < 2 || rule_.char_max_period < 1 ||
      rule_.char_min_copies < 2 || rule_.window_tokens < rule_.max_period * rule_.min_copies) {
    fail(ErrorCode::kInvalidArgument,
         "degeneration rule: max_period, char_max_period >= 1, copies >= 2 and a window of at "
         "least max_period * min_copies tokens");
  }
  states_.reserve(static_cast<size_t>(rule_.window_tokens) * 4);
  states_.push_back(State{});
  const size_t q = static_cast<size_t>(rule_.char_max_period);
  recent_.assign(q, 0);
  recent_token_.assign(q, 0);
  run_.assign(q + 1, 0);
  run_start_.assign(q + 1, {0, 0});
}

int32_t DegenerationDetector::transition(int32_t state, int32_t token) const {
  if (state == 0) {
    auto it = root_next_.find(token);
    return it == root_next_.end() ? -1 : it->second;
  }
  for (const auto& [t, target] : states_[static_cast<size_t>(state)].next) {
    if (t == token) return target;
  }
  return -1;
}

void DegenerationDetector::set_transition(int32_t state, int32_t token, int32_t target) {
  if (state == 0) {
    root_next_[token] = target;
    return;
  }
  auto& next = states_[static_cast<size_t>(state)].next;
  for (auto& [t, to] : next) {
    if (t == token) {
      to = target;
      return;
    }
  }
  next.emplace_back(token, target);
}

std::pair<int32_t, int64_t> DegenerationDetector::extend(int32_t token, int64_t pos) {
  const int32_t cur = static_cast<int32_t>(states_.size());
  states_.push_back(State{states_[static_cast<size_t>(last_)].len + 1, -1, pos, {}});
  int32_t p = last_;
  while (p != -1 && transition(p, token) == -1) {
    set_transition(p, token, cur);
    p = states_[static_cast<size_t>(p)].link;
  }
  int32_t link = 0;
  if (p != -1) {
    const int32_t q = transition(p, token);
    if (states_[static_cast<size_t>(p)].len + 1 == states_[static_cast<size_t>(q)].len) {
      link = q;
    } else {
      const int32_t clone = static_cast<int32_t>(states_.size());
      State copy = states_[static_cast<size_t>(q)];
      copy.len = states_[static_cast<size_t>(p)].len + 1;
      states_.push_back(std::move(copy));
      while (p != -1 && transition(p, token) == q) {
        set_transition(p, token, clone);
        p = states_[static_cast<size_t>(p)].link;
      }
      states_[static_cast<size_t>(q)].link = clone;
      link = clone;
    }
  }
  states_[static_cast<size_t>(cur)].link = link;
  last_ = cur;
  const State& s = states_[static_cast<size_t>(link)];
  return {s.len, s.first_end};
}

void DegenerationDetector::rebuild() {
  // Keep the last window_tokens tokens; stream indices stay as they were.
  const size_t keep = static_cast<size_t>(rule_.window_tokens);
  const size_t drop = window_.size() - keep;
  window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(drop));
  token_end_bytes_.erase(token_end_bytes_.begin(),
                         token_end_bytes_.begin() + static_cast<std::ptrdiff_t>(drop));
  base_ += static_cast<int64_t>(drop);
  states_.clear();
  states_.push_back(State{});
  root_next_.clear();
  last_ = 0;
  for (size_t i = 0; i < window_.size(); ++i) extend(window_[i], base_ + static_cast<int64_t>(i));
}

std::optional<Degeneration> DegenerationDetector::push(int32_t token, std::string_view text) {
  const int64_t pos = tokens_++;
  if (fired_) return std::nullopt;
  std::optional<Degeneration> found = check_chars(text);
  if (window_.size() >= static_cast<size_t>(rule_.window_tokens) * 2) rebuild();
  window_.push_back(token);
  token_end_bytes_.push_back(bytes_);
  const auto [len, first_end] = extend(token, pos);
  if (!found && len > 0) {
    const int64_t d = pos - first_end;
    const int64_t n = len + d;
    if (len >= d && d <= rule_.max_period &&
        n >= std::max<int64_t>(int64_t{rule_.min_copies} * d, rule_.min_loop_tokens)) {
      Degeneration g;
      g.loop_start = pos - n + 1;
      g.period_tokens = d;
      g.keep_tokens = g.loop_start + d;
      const int64_t last_kept = g.keep_tokens - 1 - base_;  // >= 0: n <= window
      g.keep_bytes = token_end_bytes_[static_cast<size_t>(std::max<int64_t>(last_kept, 0))];
      found = g;
    }
  }
  if (!found) return std::nullopt;
  found->at_token = pos;
  found->at_char = chars_;
  fired_ = true;
  return found;
}

bool DegenerationDetector::blank_unit(int64_t i, int64_t q) const {
  // The unit is the q characters ending at i; recent_ holds all of them but character i,
  // which equals the one q back.
  const int64_t q_max = rule_.char_max_period;
  for (int64_t k = i - q; k < i; ++k) {
    const uint32_t c = recent_[static_cast<size_t>(k % q_max)];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != 0x3000 && c != 0xA0) return false;
  }
  return true;
}

std::optional<Degeneration> DegenerationDetector::check_chars(std::string_view text) {
  std::optional<Degeneration> found;
  const int64_t q_max = rule_.char_max_period;
  for (const char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    ++bytes_;
    // Decode UTF-8 (text comes from the detokenizer, whole characters; an invalid byte counts
    // as a character of its own, as U+FFFD would).
    uint32_t cp = 0;
    int64_t ch_bytes = 1;
    if (partial_need_ > 0 && (b & 0xC0) == 0x80) {
      partial_ = (partial_ << 6) | (b & 0x3F);
      if (--partial_need_ > 0) continue;
      cp = partial_;
      ch_bytes = partial_len_;
    } else {
      partial_need_ = 0;
      if (b >= 0xC0 && b < 0xF8) {
        partial_need_ = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
        partial_len_ = partial_need_ + 1;
        partial_ = b & (0x3F >> partial_need_);
        continue;
      }
      cp = b < 0x80 ? b : 0xFFFD;
    }
    const int64_t i = chars_++;
    const size_t slot = static_cast<size_t>(i % q_max);
    for (int64_t q = 1; q <= q_max && q <= i; ++q) {
      const uint32_t back = recent_[static_cast<size_t>((i - q) % q_max)];
      int64_t& run = run_[static_cast<size_t>(q)];
      if (back != cp) {
        run = 0;
        continue;
      }
      if (run++ == 0) {
        // The periodic text starts q characters back; its first copy ends before this one.
        run_start_[static_cast<size_t>(q)] = {recent_token_[static_cast<size_t>((i - q) % q_max)],
                                              bytes_ - ch_bytes};
      }
      const int64_t m = run + q;
      if (!found &&
          m >= std::max<int64_t>(int64_t{rule_.char_min_copies} * q, rule_.char_min_run) &&
          !blank_unit(i, q)) {
        Degeneration g;
        g.period_chars = q;
        g.loop_start = run_start_[static_cast<size_t>(q)].first;
        g.keep_tokens = g.loop_start + 1;
        g.keep_bytes = run_start_[static_cast<size_t>(q)].second;
        found = g;
      }
    }
    recent_[slot] = cp;
    recent_token_[slot] = tokens_ - 1;
  }
  return found;
}

}  // namespace loom
