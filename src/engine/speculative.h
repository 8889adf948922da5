// Speculative decoding: a drafter proposes the next few tokens cheaply, the target model
// checks them all in one batched forward pass (its weights read once for K + 1 positions
// instead of once per token), and Sampler::verify keeps the ones the target agrees with. The
// output is the target's own: identical tokens under greedy decoding (rows are computed the
// same whatever the batch, engine-wide), the same distribution under sampling. Rejected
// drafts cost nothing to undo: attention reads the KV cache only up to each row's position,
// so their entries are simply overwritten later. Exactness needs each row of a checking pass
// computed as a one-token step computes it: the generator asks the backend for its single-row
// kernels up to 1 + max_draft rows (Backend::set_single_row_kernels_up_to), which also suit the
// step, memory-bound like a one-token step: the weights are read once for all the rows.
//
// Drafters are deterministic (a proposal is one token, not a distribution), which keeps the
// verification exact with no draft probabilities to carry:
// - NgramDrafter (prompt lookup, as llama.cpp's --lookup and vLLM's ngram): the last n tokens
//   (n from ngram_max down to ngram_min) are looked up in the context, latest match first, and
//   the tokens that followed it are proposed. Free; strong when the output copies its input
//   (editing code, summarising or quoting a given text).
// - ModelDrafter: a smaller model sharing the vocabulary (e.g. the Q4_0 of an F16 target)
//   proposes its greedy continuation, one cheap forward per token, keeping its own KV cache in
//   step with the accepted text.
//
// The server's scheduler gives each decoding sequence a drafter of its own (DrafterFactory),
// from a bounded pool: a drafter handed from one sequence to another follows the new context
// (ModelDrafter recomputes from the longest prefix its cache still holds).
//
// Thread-safety: none; a drafter serves one sequence at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace loom {

class CausalLM;
class Generator;

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Appends up to `k` tokens likely to follow `context` (prompt plus all generated) to `out`.
  virtual void propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) = 0;
};

class NgramDrafter final : public Drafter {
 public:
  // `corpus`: tokens of a text the output is expected to copy from besides the context (as
  // llama.cpp's --lookup-static: a document being edited, a reference answer), searched when
  // the context has no match.
  explicit NgramDrafter(int32_t ngram_min = 2, int32_t ngram_max = 4,
                        std::shared_ptr<const std::vector<int32_t>> corpus = nullptr);
  void propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) override;

 private:
  // Looks the last `len` tokens of `context` up in `text` (latest first, not counting the
  // tail itself when text is the context) and appends what followed; false when absent.
  static bool follow(std::span<const int32_t> text, std::span<const int32_t> tail, int64_t last_end,
                     int32_t k, std::vector<int32_t>& out);
  int32_t min_, max_;
  std::shared_ptr<const std::vector<int32_t>> corpus_;  // shared by the server's drafters
};

class ModelDrafter final : public Drafter {
 public:
  // `context_tokens`: the longest context it will be asked to follow.
  ModelDrafter(CausalLM& draft, int64_t context_tokens);
  ~ModelDrafter() override;
  void propose(std::span<const int32_t> context, int32_t k, std::vector<int32_t>& out) override;

 private:
  std::unique_ptr<Generator> gen_;
  std::vector<int32_t> fed_;  // tokens whose KV the draft's cache holds, from position 0
};

// Makes a drafter for one more sequence of at most `context_tokens` tokens (the server's
// scheduler; may throw).
using DrafterFactory = std::function<std::unique_ptr<Drafter>(int64_t context_tokens)>;

// Drafts per step at most (a checking pass is 1 + drafts rows).
inline constexpr int32_t kMaxDraft = 15;

struct SpeculativeOptions {
  Drafter* drafter = nullptr;  // null: plain decoding
  int32_t max_draft = 8;       // --draft-n: most tokens drafted per step (<= kMaxDraft)
  // Adaptive length: after a step whose drafts were all accepted the next drafts one more
  // (up to max_draft); after a rejection at draft i, i + 1.
  bool adaptive = true;
};

}  // namespace loom
