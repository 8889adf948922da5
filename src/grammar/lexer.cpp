#include "grammar/lexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "core/error.h"

namespace loom::grammar {

namespace {

using ByteRange = std::pair<uint8_t, uint8_t>;

size_t utf8_length(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

void encode(uint32_t cp, uint8_t out[4]) {
  switch (utf8_length(cp)) {
    case 1:
      out[0] = static_cast<uint8_t>(cp);
      break;
    case 2:
      out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
      out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
    case 3:
      out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
      out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      break;
    default:
      out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
      out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
      out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
      out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  }
}

// The code points lo..hi (no surrogates) as sequences of byte ranges, each sequence matching
// exactly the UTF-8 encodings of a sub-range (the standard splitting: by encoded length, then
// so that every continuation position spans its whole 0x80-0xBF range or none of it varies).
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<std::vector<ByteRange>>& out) {
  if (lo > hi) return;
  static constexpr uint32_t kMaxForLength[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t m : kMaxForLength) {
    if (lo <= m && hi > m) {
      utf8_sequences(lo, m, out);
      utf8_sequences(m + 1, hi, out);
      return;
    }
  }
  if (hi < 0x80) {
    out.push_back({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}});
    return;
  }
  for (int i = 1; i < 4; ++i) {
    const uint32_t m = (uint32_t{1} << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  encode(lo, a);
  encode(hi, b);
  std::vector<ByteRange> seq;
  for (size_t k = 0; k < utf8_length(lo); ++k) seq.push_back({a[k], b[k]});
  out.push_back(std::move(seq));
}

std::string key_of(const std::vector<int32_t>& set) {
  return std::string(reinterpret_cast<const char*>(set.data()), set.size() * sizeof(int32_t));
}

}  // namespace

int32_t Lexer::add_state() {
  if (nfa_.size() >= kMaxNfaStates) {
    fail(ErrorCode::kOutOfRange,
         "the grammar's lexemes need more than {} automaton states (a pattern or repetition "
         "count too large)",
         kMaxNfaStates);
  }
  nfa_.emplace_back();
  place_.emplace_back();
  return static_cast<int32_t>(nfa_.size() - 1);
}

int32_t Lexer::mask_class(State s, int max_bytes) {
  if (mask_max_bytes_ < 0) mask_max_bytes_ = max_bytes;
  LOOM_ASSERT(max_bytes == mask_max_bytes_);
  if (static_cast<size_t>(s) >= mask_class_.size()) mask_class_.resize(sets_.size(), -1);
  if (mask_class_[s] >= 0) return mask_class_[s];
  // Within max_bytes bytes at most max_bytes copies are entered (each reads a byte), so how
  // many copies remain before the minimum and the maximum matters only up to max_bytes + 1.
  const int64_t cap = static_cast<int64_t>(max_bytes) + 1;
  std::vector<std::array<int64_t, 4>> key;
  for (int32_t n : sets_[s]) {
    const Place& p = place_[n];
    if (p.block < 0) {
      key.push_back({-1, n, 0, 0});
      continue;
    }
    const Block& b = blocks_[p.block];
    const int64_t to_min = std::min(std::max<int64_t>(b.min - p.copy, 0), cap);
    const int64_t to_max = b.max < 0 ? cap : std::min(b.max - p.copy, cap);
    key.push_back({p.block, p.pos, to_min, to_max});
  }
  std::sort(key.begin(), key.end());
  key.erase(std::unique(key.begin(), key.end()), key.end());
  std::string k(reinterpret_cast<const char*>(key.data()), key.size() * sizeof(key[0]));
  auto [it, fresh] =
      mask_classes_.emplace(std::move(k), static_cast<int32_t>(mask_classes_.size()));
  (void)fresh;
  mask_class_[s] = it->second;
  return it->second;
}

void Lexer::add_class(const std::vector<CodeRange>& ranges, int32_t from, int32_t to) {
  // The byte sequences of a class, remembered per thread: grammars repeat the same classes.
  thread_local std::unordered_map<std::string, std::vector<std::vector<ByteRange>>> memo;
  std::string key(reinterpret_cast<const char*>(ranges.data()), ranges.size() * sizeof(CodeRange));
  auto it = memo.find(key);
  if (it == memo.end()) {
    if (memo.size() >= 4096) memo.clear();
    std::vector<std::vector<ByteRange>> seqs;
    for (CodeRange r : ranges) utf8_sequences(r.lo, r.hi, seqs);
    it = memo.emplace(std::move(key), std::move(seqs)).first;
  }
  for (const auto& seq : it->second) {
    int32_t cur = from;
    for (size_t k = 0; k < seq.size(); ++k) {
      const int32_t nxt = k + 1 == seq.size() ? to : add_state();
      nfa_[cur].edges.push_back({seq[k].first, seq[k].second, nxt});
      cur = nxt;
    }
  }
}

int32_t Lexer::build(const Regex& r, int32_t from) {
  switch (r->kind) {
    case RegexNode::Kind::kNothing:
      return add_state();  // unreachable from `from`
    case RegexNode::Kind::kEmpty: {
      const int32_t end = add_state();
      nfa_[from].eps.push_back(end);
      return end;
    }
    case RegexNode::Kind::kClass: {
      const int32_t end = add_state();
      add_class(r->ranges, from, end);
      return end;
    }
    case RegexNode::Kind::kConcat: {
      int32_t cur = from;
      for (const Regex& item : r->items) cur = build(item, cur);
      return cur;
    }
    case RegexNode::Kind::kMultiple: {
      const int64_t k = r->min;
      const int32_t end = add_state();
      nfa_[from].edges.push_back({'0', '0', end});  // 0 itself
      std::vector<int32_t> rem(static_cast<size_t>(k));
      for (auto& s : rem) s = add_state();
      for (int d = 1; d <= 9; ++d) {
        nfa_[from].edges.push_back(
            {static_cast<uint8_t>('0' + d), static_cast<uint8_t>('0' + d), rem[d % k]});
      }
      for (int64_t q = 0; q < k; ++q) {
        for (int d = 0; d <= 9; ++d) {
          nfa_[rem[q]].edges.push_back({static_cast<uint8_t>('0' + d),
                                        static_cast<uint8_t>('0' + d), rem[(10 * q + d) % k]});
        }
      }
      nfa_[rem[0]].eps.push_back(end);
      return end;
    }
    case RegexNode::Kind::kBytes: {
      int32_t cur = from;
      for (unsigned char c : r->bytes) {
        const int32_t nxt = add_state();
        nfa_[cur].edges.push_back({c, c, nxt});
        cur = nxt;
      }
      return cur;
    }
    case RegexNode::Kind::kAlt: {
      const int32_t end = add_state();
      for (const Regex& item : r->items) {
        const int32_t s = add_state();
        nfa_[from].eps.push_back(s);
        const int32_t e = build(item, s);
        nfa_[e].eps.push_back(end);
      }
      return end;
    }
    case RegexNode::Kind::kRepeat: {
      int32_t cur = from;
      // Copies of a sub-pattern that reads at least a byte are numbered (see mask_class);
      // states of an inner repetition keep their own block, which is new in every copy.
      const bool counted = !regex_nullable(r->sub) && std::max(r->min, r->max) > 1;
      const auto block = static_cast<int32_t>(blocks_.size());
      if (counted) blocks_.push_back({r->min, r->max});
      if (counted && lazy_allowed_ && std::max(r->min, r->max) > kEagerCopies) {
        const int32_t end = add_state();
        lazy_.push_back({r->sub, block, r->min, r->max, end});
        attach_lazy(static_cast<int32_t>(lazy_.size() - 1), 0, from);
        return end;
      }
      auto copy = [&](int64_t i) {
        const auto begin = static_cast<int32_t>(nfa_.size());
        cur = build(r->sub, cur);
        if (!counted) return;
        for (auto n = begin; n < static_cast<int32_t>(nfa_.size()); ++n) {
          if (place_[n].block < 0) place_[n] = {block, static_cast<int32_t>(i), n - begin};
        }
      };
      for (int64_t i = 0; i < r->min; ++i) copy(i);
      if (r->max < 0) {
        const int32_t loop = add_state();
        nfa_[cur].eps.push_back(loop);
        const int32_t e = build(r->sub, loop);
        nfa_[e].eps.push_back(loop);
        const int32_t end = add_state();
        nfa_[loop].eps.push_back(end);
        return end;
      }
      const int32_t end = add_state();
      nfa_[cur].eps.push_back(end);
      for (int64_t i = r->min; i < r->max; ++i) {
        copy(i);
        nfa_[cur].eps.push_back(end);
      }
      return end;
    }
  }
  return add_state();
}

namespace {
// The fewest bytes a match of `r` reads (saturating), or -1 when `r` matches nothing.
int64_t min_match_bytes(const Regex& r) {
  constexpr int64_t kHuge = int64_t{1} << 40;
  switch (r->kind) {
    case RegexNode::Kind::kNothing:
      return -1;
    case RegexNode::Kind::kEmpty:
      return 0;
    case RegexNode::Kind::kClass: {
      if (r->ranges.empty()) return -1;
      const uint32_t c = r->ranges.front().lo;
      return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    case RegexNode::Kind::kBytes:
      return static_cast<int64_t>(r->bytes.size());
    case RegexNode::Kind::kMultiple:
      return 1;
    case RegexNode::Kind::kConcat: {
      int64_t sum = 0;
      for (const Regex& x : r->items) {
        const int64_t m = min_match_bytes(x);
        if (m < 0) return -1;
        sum = std::min(sum + m, kHuge);
      }
      return sum;
    }
    case RegexNode::Kind::kAlt: {
      int64_t best = -1;
      for (const Regex& x : r->items) {
        const int64_t m = min_match_bytes(x);
        if (m >= 0 && (best < 0 || m < best)) best = m;
      }
      return best;
    }
    case RegexNode::Kind::kRepeat: {
      if (r->min == 0) return 0;
      const int64_t m = min_match_bytes(r->sub);
      if (m < 0) return -1;
      return m == 0 ? 0 : std::min(kHuge, m > kHuge / r->min ? kHuge : m * r->min);
    }
  }
  return 0;
}
}  // namespace

void Lexer::attach_lazy(int32_t id, int64_t done, int32_t exit) {
  const LazyRepeat& l = lazy_[static_cast<size_t>(id)];
  if (l.max < 0) {
    if (done < l.min) {
      mark_pending(exit, id, done);
      return;
    }
    // The mandatory copies are built: the loop, as an eager repetition ends.
    const int32_t loop = add_state();
    nfa_[exit].eps.push_back(loop);
    const Regex sub = lazy_[static_cast<size_t>(id)].sub;
    const int32_t e = build(sub, loop);
    nfa_[e].eps.push_back(loop);
    nfa_[loop].eps.push_back(lazy_[static_cast<size_t>(id)].end);
    return;
  }
  if (done >= l.min) nfa_[exit].eps.push_back(l.end);
  if (done < l.max) mark_pending(exit, id, done);
}

void Lexer::mark_pending(int32_t exit, int32_t id, int64_t done) {
  pending_[exit] = {id, done};
  if (pending_bit_.size() <= static_cast<size_t>(exit)) pending_bit_.resize(nfa_.size(), 0);
  pending_bit_[exit] = 1;
}

void Lexer::expand_lazy(int32_t exit) {
  const auto it = pending_.find(exit);
  if (it == pending_.end()) return;
  const auto [id, done] = it->second;
  pending_.erase(it);
  pending_bit_[exit] = 0;
  const Regex sub = lazy_[static_cast<size_t>(id)].sub;
  const int32_t block = lazy_[static_cast<size_t>(id)].block;
  const auto begin = static_cast<int32_t>(nfa_.size());
  lazy_allowed_ = true;  // only single-component lexemes have lazy repetitions
  const int32_t next = build(sub, exit);
  lazy_allowed_ = false;
  for (auto n = begin; n < static_cast<int32_t>(nfa_.size()); ++n) {
    if (place_[n].block < 0) place_[n] = {block, static_cast<int32_t>(done), n - begin};
  }
  attach_lazy(id, done + 1, next);
  mark_.resize(nfa_.size(), 0);
}

std::string lexeme_key(const LexemeSpec& spec) {
  std::string key;
  for (const auto& c : spec.components) {
    if (!key.empty()) key += "&";
    if (c.negated) key += "~";
    key += regex_to_string(c.regex);
  }
  return key;
}

uint64_t lexeme_hash(const LexemeSpec& spec) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (const auto& c : spec.components) {
    h = (h ^ c.regex->hash ^ (c.negated ? 0x5555 : 0)) * 0x100000001B3ULL;
  }
  return h;
}

bool lexeme_equal(const LexemeSpec& a, const LexemeSpec& b) {
  if (a.components.size() != b.components.size()) return false;
  for (size_t i = 0; i < a.components.size(); ++i) {
    if (a.components[i].negated != b.components[i].negated ||
        !regex_equal(a.components[i].regex, b.components[i].regex)) {
      return false;
    }
  }
  return true;
}

Lexer::Lexer(const std::vector<LexemeSpec>& lexemes) {
  // NFA state 0 marks start states: it has no edges, so no byte ever reaches a set holding
  // it, and a DFA start state is never the same state as one inside a lexeme (for "(ab)*c",
  // "ab" leads back to the same NFA states as the start).
  add_state();
  compound_of_.assign(lexemes.size(), -1);
  for (size_t i = 0; i < lexemes.size(); ++i) {
    const auto& comps = lexemes[i].components;
    bool all_nullable = true;
    for (const auto& c : comps)
      all_nullable = all_nullable && (c.negated || regex_nullable(c.regex));
    if (comps.empty() || all_nullable) {
      fail(ErrorCode::kInvalidArgument, "lexeme {} ({}) matches the empty string", i,
           lexeme_key(lexemes[i]).substr(0, 80));
    }
    starts_.emplace_back();
    Compound compound{static_cast<int32_t>(i), {}};
    lazy_allowed_ = comps.size() == 1 && !comps[0].negated;
    for (const auto& c : comps) {
      // Every byte of a counted repetition is a DFA state of its own: a lexeme that cannot end
      // before kMaxDfaStates bytes can never be completed (and lazily built copies would only
      // find that out while a model writes it).
      if (const int64_t m = min_match_bytes(c.regex); !c.negated && m > int64_t{kMaxDfaStates}) {
        fail(ErrorCode::kOutOfRange,
             "lexeme {} ({}) cannot match fewer than {} bytes; the lexer follows at most {}", i,
             lexeme_key(lexemes[i]).substr(0, 80), m, kMaxDfaStates);
      }
      const int32_t begin = static_cast<int32_t>(nfa_.size());
      const int32_t start = add_state();
      const int32_t end = build(c.regex, start);
      nfa_[end].accept = static_cast<int32_t>(i);
      starts_.back().push_back(start);
      compound.parts.push_back({begin, static_cast<int32_t>(nfa_.size()), end, c.negated});
    }
    if (comps.size() > 1 || comps[0].negated) {
      compound_of_[i] = static_cast<int32_t>(compounds_.size());
      compounds_.push_back(std::move(compound));
    }
  }
  lazy_allowed_ = false;
  mark_.assign(nfa_.size(), 0);
  intern({});  // state 0: dead
  std::fill_n(rows_[0], 256, kDead);
}

void Lexer::closure(std::vector<int32_t>& set) {
  ++generation_;
  if (generation_ == 0) {
    std::fill(mark_.begin(), mark_.end(), 0);
    generation_ = 1;
  }
  std::vector<int32_t> stack(set.begin(), set.end());
  set.clear();
  while (!stack.empty()) {
    const int32_t s = stack.back();
    stack.pop_back();
    if (mark_[s] == generation_) continue;
    mark_[s] = generation_;
    if (static_cast<size_t>(s) < pending_bit_.size() && pending_bit_[s]) expand_lazy(s);
    // Only states with byte edges or an accept matter for the DFA; pure epsilon hubs do not.
    if (!nfa_[s].edges.empty() || nfa_[s].accept >= 0) set.push_back(s);
    for (int32_t e : nfa_[s].eps) {
      if (mark_[e] != generation_) stack.push_back(e);
    }
  }
  std::sort(set.begin(), set.end());
}

void Lexer::prune(std::vector<int32_t>& set) const {
  // A compound lexeme is dead once any positive component has no state left: drop all of it.
  for (const Compound& c : compounds_) {
    bool any = false, dead = false;
    for (const auto& part : c.parts) {
      auto it = std::lower_bound(set.begin(), set.end(), part.begin);
      const bool present = it != set.end() && *it < part.end;
      any = any || present;
      if (!part.negated && !present) dead = true;
    }
    if (!any || !dead) continue;
    for (const auto& part : c.parts) {
      auto lo = std::lower_bound(set.begin(), set.end(), part.begin);
      auto hi = std::lower_bound(lo, set.end(), part.end);
      set.erase(lo, hi);
    }
  }
}

Lexer::State Lexer::intern(std::vector<int32_t> set) {
  prune(set);
  if (set.empty() || (set.size() == 1 && set[0] == 0)) {
    if (!sets_.empty()) return kDead;
  }
  std::string key = key_of(set);
  if (auto it = by_set_.find(key); it != by_set_.end()) return it->second;
  if (sets_.size() >= kMaxDfaStates) {
    fail(ErrorCode::kOutOfRange,
         "the grammar's lexer needs more than {} DFA states (patterns too complex together)",
         kMaxDfaStates);
  }
  const State id = static_cast<State>(sets_.size());
  std::vector<int32_t> acc;
  for (int32_t s : set) {
    const int32_t lx = nfa_[s].accept;
    if (lx >= 0 && compound_of_[lx] < 0) acc.push_back(lx);
  }
  // A compound lexeme accepts when every positive component does and no negated one does.
  for (const Compound& c : compounds_) {
    bool ok = true, present = false;
    for (const auto& part : c.parts) {
      const bool accepts = std::binary_search(set.begin(), set.end(), part.accept);
      auto it = std::lower_bound(set.begin(), set.end(), part.begin);
      present = present || (it != set.end() && *it < part.end);
      ok = ok && (part.negated ? !accepts : accepts);
    }
    if (ok && present) acc.push_back(c.lexeme);
  }
  std::sort(acc.begin(), acc.end());
  acc.erase(std::unique(acc.begin(), acc.end()), acc.end());
  sets_.push_back(std::move(set));
  accept_.push_back(std::move(acc));
  if (rows_.size() % kChunkStates == 0) {
    trans_chunks_.emplace_back(new int32_t[kChunkStates * 256]);
    std::fill_n(trans_chunks_.back().get(), kChunkStates * 256, -1);
  }
  rows_.push_back(trans_chunks_.back().get() + (rows_.size() % kChunkStates) * 256);
  by_set_.emplace(std::move(key), id);
  return id;
}

std::vector<int32_t> Lexer::step_set(const std::vector<int32_t>& set, uint8_t b, int& lo, int& hi) {
  std::vector<int32_t> next_set;
  lo = 0;
  hi = 255;
  for (int32_t n : set) {
    for (const Edge& e : nfa_[n].edges) {
      if (b >= e.lo && b <= e.hi) {
        next_set.push_back(e.to);
        lo = std::max<int>(lo, e.lo);
        hi = std::min<int>(hi, e.hi);
      } else if (e.hi < b) {
        lo = std::max(lo, e.hi + 1);
      } else {
        hi = std::min(hi, e.lo - 1);
      }
    }
  }
  if (!next_set.empty()) {
    closure(next_set);
    prune(next_set);
  }
  return next_set;
}

Lexer::State Lexer::compute(State s, uint8_t b) {
  // Every byte of [lo, hi] (the bytes around b that no edge's bound separates from it) takes
  // the same edges, so one set and one intern serve the whole range: a character class is
  // computed once, not once per byte (a UTF-8 continuation byte: 64 at once).
  int lo, hi;
  std::vector<int32_t> next_set = step_set(sets_[s], b, lo, hi);
  const State t = next_set.empty() ? kDead : intern(std::move(next_set));
  int32_t* row = rows_[static_cast<size_t>(s)];
  for (int x = lo; x <= hi; ++x) row[x] = t;
  return t;
}

Lexer::State Lexer::start(const IdSet& allowed) {
  std::string key(reinterpret_cast<const char*>(allowed.words().data()),
                  allowed.words().size() * sizeof(uint64_t));
  if (auto it = start_by_lexemes_.find(key); it != start_by_lexemes_.end()) return it->second;
  std::vector<int32_t> set;
  allowed.for_each([&](size_t i) {
    if (i < starts_.size()) set.insert(set.end(), starts_[i].begin(), starts_[i].end());
  });
  State s = kDead;
  if (!set.empty()) {
    closure(set);
    set.insert(set.begin(), 0);  // the start marker (closure() sorted the rest, all > 0)
    s = intern(std::move(set));
  }
  start_by_lexemes_.emplace(std::move(key), s);
  return s;
}

bool Lexer::loops_on_string_text(State s) {
  // Fail fast (most states are not loops), then the whole check.
  return s != kDead && next(s, ' ') == s && text_successor(s) == s;
}

Lexer::State Lexer::text_successor(State s) {
  if (text_next_.size() <= static_cast<size_t>(s)) text_next_.resize(n_states(), kUnknownState);
  if (text_next_[s] != kUnknownState) return text_next_[s];
  State found = kNoTextSuccessor;
  // Fail fast on ASCII, then follow each row of UTF-8's well-formed sequences (Unicode table
  // 3-7), byte range by byte range, over the (few) states they reach.
  const State first = next(s, ' ');
  bool same = true;
  for (int b = 0x21; b < 0x80 && same; ++b) {
    if (b != '"' && b != '\\') same = next(s, static_cast<uint8_t>(b)) == first;
  }
  if (same && first == kDead) {
    // No character continues: true when no UTF-8 lead byte does either.
    found = kDead;
    for (int b = 0xC2; b <= 0xF4 && found == kDead; ++b) {
      if (next(s, static_cast<uint8_t>(b)) != kDead) found = kNoTextSuccessor;
    }
  } else if (same) {
    struct Row {
      uint8_t ranges[4][2];
      int n;
    };
    static constexpr Row kRows[] = {
        {{{0xC2, 0xDF}, {0x80, 0xBF}}, 2},
        {{{0xE0, 0xE0}, {0xA0, 0xBF}, {0x80, 0xBF}}, 3},
        {{{0xE1, 0xEC}, {0x80, 0xBF}, {0x80, 0xBF}}, 3},
        {{{0xED, 0xED}, {0x80, 0x9F}, {0x80, 0xBF}}, 3},
        {{{0xEE, 0xEF}, {0x80, 0xBF}, {0x80, 0xBF}}, 3},
        {{{0xF0, 0xF0}, {0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}, 4},
        {{{0xF1, 0xF3}, {0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}, 4},
        {{{0xF4, 0xF4}, {0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}}, 4},
    };
    // On NFA sets, byte range by byte range: the sets inside a character are not made DFA
    // states (a counted string would get a dozen per count; the walk makes the ones it needs).
    std::vector<std::vector<int32_t>> at, then;
    found = first;
    for (const Row& row : kRows) {
      at.assign(1, sets_[s]);
      for (int k = 0; k < row.n && found != kNoTextSuccessor; ++k) {
        then.clear();
        for (const auto& x : at) {
          for (int b = row.ranges[k][0]; b <= row.ranges[k][1] && found != kNoTextSuccessor;) {
            int lo, hi;
            std::vector<int32_t> t = step_set(x, static_cast<uint8_t>(b), lo, hi);
            if (t.empty()) found = kNoTextSuccessor;
            if (std::find(then.begin(), then.end(), t) == then.end()) then.push_back(std::move(t));
            b = hi + 1;
          }
        }
        // A string-text state splits UTF-8 into a handful of states; many more means something
        // else (a pattern over the characters) is being followed.
        if (then.size() > 8) found = kNoTextSuccessor;
        at.swap(then);
      }
      if (found == kNoTextSuccessor || at.size() != 1 || at[0] != sets_[first]) {
        found = kNoTextSuccessor;
        break;
      }
    }
  }
  // next() may have added states (and resized nothing here): index again.
  if (text_next_.size() <= static_cast<size_t>(s)) text_next_.resize(n_states(), kUnknownState);
  text_next_[s] = found;
  return found;
}

int32_t Lexer::string_text_budget(State s, int32_t cap) {
  if (text_budget_cap_ < 0) text_budget_cap_ = cap;
  LOOM_ASSERT(cap == text_budget_cap_);
  if (s == kDead) return -1;
  auto known = [&](State x) {
    if (text_budget_.size() <= static_cast<size_t>(x)) text_budget_.resize(n_states(), -2);
    return text_budget_[x];
  };
  // Follow the chain of successors until a known budget, a state no character continues, a
  // loop, a fork, or `cap` steps.
  std::vector<State> chain;
  int32_t tail = -2;  // the budget of the state after the chain's last
  for (State x = s;;) {
    if (const int32_t k = known(x); k != -2) {
      tail = k;
      break;
    }
    if (static_cast<int32_t>(chain.size()) >= cap) {
      // At least `cap` characters from `s`; how many from the others is not known yet.
      text_budget_[s] = cap;
      return cap;
    }
    chain.push_back(x);
    const State t = text_successor(x);
    if (t == kNoTextSuccessor) {
      tail = -1;
      chain.pop_back();
      known(x);
      text_budget_[x] = -1;
      break;
    }
    if (t == kDead) {
      // Text longer than the budget ends here. Where a lexeme is complete (an accepting state),
      // the next one would start with that text instead: no budget.
      chain.pop_back();
      tail = accepting(x).empty() ? 0 : -1;
      known(x);
      text_budget_[x] = tail;
      break;
    }
    if (t == x || std::find(chain.begin(), chain.end(), t) != chain.end()) {
      tail = cap;  // a loop: as many characters as wanted
      break;
    }
    x = t;
  }
  // The chain's states, last first: one more character each than the next (-1 stays -1).
  for (size_t i = chain.size(); i-- > 0;) {
    tail = tail < 0 ? -1 : std::min(tail + 1, cap);
    known(chain[i]);
    text_budget_[chain[i]] = tail;
  }
  return known(s);
}

}  // namespace loom::grammar
