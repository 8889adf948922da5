// Speculative decoding as the entry points set it up (loom run, loom bench, loom serve): the
// drafter a user chose by flags, with the draft model it may need.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "app/loaded_model.h"
#include "engine/speculative.h"

namespace loom::app {

struct DraftArgs {
  std::string spec;    // "ngram" or empty
  std::string draft;   // a draft model's path, or empty
  std::string corpus;  // with ngram: a text file also searched for drafts
  int32_t draft_n = 8;
  bool any() const { return !spec.empty() || !draft.empty(); }
};

struct Drafting {
  std::optional<LoadedModel> draft_model;
  std::unique_ptr<Drafter> drafter;  // null when no drafting was asked for
  // More drafters like `drafter`, sharing its draft model and corpus (the server's
  // per-sequence ones); null when no drafting was asked for.
  DrafterFactory factory;
};

// The drafter for `target` (context: the longest context it will follow). A draft model must
// share the target's vocabulary (kInvalidArgument naming both sizes otherwise).
Drafting make_drafting(const DraftArgs& args, const LoadedModel& target, int threads,
                       int64_t context);

}  // namespace loom::app
