// Constrained decoding: which tokens may come next so that the text stays a prefix of a
// sentence of the grammar.
//
//   TokenVocab: a tokenizer's vocabulary as bytes (what each id adds to the text in the middle
//     of a stream), in a trie flattened in depth-first order. Special tokens are never text;
//     the model's EOS ids are allowed exactly when the grammar accepts.
//   CompiledGrammar: a finalized Grammar and its Lexer, shared by every sequence that uses it.
//   Matcher: one sequence's state: an Earley Parser over lexemes plus the lexer's DFA state
//     inside the current lexeme. Bytes are lexed greedily (a lexeme ends only when the next
//     byte cannot continue it), so the grammars we compile keep their lexemes delimited.
//     consume_token() / rollback() move it; fill_mask() walks the trie once, pruning every
//     subtree whose prefix is rejected, pushing parser rows at lexeme ends and popping them on
//     the way back.
// Thread-safety: a CompiledGrammar's lexer grows lazily, so the matchers of one grammar run on
// one thread at a time; a TokenVocab is immutable.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/lexer.h"

namespace loom::tokenizer {
class Tokenizer;
}

namespace loom::grammar {

// The bytes a special token (e.g. <tool_call>, [TOOL_CALLS]) stands for in a grammar: 0xFF and
// the id in 3 bytes. No UTF-8 text holds byte 0xFF, so only a grammar's special-token terminal
// (re_bytes of these bytes) lets the token through; text tokens holding 0xFF are never allowed.
std::string special_token_bytes(int32_t id);

class TokenVocab {
 public:
  // `bytes[id]`: what the token adds to the text; `is_text[id]`: false for special tokens
  // (never allowed as text); `eos`: ids that end generation (allowed when the grammar accepts).
  TokenVocab(std::vector<std::string> bytes, std::vector<bool> is_text, std::vector<int32_t> eos);
  static std::shared_ptr<const TokenVocab> from_tokenizer(const tokenizer::Tokenizer& tok,
                                                          std::vector<int32_t> eos_ids);

  size_t size() const { return bytes_.size(); }
  const std::string& bytes(int32_t id) const { return bytes_[id]; }
  bool is_text(int32_t id) const { return is_text_[id]; }
  const std::vector<int32_t>& eos() const { return eos_; }

  struct Node {
    uint8_t byte = 0;
    uint16_t depth = 0;                   // root: 0
    uint32_t subtree = 1;                 // nodes in the subtree, this one included
    uint32_t tok_begin = 0, tok_end = 0;  // ids whose bytes end at this node
  };
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& node_tokens() const { return node_tokens_; }
  int max_depth() const { return max_depth_; }
  // The tokens of node i's subtree: node_tokens()[subtree_tokens_begin(i), ...begin(i + subtree)).
  uint32_t subtree_tokens_begin(uint32_t i) const { return tok_before_[i]; }
  // Whether what every token of node i's subtree holds after the node is JSON string text
  // (UTF-8 without '"', '\\' and controls, maybe cut short): from a state that loops on such
  // text (Lexer::loops_on_string_text) the whole subtree stays inside the lexeme.
  bool text_below(uint32_t i) const { return text_below_[i]; }
  // The tokens that are JSON string text as a whole, and whether all of node i's subtree is.
  const IdSet& text_tokens() const { return text_tokens_; }
  bool all_text(uint32_t i) const { return all_text_[i]; }
  // The most characters a text token holds (a character cut short counts), and into `out` the
  // text tokens of at most `chars` characters.
  int32_t max_text_chars() const { return max_text_chars_; }
  void text_tokens_within(int32_t chars, IdSet& out) const;
  // Whether the bytes from the root to node i end a UTF-8 character (by lead-byte lengths).
  bool char_end(uint32_t i) const { return char_end_[i]; }

