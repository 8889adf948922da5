#include "grammar/grammar.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace loom::grammar {

int32_t Grammar::add_lexeme(const LexemeSpec& spec) {
  const uint64_t key = lexeme_hash(spec);
  for (auto [it, end] = lexeme_ids_.equal_range(key); it != end; ++it) {
    if (lexeme_equal(lexemes_[it->second], spec)) return it->second;
  }
  const auto id = static_cast<int32_t>(lexemes_.size());
  lexemes_.push_back(spec);
  lexeme_ids_.emplace(key, id);
  return id;
}

int32_t Grammar::add_rule(std::string name) {
  names_.push_back(std::move(name));
  by_rule_.emplace_back();
  return static_cast<int32_t>(names_.size() - 1);
}

void Grammar::add_production(int32_t rule, std::vector<int32_t> rhs) {
  LOOM_ASSERT(!finalized_ && rule >= 0 && static_cast<size_t>(rule) < names_.size());
  if (rhs.size() >= 4096) {
    fail(ErrorCode::kOutOfRange, "grammar rule '{}' has a production of {} symbols (at most 4095)",
         names_[rule], rhs.size());
  }
  by_rule_[rule].push_back(static_cast<int32_t>(productions_.size()));
  productions_.push_back({rule, std::move(rhs)});
}

