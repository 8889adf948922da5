#include "grammar/matcher.h"

#include <algorithm>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace loom::grammar {

namespace {

// out[d]: whether s[d..] is JSON string text: characters other than '"', '\\' and controls, as
// well-formed UTF-8 (Unicode table 3-7), the last one possibly cut short.
void string_text_suffixes(const std::string& s, std::vector<bool>& out) {
  const size_t n = s.size();
  out.assign(n + 1, false);
  out[n] = true;
  for (size_t d = n; d-- > 0;) {
    const auto c = static_cast<uint8_t>(s[d]);
    if (c < 0x80) {
      out[d] = c >= 0x20 && c != '"' && c != '\\' && out[d + 1];
      continue;
    }
    const size_t len = tokenizer::valid_sequence_length(s, d, /*allow_cut=*/true);
    out[d] = len > 0 && (d + len >= n || out[d + len]);
  }
}

}  // namespace

TokenVocab::TokenVocab(std::vector<std::string> bytes, std::vector<bool> is_text,
                       std::vector<int32_t> eos)
    : bytes_(std::move(bytes)), is_text_(std::move(is_text)), eos_(std::move(eos)) {
  LOOM_ASSERT(bytes_.size() == is_text_.size());
  std::vector<int32_t> order;
  for (size_t i = 0; i < bytes_.size(); ++i) {
    // A token that adds nothing would let generation loop without progress. Byte 0xFF only
    // starts a special token's 4 bytes: a text token holding it could spell one.
    const std::string& b = bytes_[i];
    const bool special = b.size() == 4 && b[0] == '\xFF';
    if (!special && b.find('\xFF') != std::string::npos) is_text_[i] = false;
    if (is_text_[i] && !b.empty()) order.push_back(static_cast<int32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return bytes_[a] != bytes_[b] ? bytes_[a] < bytes_[b] : a < b;
  });
  nodes_.push_back({});  // the root
  text_below_.push_back(false);
  all_text_.push_back(false);
  char_end_.push_back(true);
  text_tokens_.resize(bytes_.size());
  std::vector<uint32_t> path = {0};
  std::vector<bool> text_from;
  std::vector<std::pair<int32_t, int32_t>> text_chars;  // (characters, id) of text tokens
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& s = bytes_[id];
    size_t common = 0;
    if (prev != nullptr) {
      while (common < prev->size() && common < s.size() && (*prev)[common] == s[common]) ++common;
    }
    path.resize(common + 1);
    // Where characters end, by lead-byte lengths (a stray byte is a character of its own).
    size_t next_end = 0;
    std::vector<bool> ends(s.size() + 1, false);
    for (size_t k = 0; k < s.size(); ++k) {
      if (k == next_end) {
        const auto c = static_cast<uint8_t>(s[k]);
        next_end = k + (c >= 0xF0 && c < 0xF8   ? 4
                        : c >= 0xE0 && c < 0xF0 ? 3
                        : c >= 0xC0 && c < 0xE0 ? 2
                                                : 1);
      }
      ends[k + 1] = k + 1 == next_end;
    }
    for (size_t k = common; k < s.size(); ++k) {
      Node n;
      n.byte = static_cast<uint8_t>(s[k]);
      n.depth = static_cast<uint16_t>(std::min<size_t>(k + 1, 65535));
      nodes_.push_back(n);
      text_below_.push_back(true);
      all_text_.push_back(true);
      char_end_.push_back(ends[k + 1]);
      path.push_back(static_cast<uint32_t>(nodes_.size() - 1));
    }
    string_text_suffixes(s, text_from);
    for (size_t d = 1; d <= s.size(); ++d) {
      if (!text_from[d]) text_below_[path[d]] = false;
      if (!text_from[0]) all_text_[path[d]] = false;
    }
    if (text_from[0]) {
      text_tokens_.set(static_cast<size_t>(id));
      const auto chars = static_cast<int32_t>(std::count(ends.begin() + 1, ends.end(), true) +
                                              (ends.back() ? 0 : 1));
      max_text_chars_ = std::max(max_text_chars_, chars);
      if (chars >= kDirectChars) long_text_.emplace_back(chars, id);
      text_chars.emplace_back(chars, id);
    }
    Node& end = nodes_[path.back()];
    if (end.tok_begin == end.tok_end)
      end.tok_begin = end.tok_end = static_cast<uint32_t>(node_tokens_.size());
    node_tokens_.push_back(id);
    end.tok_end = static_cast<uint32_t>(node_tokens_.size());
    max_depth_ = std::max(max_depth_, static_cast<int>(s.size()));
    prev = &s;
  }
  text_within_.assign(kDirectChars, IdSet(bytes_.size()));
  for (const auto& [chars, id] : text_chars) {
    for (int32_t c = chars; c < kDirectChars; ++c) text_within_[c].set(static_cast<size_t>(id));
  }
  std::sort(long_text_.begin(), long_text_.end(), std::greater<>());
  // Subtree sizes: a node's subtree ends at the next node no deeper than it.
  std::vector<uint32_t> open;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    while (!open.empty() && nodes_[open.back()].depth >= nodes_[i].depth) {
      nodes_[open.back()].subtree = i - open.back();
      open.pop_back();
    }
    open.push_back(i);
  }
  for (uint32_t i : open) nodes_[i].subtree = static_cast<uint32_t>(nodes_.size()) - i;
  tok_before_.assign(nodes_.size() + 1, static_cast<uint32_t>(node_tokens_.size()));
  for (size_t i = nodes_.size(); i-- > 0;) {
    tok_before_[i] =
        nodes_[i].tok_begin != nodes_[i].tok_end ? nodes_[i].tok_begin : tok_before_[i + 1];
  }
}

