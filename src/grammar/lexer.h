// Lexer — the lexemes (terminals) of a grammar, each a regular expression, run as one lazily
// built DFA over UTF-8 bytes. A DFA state stands for "the bytes read since the current lexeme
// began could still become (or already are) one of these lexemes"; start() gives the state for
// any subset of lexemes (the ones the parser allows next), next() follows one byte, and
// accepting() lists the lexemes the bytes so far match in full.
//
// The NFA (Thompson construction, code point classes split into UTF-8 byte ranges) is built
// once; DFA states are subsets of NFA states, created on first use and memoised with a
// 256-entry transition row each, so a step is one table lookup. Sizes are bounded: an NFA past
// kMaxNfaStates or a DFA past kMaxDfaStates is a kOutOfRange error naming the limit, never
// unbounded memory.
// Thread-safety: the DFA grows on use (mutable); one thread at a time per Lexer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/regex.h"

namespace loom::grammar {

// A lexeme: a string every positive component matches and no negated component matches (one
// positive component is a plain regex). Intersection and complement are exact: the DFA tracks
// every component's NFA states, so whether each one matches the bytes read is known. Whether
// an intersection can still be completed is approximated by "every positive component can",
// which only matters for dead ends, never for what is accepted.
struct LexemeSpec {
  struct Component {
    Regex regex;
    bool negated = false;
  };
  std::vector<Component> components;
  LexemeSpec() = default;
  LexemeSpec(Regex r) { components.push_back({std::move(r), false}); }  // NOLINT: implicit
};
std::string lexeme_key(const LexemeSpec& spec);  // canonical text, for messages
uint64_t lexeme_hash(const LexemeSpec& spec);
bool lexeme_equal(const LexemeSpec& a, const LexemeSpec& b);

// A set of lexeme (or other small integer) ids.
class IdSet {
 public:
  IdSet() = default;
  explicit IdSet(size_t n) : words_((n + 63) / 64, 0) {}
  void resize(size_t n) { words_.resize((n + 63) / 64, 0); }
  void set(size_t i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  void reset(size_t i) { words_[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  bool test(size_t i) const {
    return (i >> 6) < words_.size() && (words_[i >> 6] >> (i & 63) & 1) != 0;
  }
  bool any() const {
    for (uint64_t w : words_) {
      if (w) return true;
    }
    return false;
  }
  bool intersects(const IdSet& o) const {
    for (size_t i = 0; i < std::min(words_.size(), o.words_.size()); ++i) {
      if (words_[i] & o.words_[i]) return true;
    }
    return false;
  }
  void clear() { std::fill(words_.begin(), words_.end(), 0); }
  const std::vector<uint64_t>& words() const { return words_; }
  std::vector<uint64_t>& words() { return words_; }
  bool operator==(const IdSet& o) const { return words_ == o.words_; }
  template <typename F>
  void for_each(F f) const {
    for (size_t w = 0; w < words_.size(); ++w) {
      for (uint64_t bits = words_[w]; bits;) {
        const int b = __builtin_ctzll(bits);
        f(w * 64 + static_cast<size_t>(b));
        bits &= bits - 1;
      }
    }
  }

 private:
  std::vector<uint64_t> words_;
};

class Lexer {
 public:
  using State = int32_t;
  static constexpr State kDead = 0;
  static constexpr size_t kMaxNfaStates = 500'000;
  static constexpr size_t kMaxDfaStates = 20'000;

  // Throws kInvalidArgument for a lexeme whose positive components all match the empty string
  // (a lexeme must consume input), kOutOfRange past the size limits.
  explicit Lexer(const std::vector<LexemeSpec>& lexemes);

  size_t n_lexemes() const { return starts_.size(); }
  // The DFA state before any byte of a lexeme from `allowed`; kDead when the set is empty.
  State start(const IdSet& allowed);
  State next(State s, uint8_t b) {
    const int32_t t = rows_[static_cast<size_t>(s)][b];
    return t >= 0 ? t : compute(s, b);
  }
  // Lexemes fully matched by the bytes that led to `s` (ascending ids).
  const std::vector<int32_t>& accepting(State s) const { return accept_[s]; }
  // Which states behave alike on every byte string of up to `max_bytes` bytes: equal ids
  // for states that differ only in how far they are into a counted repetition (x{0,300}: count
  // 10 and count 11 do the same for any token while the bound is more than a token away).
  // Token masks are cached by this id, so a long bounded string costs one trie walk, not one
  // per character. Ids are dense from 0; the first call fixes max_bytes.
  int32_t mask_class(State s, int max_bytes);
  // Whether every character a JSON string holds unescaped (UTF-8 without '"', '\\' and
  // controls) leads from `s` back to `s`: then any such text, cut anywhere, keeps the lexeme
  // going, and a token made of it is allowed without walking its bytes. Cached per state.
  bool loops_on_string_text(State s);
  // How many more characters of JSON string text (as above) the lexeme can take from `s` when
  // every such character leads from each state to one same next state (a string of bounded
  // length: the states count the characters), until all of them are dead: then any text of at
  // most that many characters, cut anywhere, keeps the lexeme going, and longer text ends it.
  // `cap` (fixed by the first call) when at least `cap` characters can follow (a loop, or a
  // bound farther away); -1 when the characters do not all go to one state, or when the last
  // state of the count completes a lexeme (longer text would start the next). Cached per state.
  int32_t string_text_budget(State s, int32_t cap);
  // Whether `s` is a start state (no byte of the lexeme read yet).
  bool is_start(State s) const { return !sets_[s].empty() && sets_[s][0] == 0; }
  size_t n_states() const { return accept_.size(); }

 private:
  struct Edge {
    uint8_t lo, hi;
    int32_t to;
  };
  struct NfaState {
    std::vector<Edge> edges;
    std::vector<int32_t> eps;
    int32_t accept = -1;  // the lexeme (component) this state completes
  };
  // A lexeme of several components: their NFA states are [begin, end) ranges, accept states.
  struct Compound {
    int32_t lexeme;
    struct Part {
      int32_t begin, end, accept;
      bool negated;
    };
    std::vector<Part> parts;
  };
  void prune(std::vector<int32_t>& set) const;

  int32_t add_state();
  // Builds `r` between from and a new state, which it returns.
  int32_t build(const Regex& r, int32_t from);
  void add_class(const std::vector<CodeRange>& ranges, int32_t from, int32_t to);
  void closure(std::vector<int32_t>& set);
  State intern(std::vector<int32_t> set);
  State compute(State s, uint8_t b);
  // The NFA set one byte leads to from `set` (closed and pruned, as intern() names it; empty:
  // dead), and into [lo, hi] the bytes around b that lead to the same set.
  std::vector<int32_t> step_set(const std::vector<int32_t>& set, uint8_t b, int& lo, int& hi);

  std::vector<NfaState> nfa_;
  // Counted repetitions of a sub-pattern that cannot match empty (so each copy reads at least
  // one byte): per NFA state the block, the copy and the position in the copy (-1: none).
  struct Block {
    int64_t min, max;  // max < 0: the copies are the `min` mandatory ones before a loop
  };
  std::vector<Block> blocks_;
  struct Place {
    int32_t block = -1, copy = 0, pos = 0;
  };
  std::vector<Place> place_;
  // Counted repetitions past kEagerCopies copies (a string's maxLength of 32767) in lexemes of
  // one component are built a copy at a time, when closure() first reaches the state after the
  // last copy built: the automaton grows with the text read, not with the bound. (A compound
  // lexeme's components must be contiguous NFA ranges, so theirs are built whole.)
  static constexpr int64_t kEagerCopies = 64;
  struct LazyRepeat {
    Regex sub;
    int32_t block;
    int64_t min, max;
    int32_t end;
  };
  std::vector<LazyRepeat> lazy_;
  std::unordered_map<int32_t, std::pair<int32_t, int64_t>> pending_;  // exit -> (lazy_, copies)
  bool lazy_allowed_ = false;  // while building a single-component lexeme
  // After `done` copies of lazy_[id], ending in `exit`: the links to the end, the loop of an
  // unbounded repetition, or a pending next copy.
  void attach_lazy(int32_t id, int64_t done, int32_t exit);
  void expand_lazy(int32_t exit);
  void mark_pending(int32_t exit, int32_t id, int64_t done);
  std::vector<uint8_t> pending_bit_;  // per NFA state: a key of pending_ (closure's test)
  // Per DFA state: the state every JSON string character leads to (kDead: none continues),
  // kNoTextSuccessor when they differ; kUnknownState = not computed.
  static constexpr State kNoTextSuccessor = -1, kUnknownState = -2;
  State text_successor(State s);
  std::vector<State> text_next_;
  std::vector<int32_t> text_budget_;  // per DFA state, -2 = not computed
  int32_t text_budget_cap_ = -1;
  std::vector<int32_t> mask_class_;  // per DFA state, -1 = not computed
  std::unordered_map<std::string, int32_t> mask_classes_;
  int mask_max_bytes_ = -1;
  std::vector<std::vector<int32_t>> starts_;  // per lexeme: its components' start states
  std::vector<Compound> compounds_;
  std::vector<int32_t> compound_of_;  // per lexeme: index into compounds_, or -1
  // DFA.
  std::vector<std::vector<int32_t>> sets_;    // per DFA state: sorted NFA states
  std::vector<std::vector<int32_t>> accept_;  // per DFA state
  // Transitions, 256 per state (-1 = not computed yet), in chunks that never move: a table
  // that grew by copying took milliseconds inside one token's mask once it held thousands of
  // states. rows_[s] points at state s's 256.
  static constexpr size_t kChunkStates = 64;
  std::vector<std::unique_ptr<int32_t[]>> trans_chunks_;
  std::vector<int32_t*> rows_;
  std::unordered_map<std::string, State> by_set_;
  std::unordered_map<std::string, State> start_by_lexemes_;
  std::vector<uint32_t> mark_;  // scratch for closure()
  uint32_t generation_ = 0;
};

}  // namespace loom::grammar
