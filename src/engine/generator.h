// Generator — one sequence at a time through a CausalLM: chunked prefill of the prompt into the
// paged KV cache, then decode steps with the sampler chain, stop strings, EOS and max-tokens
// handling, streaming UTF-8-safe text. `loom run` is this; the server's scheduler runs many
// sequences through the same model and cache layout.
// Thread-safety: one generate() at a time per Generator.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/block_pool.h"
#include "engine/constraint.h"
#include "engine/degeneration.h"
#include "engine/speculative.h"
#include "model/model.h"
#include "sample/sampler.h"

namespace loom {

namespace tokenizer {
class Tokenizer;
}

struct GenerationOptions {
  int64_t max_tokens = 128;
  sample::SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (may span tokens); not part of the output
  std::vector<int32_t> eos_ids;   // generation ends after one of these (not emitted as text)
  bool ignore_eos = false;
  int64_t prefill_chunk = 512;  // prompt rows per forward pass
  // Constrained decoding (--json-schema, --grammar, --regex); null: free.
  std::shared_ptr<const ConstraintSpec> constraint;
  bool special_text = false;  // see TokenStreamOptions::special_text
  GuardOptions guard;         // see TokenStreamOptions::guard
  // Speculative decoding (engine/speculative.h); not used for constrained generation.
  SpeculativeOptions speculative;
  // Set (from another thread or a signal handler) to end generation after the current step,
  // with finish_reason "cancelled" (loom chat's Ctrl-C). Null: never.
  const std::atomic<bool>* cancel = nullptr;
  // Keep the KV cache of the previous reuse_cache generation and compute only the part of this
  // prompt it does not already hold (loom chat: each turn's prompt starts with the last turn's
  // prompt and answer). Exact on a batch-invariant backend; elsewhere the reused positions were
  // computed by one-row steps rather than a prefill, which may differ in the last bits.
  bool reuse_cache = false;
};

struct GenerationResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> ids;  // generated ids (the EOS id included when it ended generation)
  std::string text;
  std::string finish_reason;  // "stop" (EOS or a stop string), "length", "repetition" or
                              // "cancelled"
  std::optional<Degeneration> degeneration;  // where the guard recognised a loop
  // Speculative decoding: tokens drafted, and how many of them the target accepted.
  int64_t drafted = 0;
  int64_t draft_accepted = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens whose KV reuse_cache kept
  double prefill_seconds = 0;        // the prompt's forward passes
  double decode_seconds = 0;         // everything after, to the last token
};

class Generator {
 public:
  // The KV cache holds `context_tokens` positions (<= the model's context length).
  Generator(CausalLM& model, const tokenizer::Tokenizer* tokenizer, int64_t context_tokens,
            int64_t block_size = 16);

  // Throws kOutOfRange when the prompt does not fit the context, kInvalidArgument for ids
  // outside the vocabulary. on_text receives text as it becomes final.
  GenerationResult generate(std::span<const int32_t> prompt, const GenerationOptions& options,
                            const std::function<void(std::string_view)>& on_text);

  // Logits at every position of `ids` ([ids.size(), vocab], row-major), computed in chunks.
  std::vector<float> all_logits(std::span<const int32_t> ids, int64_t chunk = 512);
  // Runs `ids` from position 0 and hands the logits of each position >= `first` to `row`
  // (position, vocab logits; valid during the call), `chunk` rows per forward pass. Positions
  // before `first` only fill the KV cache (no output projection), as llama-perplexity does.
  void score(std::span<const int32_t> ids, int64_t first,
             const std::function<void(int64_t, std::span<const float>)>& row, int64_t chunk = 512);

  int64_t context_tokens() const { return context_tokens_; }
  int64_t vocab_size() const { return model_.info().vocab_size; }

  // Runs `ids` at positions start.. (the cache must hold the positions before start: the
  // caller's own earlier calls since the last generate/score/all_logits) and returns the last
  // row's logits (vocab_size floats, valid until the next call). For drafters.
  const float* forward(std::span<const int32_t> ids, int64_t start);

 private:
  void check_ids(std::span<const int32_t> ids) const;
  // Runs ids at positions start.. through the model; logits for all rows or only the last,
  // downloaded to the host (logits_row).
  void run(std::span<const int32_t> ids, int64_t start, bool all_rows);
  // Row i of the last run's logits.
  std::span<const float> logits_row(int64_t i) const {
    const auto vocab = static_cast<size_t>(model_.info().vocab_size);
    return std::span<const float>(host_logits_).subspan(static_cast<size_t>(i) * vocab, vocab);
  }

  CausalLM& model_;
  const tokenizer::Tokenizer* tokenizer_;
  int64_t context_tokens_;
  std::unique_ptr<KvCache> cache_;
  BlockPool pool_;
  std::vector<int32_t> table_;
  Batch batch_;
  Activations logits_;              // on the backend
  std::vector<float> host_logits_;  // the rows of logits_, downloaded
  int32_t pending_ = 0;             // generate(): the last token chosen, not yet run
  // Tokens whose K/V the cache holds at positions 0.. after a reuse_cache generation (empty
  // when the cache holds nothing reusable).
  std::vector<int32_t> cached_;
};

}  // namespace loom