void TokenVocab::text_tokens_within(int32_t chars, IdSet& out) const {
  if (chars < kDirectChars) {
    out.words() = text_within_[std::max(chars, 0)].words();
    return;
  }
  out.words() = text_tokens_.words();
  for (const auto& [c, id] : long_text_) {
    if (c <= chars) break;
    out.reset(static_cast<size_t>(id));
  }
}

std::shared_ptr<const TokenVocab> TokenVocab::from_tokenizer(const tokenizer::Tokenizer& tok,
                                                             std::vector<int32_t> eos_ids) {
  const size_t n = tok.vocab_size();
  std::vector<std::string> bytes(n);
  std::vector<bool> is_text(n, false);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    if (std::find(eos_ids.begin(), eos_ids.end(), id) != eos_ids.end()) continue;
    if (tok.is_special(id)) {
      // Reachable only through a grammar's special-token terminal.
      bytes[i] = special_token_bytes(id);
      is_text[i] = true;
      continue;
    }
    if (auto b = tok.token_bytes(id)) {
      bytes[i] = std::move(*b);
      is_text[i] = true;
    }
  }
  return std::make_shared<const TokenVocab>(std::move(bytes), std::move(is_text),
                                            std::move(eos_ids));
}

std::string special_token_bytes(int32_t id) {
  LOOM_ASSERT(id >= 0 && id < (1 << 24));
  std::string s = "\xFF";
  s += static_cast<char>((id >> 16) & 0xFF);
  s += static_cast<char>((id >> 8) & 0xFF);
  s += static_cast<char>(id & 0xFF);
  return s;
}

// ---------------------------------------------------------------------------------------------

Matcher::Matcher(std::shared_ptr<CompiledGrammar> grammar, std::shared_ptr<const TokenVocab> vocab)
    : g_(std::move(grammar)), vocab_(std::move(vocab)), parser_(g_->grammar) {
  row_start_.push_back(g_->lexer.start(parser_.expected()));
  lex_ = row_start_.back();
}

void Matcher::truncate_rows(size_t n) {
  parser_.truncate(n);
  row_start_.resize(n);
}

Lexer::State Matcher::step(Lexer::State s, uint8_t b) {
  Lexer& lx = g_->lexer;
  const Lexer::State t = lx.next(s, b);
  if (t != Lexer::kDead) return t;
  // The byte cannot continue the current lexeme: end it (if it is one) and start the next.
  if (s == row_start()) return Lexer::kDead;
  const auto& acc = lx.accepting(s);
  if (acc.empty()) return Lexer::kDead;
  const size_t rows = parser_.n_rows();
  if (!parser_.scan(acc)) return Lexer::kDead;
  const Lexer::State s0 = lx.start(parser_.expected());
  row_start_.push_back(s0);
  const Lexer::State u = s0 == Lexer::kDead ? Lexer::kDead : lx.next(s0, b);
  if (u == Lexer::kDead) truncate_rows(rows);
  return u;
}

bool Matcher::consume_bytes(std::string_view bytes) {
  if (finished_) return false;
  const size_t rows = parser_.n_rows();
  Lexer::State s = lex_;
  for (char c : bytes) {
    s = step(s, static_cast<uint8_t>(c));
    if (s == Lexer::kDead) {
      truncate_rows(rows);
      return false;
    }
  }
  lex_ = s;
  return true;
}