void Grammar::finalize() {
  LOOM_ASSERT(!finalized_);
  if (start_ < 0) fail(ErrorCode::kInvalidArgument, "the grammar has no start rule");
  // A lexeme that matches nothing never completes; a rule is productive when one of its
  // productions has only productive symbols. Unproductive productions are dropped, so every
  // prefix the parser accepts can be completed (no dead ends for constrained generation).
  std::vector<bool> lexeme_ok(lexemes_.size());
  for (size_t i = 0; i < lexemes_.size(); ++i) {
    bool ok = true;
    for (const auto& c : lexemes_[i].components) {
      ok = ok && (c.negated || c.regex->kind != RegexNode::Kind::kNothing);
    }
    lexeme_ok[i] = ok;
  }
  std::vector<bool> productive(names_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (const Production& p : productions_) {
      if (productive[p.lhs]) continue;
      bool ok = true;
      for (int32_t s : p.rhs) {
        ok = ok && (is_lexeme(s) ? lexeme_ok[lexeme_id(s)] : productive[s]);
      }
      if (ok) {
        productive[p.lhs] = true;
        changed = true;
      }
    }
  }
  if (!productive[start_]) {
    fail(ErrorCode::kInvalidArgument,
         "the grammar matches no text at all (rule '{}' can never be completed)", names_[start_]);
  }
  for (auto& prods : by_rule_) {
    std::erase_if(prods, [&](int32_t p) {
      for (int32_t s : productions_[p].rhs) {
        if (is_lexeme(s) ? !lexeme_ok[lexeme_id(s)] : !productive[s]) return true;
      }
      return false;
    });
  }
  nullable_.assign(names_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < names_.size(); ++r) {
      if (nullable_[r]) continue;
      for (int32_t p : by_rule_[r]) {
        bool all = true;
        for (int32_t s : productions_[p].rhs) all = all && !is_lexeme(s) && nullable_[s];
        if (all) {
          nullable_[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  // S' -> S
  const int32_t aug = add_rule("<start>");
  nullable_.push_back(nullable_[start_]);
  augmented_ = static_cast<int32_t>(productions_.size());
  by_rule_[aug].push_back(augmented_);
  productions_.push_back({aug, {start_}});
  finalized_ = true;
}

// ---------------------------------------------------------------------------------------------

Parser::Parser(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  rows_.push_back({});
  rows_.back().expected.resize(g_->lexemes().size());
  rows_.back().serial = ++serials_;
  add({g_->augmented_production(), 0, 0});
  close_row();
}

void Parser::add(const Item& it) {
  const uint64_t key = (static_cast<uint64_t>(it.prod) << 40) |
                       (static_cast<uint64_t>(it.dot) << 28) | static_cast<uint64_t>(it.origin);
  if (seen_.insert(key).second) items_.push_back(it);
}

void Parser::close_row() {
  const int32_t cur = static_cast<int32_t>(rows_.size() - 1);
  Row& row = rows_.back();
  const auto& prods = g_->productions();
  for (size_t i = row.begin; i < items_.size(); ++i) {
    const Item it = items_[i];
    const auto& rhs = prods[it.prod].rhs;
    if (static_cast<size_t>(it.dot) < rhs.size()) {
      const int32_t sym = rhs[it.dot];
      if (Grammar::is_lexeme(sym)) {
        rows_.back().expected.set(static_cast<size_t>(Grammar::lexeme_id(sym)));
      } else {
        for (int32_t p : g_->rule_productions(sym)) add({p, 0, cur});
        if (g_->nullable(sym)) add({it.prod, it.dot + 1, it.origin});
      }
    } else {
      if (it.prod == g_->augmented_production() && it.origin == 0) rows_.back().accepting = true;
      // Completed in the row it was predicted in, it consumed nothing: its rule is nullable,
      // and every item of this row waiting on that rule is advanced over it when predicted
      // (above), so the search would only find duplicates.
      if (it.origin == cur) continue;
      const int32_t lhs = prods[it.prod].lhs;
      Row& origin = rows_[static_cast<size_t>(it.origin)];
      const size_t from = origin.begin, to = rows_[static_cast<size_t>(it.origin) + 1].begin;
      if (to - from < kIndexFrom) {
        for (size_t j = from; j < to; ++j) {
          const Item w = items_[j];
          const auto& wr = prods[w.prod].rhs;
          if (static_cast<size_t>(w.dot) < wr.size() && wr[w.dot] == lhs) {
            add({w.prod, w.dot + 1, w.origin});
          }
        }
        continue;
      }
      if (!origin.indexed) index_waiting(origin, from, to);
      auto at = std::lower_bound(origin.waiting.begin(), origin.waiting.end(),
                                 std::pair<int32_t, int32_t>{lhs, INT32_MIN});
      for (; at != origin.waiting.end() && at->first == lhs; ++at) {
        const Item w = items_[static_cast<size_t>(at->second)];
        add({w.prod, w.dot + 1, w.origin});
      }
    }
  }
  seen_.clear();
}

void Parser::index_waiting(Row& row, size_t from, size_t to) {
  const auto& prods = g_->productions();
  row.waiting.clear();
  for (size_t j = from; j < to; ++j) {
    const Item w = items_[j];
    const auto& wr = prods[w.prod].rhs;
    if (static_cast<size_t>(w.dot) < wr.size() && !Grammar::is_lexeme(wr[w.dot])) {
      row.waiting.emplace_back(wr[w.dot], static_cast<int32_t>(j));
    }
  }
  // By rule, then by item: the order a scan of the row would find them in.
  std::sort(row.waiting.begin(), row.waiting.end());
  row.indexed = true;
}

bool Parser::scan(const std::vector<int32_t>& lexemes) {
  const size_t from = rows_.size() - 1;
  const uint64_t from_serial = rows_.back().serial;
  ScanMemo& slot = memo_[from % kMemoSlots];
  if (slot.from_serial == from_serial && slot.lexemes == lexemes) {
    const ScanMemo& m = slot;
    Row next;
    next.begin = items_.size();
    next.expected = m.expected;
    next.accepting = m.accepting;
    next.serial = ++serials_;
    items_.insert(items_.end(), m.items.begin(), m.items.end());
    rows_.push_back(std::move(next));
    return true;
  }
  const Row& last = rows_.back();
  const size_t last_begin = last.begin, last_end = items_.size();
  Row next;
  next.begin = items_.size();
  next.expected.resize(g_->lexemes().size());
  next.serial = ++serials_;
  rows_.push_back(std::move(next));
  const auto& prods = g_->productions();
  for (size_t i = last_begin; i < last_end; ++i) {
    const Item it = items_[i];
    const auto& rhs = prods[it.prod].rhs;
    if (static_cast<size_t>(it.dot) >= rhs.size() || !Grammar::is_lexeme(rhs[it.dot])) continue;
    const int32_t id = Grammar::lexeme_id(rhs[it.dot]);
    if (std::find(lexemes.begin(), lexemes.end(), id) != lexemes.end()) {
      add({it.prod, it.dot + 1, it.origin});
    }
  }
  if (items_.size() == rows_.back().begin) {
    rows_.pop_back();
    seen_.clear();
    return false;
  }
  close_row();
  ScanMemo& m = slot;
  m.from_serial = from_serial;
  m.lexemes = lexemes;
  m.items.assign(items_.begin() + static_cast<std::ptrdiff_t>(rows_.back().begin), items_.end());
  m.expected = rows_.back().expected;
  m.accepting = rows_.back().accepting;
  return true;
}

void Parser::truncate(size_t n) {
  LOOM_ASSERT(n >= 1 && n <= rows_.size());
  if (n == rows_.size()) return;
  items_.resize(rows_[n].begin);
  rows_.resize(n);
}

}  // namespace loom::grammar
