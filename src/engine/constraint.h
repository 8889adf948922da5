// Constrained decoding in the engine: one sequence's grammar state between the sampler and the
// token stream, shared by `loom run` (Generator) and the server (Scheduler).
//
//   compute_mask()  the tokens that may come next (grammar::Matcher::fill_mask); the scheduler
//                   runs it on its mask thread while the forward pass for the same step runs,
//                   so constrained decoding costs no extra step time where a core is free;
//   mask()          for Sampler::sample(logits, mask);
//   accept(token)   advances the grammar with the token actually appended.
//
// Lazy constraints (tool calls with tool_choice "auto"): the output is free until one of the
// triggers appears in it (e.g. "<tool_call>", or "{" at the very start for Llama 3's JSON
// calls); the grammar then takes the output from the trigger on (its language starts with the
// trigger) and constrains every later token. Trigger and grammar bytes are the vocabulary's
// bytes (special tokens as special_token_bytes).
// Thread-safety: one sequence; compute_mask() and accept() never run at the same time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "grammar/matcher.h"

namespace loom {

struct ConstraintTrigger {
  std::string bytes;
  bool at_start = false;  // only at the start of the output (after leading whitespace)
};

struct ConstraintSpec {
  std::shared_ptr<grammar::CompiledGrammar> grammar;
  std::shared_ptr<const grammar::TokenVocab> vocab;
  std::vector<ConstraintTrigger> triggers;  // empty: the grammar holds from the first token
};

class SequenceConstraint {
 public:
  explicit SequenceConstraint(std::shared_ptr<const ConstraintSpec> spec);

  // The grammar constrains the next token.
  bool active() const { return matcher_.has_value() && !dropped_; }
  // The grammar is complete and allows nothing more: generation ends here ("stop").
  bool must_stop() const { return must_stop_; }
  // Fills the mask for the next token (only when active()).
  void compute_mask();
  std::span<const uint64_t> mask() const { return mask_.words(); }

  enum class Result {
    kOk,     // go on
    kEnded,  // the grammar ended (an EOS it allowed): generation stops
  };
  // After `token` was sampled (with the mask when active) and appended. Throws kInternal if an
  // active grammar refuses it (the sampler drew outside the mask: a bug).
  Result accept(int32_t token);
  // The grammar has started (a lazy one was triggered), for the response's finish reason.
  bool triggered() const { return matcher_.has_value(); }

 private:
  void start_matcher(size_t from);

  std::shared_ptr<const ConstraintSpec> spec_;
  std::optional<grammar::Matcher> matcher_;
  grammar::IdSet mask_;
  std::string output_;  // lazy: output bytes until triggered
  size_t scanned_ = 0;  // output_ bytes already searched for triggers
  size_t max_trigger_ = 0;
  bool must_stop_ = false;
  bool dropped_ = false;  // triggered, but the output from the trigger did not fit the grammar
};

}  // namespace loom