bool Matcher::consume_token(int32_t id) {
  if (finished_ || id < 0 || static_cast<size_t>(id) >= vocab_->size()) return false;
  const Saved saved{parser_.n_rows(), lex_, finished_};
  const auto& eos = vocab_->eos();
  if (std::find(eos.begin(), eos.end(), id) != eos.end()) {
    if (!can_stop()) return false;
    finished_ = true;
    history_.push_back(saved);
    return true;
  }
  if (!vocab_->is_text(id) || vocab_->bytes(id).empty()) return false;
  if (!consume_bytes(vocab_->bytes(id))) return false;
  history_.push_back(saved);
  return true;
}

void Matcher::rollback(size_t n) {
  LOOM_ASSERT(n <= history_.size());
  for (; n > 0; --n) {
    const Saved s = history_.back();
    history_.pop_back();
    truncate_rows(s.rows);
    lex_ = s.lex;
    finished_ = s.finished;
  }
}

bool Matcher::stop_possible(Lexer::State s) {
  if (s == row_start()) return parser_.accepting();
  const auto& acc = g_->lexer.accepting(s);
  if (acc.empty()) return false;
  const size_t rows = parser_.n_rows();
  if (!parser_.scan(acc)) return false;
  const bool ok = parser_.accepting();
  parser_.truncate(rows);
  return ok;
}

bool Matcher::can_stop() {
  return !finished_ && stop_possible(lex_);
}

const StateMasks* Matcher::masks_for(Lexer::State s) {
  CompiledGrammar& g = *g_;
  if (g.masks_vocab == nullptr) g.masks_vocab = vocab_.get();
  if (g.masks_vocab != vocab_.get()) return nullptr;
  const int32_t cls = g.lexer.mask_class(s, vocab_->max_depth());
  if (auto it = g.masks.find(cls); it != g.masks.end()) return it->second.get();
  Lexer& lx = g.lexer;
  const int32_t budget = lx.string_text_budget(s, vocab_->max_text_chars());
  // Past the cache's size, the masks of a state inside a string still come cheap (the text
  // tokens in bulk): computed each time; other states walk the trie with the parser.
  const bool cache = g.masks.size() < CompiledGrammar::kMaxCachedStates;
  if (!cache && budget < 0) return nullptr;
  std::unique_ptr<StateMasks> fresh;
  if (cache) {
    fresh = std::make_unique<StateMasks>();
  } else if (!scratch_masks_) {
    scratch_masks_ = std::make_unique<StateMasks>();
  }
  StateMasks* m = cache ? fresh.get() : scratch_masks_.get();
  m->boundaries.clear();
  m->inside.resize(vocab_->size());
  const auto& nodes = vocab_->nodes();
  const auto& toks = vocab_->node_tokens();
  std::vector<Lexer::State> st(static_cast<size_t>(vocab_->max_depth()) + 1);
  st[0] = s;
  // Inside a string (`s` loops on string text, or a byte leads to a state that does: a key
  // being written beside declared ones), the tokens that are string text throughout start in
  // ("text mode"). Below a node where the state loops at a character boundary ("valid"), every
  // text token is then right, so only subtrees holding other tokens are walked; elsewhere the
  // walk decides each token, taking text tokens out below a dead end. A string of bounded
  // length (`budget` >= 0: at most that many characters more; a loop counts as unbounded) is
  // valid from the root: its text tokens of at most `budget` characters are right and the
  // longer ones wrong, whatever they hold.
  bool text_mode = budget >= 0;
  for (int b = 0x20; b < 0x80 && !text_mode; ++b) {
    if (b != '"' && b != '\\')
      text_mode = lx.loops_on_string_text(lx.next(s, static_cast<uint8_t>(b)));
  }
  std::vector<uint8_t> valid(st.size(), 0);
  if (budget >= 0) {
    vocab_->text_tokens_within(budget, m->inside);
    valid[0] = 1;
  } else if (text_mode) {
    m->inside.words() = vocab_->text_tokens().words();
  }
  for (uint32_t i = 1; i < nodes.size();) {
    const TokenVocab::Node& n = nodes[i];
    const bool parent_valid = valid[n.depth - 1] != 0;
    if (parent_valid && vocab_->all_text(i)) {
      i += n.subtree;
      continue;
    }
    const Lexer::State p = st[n.depth - 1];
    const Lexer::State t = lx.next(p, n.byte);
    if (t == Lexer::kDead) {
      if (!lx.is_start(p) && !lx.accepting(p).empty()) m->boundaries.push_back({i, p});
      if (text_mode && !parent_valid) {
        const uint32_t end = vocab_->subtree_tokens_begin(i + n.subtree);
        for (uint32_t k = vocab_->subtree_tokens_begin(i); k < end; ++k) {
          m->inside.reset(static_cast<size_t>(toks[k]));
        }
      }
      i += n.subtree;
      continue;
    }
    if (text_mode) {
      valid[n.depth] = parent_valid || (vocab_->char_end(i) && lx.loops_on_string_text(t));
      if (valid[n.depth] && vocab_->all_text(i)) {
        i += n.subtree;
        continue;
      }
    } else if (vocab_->text_below(i) && lx.loops_on_string_text(t)) {
      // Inside a string: the whole subtree continues it.
      const uint32_t end = vocab_->subtree_tokens_begin(i + n.subtree);
      for (uint32_t k = vocab_->subtree_tokens_begin(i); k < end; ++k) {
        m->inside.set(static_cast<size_t>(toks[k]));
      }
      i += n.subtree;
      continue;
    }
    st[n.depth] = t;
    for (uint32_t k = n.tok_begin; k < n.tok_end; ++k) m->inside.set(static_cast<size_t>(toks[k]));
    ++i;
  }
  std::stable_sort(m->boundaries.begin(), m->boundaries.end(),
                   [](const auto& a, const auto& b) { return a.before < b.before; });
  if (cache) g.masks.emplace(cls, std::move(fresh));
  return m;
}

