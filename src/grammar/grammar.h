// Grammar — a context-free grammar whose terminals are lexemes (regular expressions, see
// lexer.h), and Parser, an Earley parser over it that consumes one lexeme at a time and can be
// rolled back to any earlier point.
//
// Symbols in a production are int32: a value >= 0 is a rule (nonterminal), a value < 0 is the
// lexeme ~value (lexeme(id) encodes it). Lexemes are deduplicated by their canonical regex text.
// Earley items are (production, dot, origin row); nullable rules are handled by advancing over
// them at prediction time (Aycock and Horspool, "Practical Earley Parsing", 2002), so each row
// is complete after one pass.
// Thread-safety: a Grammar is immutable once finalize()d and may be shared; a Parser is one
// sequence's state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "grammar/lexer.h"
#include "grammar/regex.h"

namespace loom::grammar {

class Grammar {
 public:
  static constexpr int32_t lexeme(int32_t id) { return ~id; }
  static constexpr bool is_lexeme(int32_t sym) { return sym < 0; }
  static constexpr int32_t lexeme_id(int32_t sym) { return ~sym; }

  // The lexeme matching `spec` (an existing one when the same lexeme was added before).
  int32_t add_lexeme(const LexemeSpec& spec);
  int32_t add_rule(std::string name);
  void add_production(int32_t rule, std::vector<int32_t> rhs);
  void set_start(int32_t rule) { start_ = rule; }

  // Checks every rule has a production and every rule is productive, computes nullable rules,
  // adds the augmented start rule. Throws kInvalidArgument naming an undefined or empty rule.
  void finalize();

  struct Production {
    int32_t lhs;
    std::vector<int32_t> rhs;
  };
  const std::vector<Production>& productions() const { return productions_; }
  const std::vector<int32_t>& rule_productions(int32_t rule) const { return by_rule_[rule]; }
  bool nullable(int32_t rule) const { return nullable_[rule]; }
  const std::vector<LexemeSpec>& lexemes() const { return lexemes_; }
  const std::string& rule_name(int32_t rule) const { return names_[rule]; }
  size_t n_rules() const { return names_.size(); }
  int32_t start() const { return start_; }
  int32_t augmented_production() const { return augmented_; }

 private:
  std::vector<LexemeSpec> lexemes_;
  std::unordered_multimap<uint64_t, int32_t> lexeme_ids_;  // lexeme_hash -> ids
  std::vector<std::string> names_;
  std::vector<Production> productions_;
  std::vector<std::vector<int32_t>> by_rule_;
  std::vector<bool> nullable_;
  int32_t start_ = -1;
  int32_t augmented_ = -1;
  bool finalized_ = false;
};

// One sequence's parse: rows of Earley items, one row per lexeme consumed.
class Parser {
 public:
  explicit Parser(std::shared_ptr<const Grammar> grammar);

  // Lexemes that may come next (empty when the parse can only end).
  const IdSet& expected() const { return rows_.back().expected; }
  // The lexemes so far form a complete sentence.
  bool accepting() const { return rows_.back().accepting; }
  // Consumes a lexeme that matched any of `lexemes` (the ones the lexer accepted); false and
  // no change when none of them can come next.
  bool scan(const std::vector<int32_t>& lexemes);
  size_t n_rows() const { return rows_.size(); }
  // Back to the state after `n` rows (n >= 1).
  void truncate(size_t n);

 private:
  struct Item {
    int32_t prod, dot, origin;
  };
  struct Row {
    size_t begin = 0;  // first item in items_
    IdSet expected;
    bool accepting = false;
    uint64_t serial = 0;  // unique per row ever built: a truncated and rebuilt row differs
    // (rule, item) for the row's items waiting on a rule, sorted; built when a completion
    // first looks into a row of kIndexFrom items or more. A chain of optional members (an
    // object of 300 optional properties) completes back into the same large row once per
    // member skipped, and scanning it each time cost rows x items.
    std::vector<std::pair<int32_t, int32_t>> waiting;
    bool indexed = false;
  };
  static constexpr size_t kIndexFrom = 48;
  void index_waiting(Row& row, size_t from, size_t to);
  // The last row scanned from each row (by index): mask walks scan the same lexeme from the
  // same row again and again (every token that ends a string with '"', then ',' or '}'),
  // and re-closing a row of a large object costs far more than copying it.
  struct ScanMemo {
    uint64_t from_serial = 0;  // 0: none
    std::vector<int32_t> lexemes;
    std::vector<Item> items;
    IdSet expected;
    bool accepting = false;
  };
  void add(const Item& it);
  void close_row();  // predict/complete the items of the last row, fill expected/accepting

  std::shared_ptr<const Grammar> g_;
  std::vector<Item> items_;
  std::vector<Row> rows_;
  std::unordered_set<uint64_t> seen_;  // items of the row being built
  // By row index modulo kMemoSlots: masks scan from the last rows only, so a window bounds the
  // memory (the serial tells a slot's row from another that shares it).
  static constexpr size_t kMemoSlots = 64;
  std::vector<ScanMemo> memo_ = std::vector<ScanMemo>(kMemoSlots);
  uint64_t serials_ = 0;
};

}  // namespace loom::grammar