 private:
  std::vector<std::string> bytes_;
  std::vector<bool> is_text_;
  std::vector<int32_t> eos_;
  std::vector<Node> nodes_;
  std::vector<int32_t> node_tokens_;
  std::vector<uint32_t> tok_before_;  // per node (and one past the last): tokens at earlier nodes
  std::vector<bool> text_below_, all_text_, char_end_;
  IdSet text_tokens_;
  // text_within_[c]: the text tokens of at most c characters, for c < kDirectChars; the longer
  // ones by length, longest first (few: a vocabulary's tokens are mostly short).
  static constexpr int32_t kDirectChars = 16;
  std::vector<IdSet> text_within_;
  std::vector<std::pair<int32_t, int32_t>> long_text_;  // (characters, id)
  int32_t max_text_chars_ = 0;
  int max_depth_ = 0;
};

// What the vocabulary does from one lexer state, whatever the parser's state: the tokens whose
// every byte continues the current lexeme (allowed as they are), and the trie nodes where the
// lexeme must end before the node's byte (there the parser decides). Cached per lexer state,
// so a mask inside a long string copies one bitset instead of walking the whole trie.
struct StateMasks {
  IdSet inside;
  struct Boundary {
    uint32_t node;
    Lexer::State before;  // the lexer state the lexeme ends in
  };
  std::vector<Boundary> boundaries;  // sorted by `before`
};

struct CompiledGrammar {
  explicit CompiledGrammar(std::shared_ptr<const Grammar> g)
      : grammar(std::move(g)), lexer(grammar->lexemes()) {}
  std::shared_ptr<const Grammar> grammar;
  Lexer lexer;
  // Per lexer state, for one vocabulary (the first one masks are computed for).
  static constexpr size_t kMaxCachedStates = 256;
  const TokenVocab* masks_vocab = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<StateMasks>> masks;  // by Lexer::mask_class
};

class Matcher {
 public:
  Matcher(std::shared_ptr<CompiledGrammar> grammar, std::shared_ptr<const TokenVocab> vocab);

  // Consumes text; false (and no change) if it leaves the grammar's language.
  bool consume_bytes(std::string_view bytes);
  // Consumes a token (an EOS id is accepted when can_stop(); it ends the match).
  bool consume_token(int32_t id);
  // Undoes the last n consume_token() calls.
  void rollback(size_t n);
  size_t n_consumed() const { return history_.size(); }
  // The text so far is a whole sentence: generation may stop here.
  bool can_stop();
  // The match has ended (an EOS was consumed, or the grammar allows nothing more).
  bool finished() const { return finished_; }
  // Sets allowed[id] for every token that may come next (size: vocab size).
  void fill_mask(IdSet& allowed);

 private:
  // One byte from lexer state `s`; pushes a parser row (and its start state) when a lexeme
  // ended. Returns the new lexer state or kDead.
  Lexer::State step(Lexer::State s, uint8_t b);
  // The tries's nodes [begin, end) at depth `depth`..., walked from `parent` (the state before
  // node `begin`'s byte) with full lexer + parser steps; allowed tokens set in `allowed`.
  void walk(uint32_t begin, uint32_t end, Lexer::State parent, IdSet& allowed);
  const StateMasks* masks_for(Lexer::State s);
  Lexer::State row_start() const { return row_start_.back(); }
  void truncate_rows(size_t n);
  bool stop_possible(Lexer::State s);

  std::shared_ptr<CompiledGrammar> g_;
  std::shared_ptr<const TokenVocab> vocab_;
  Parser parser_;
  std::vector<Lexer::State> row_start_;  // per parser row: the lexer's start state there
  Lexer::State lex_;
  struct Saved {
    size_t rows;
    Lexer::State lex;
    bool finished;
  };
  std::vector<Saved> history_;
  bool finished_ = false;
  std::vector<Lexer::State> walk_state_;       // fill_mask scratch, per trie depth
  std::unique_ptr<StateMasks> scratch_masks_;  // masks_for's, past the grammar's cache
  std::vector<size_t> walk_rows_;
};

}  // namespace loom::grammar