void Matcher::walk(uint32_t begin, uint32_t end, Lexer::State parent, IdSet& allowed) {
  const auto& nodes = vocab_->nodes();
  const auto& toks = vocab_->node_tokens();
  const size_t d0 = nodes[begin].depth;
  walk_state_[d0 - 1] = parent;
  walk_rows_[d0 - 1] = parser_.n_rows();
  for (uint32_t i = begin; i < end;) {
    const TokenVocab::Node& n = nodes[i];
    const size_t d = n.depth;
    if (parser_.n_rows() != walk_rows_[d - 1]) truncate_rows(walk_rows_[d - 1]);
    const Lexer::State s = step(walk_state_[d - 1], n.byte);
    if (s == Lexer::kDead) {
      i += n.subtree;
      continue;
    }
    if (vocab_->text_below(i) && g_->lexer.loops_on_string_text(s)) {
      const uint32_t tend = vocab_->subtree_tokens_begin(i + n.subtree);
      for (uint32_t k = vocab_->subtree_tokens_begin(i); k < tend; ++k) {
        allowed.set(static_cast<size_t>(toks[k]));
      }
      i += n.subtree;
      continue;
    }
    walk_state_[d] = s;
    walk_rows_[d] = parser_.n_rows();
    for (uint32_t k = n.tok_begin; k < n.tok_end; ++k) allowed.set(static_cast<size_t>(toks[k]));
    ++i;
  }
  truncate_rows(walk_rows_[d0 - 1]);
}

void Matcher::fill_mask(IdSet& allowed) {
  allowed.resize(vocab_->size());
  allowed.clear();
  if (finished_) return;
  const auto& nodes = vocab_->nodes();
  const size_t depth = static_cast<size_t>(vocab_->max_depth()) + 1;
  walk_state_.resize(depth);
  walk_rows_.resize(depth);
  const size_t rows = parser_.n_rows();
  if (const StateMasks* m = masks_for(lex_)) {
    allowed.words() = m->inside.words();
    // Where the current lexeme ends inside a token, the parser takes the rest: one scan per
    // distinct end state, then the subtrees below those nodes.
    Lexer& lx = g_->lexer;
    for (size_t b = 0; b < m->boundaries.size();) {
      const Lexer::State before = m->boundaries[b].before;
      size_t e = b;
      while (e < m->boundaries.size() && m->boundaries[e].before == before) ++e;
      if (parser_.scan(lx.accepting(before))) {
        const Lexer::State s0 = lx.start(parser_.expected());
        row_start_.push_back(s0);
        if (s0 != Lexer::kDead) {
          for (size_t k = b; k < e; ++k) {
            const uint32_t node = m->boundaries[k].node;
            walk(node, node + nodes[node].subtree, s0, allowed);
          }
        }
        truncate_rows(rows);
      }
      b = e;
    }
  } else if (nodes.size() > 1) {
    walk(1, static_cast<uint32_t>(nodes.size()), lex_, allowed);
  }
  truncate_rows(rows);
  if (can_stop()) {
    for (int32_t e : vocab_->eos()) {
      if (e >= 0 && static_cast<size_t>(e) < vocab_->size()) allowed.set(static_cast<size_t>(e));
    }
  }
}

}  // namespace loom::grammar
