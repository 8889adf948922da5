// Scheduler — continuous batching for many concurrent requests over one model.
//
// A dedicated thread runs steps. Each step forms one batch from the running sequences — one
// decode token each, plus chunks of prompts still being prefilled, up to a token budget — and
// runs one forward pass, so the weights are read once per step however many users are served.
// KV memory is a pool of fixed-size blocks (BlockPool); each sequence has a block table, and a
// prompt that starts with blocks another request already computed (a shared system prompt)
// shares them instead of recomputing. Results do not depend on the batch: every row is computed
// the same way whatever else runs beside it.
//
// KV policy (as vLLM's block manager): blocks are taken as tokens are produced, never
// reserved for max_tokens. A request is admitted when a running slot is free and the pool
// holds its tokens so far plus one, leaving a block per running sequence for growth; otherwise
// it waits in a bounded queue (submit() refuses when the queue is full). When a running
// sequence needs a block and none is free, the youngest running sequence is preempted: its
// blocks are freed and it goes back to the front of the queue, to be recomputed when
// admitted again (its full blocks usually still sit in the prefix cache). The oldest sequence
// always progresses, so nothing deadlocks and every request that fits the pool on its own
// completes. Cancellation (a client gone) frees the sequence's blocks at the start of the
// next step.
//
// Speculative decoding (engine/speculative.h), per sequence: while at most spec_max_batch
// sequences decode (beyond that the step is no longer bound by reading the weights and checking
// drafts costs more than it saves), each proposes up to max_draft tokens (adaptive, as loom run)
// that ride in the step's batch right after its pending token, with logits for every row;
// Sampler::verify keeps the ones the model agrees with. Rows are computed the same whatever the
// batch, so the tokens are plain decoding's under greedy sampling and the distribution is the
// model's otherwise. Drafts get KV slots only from blocks the pool can spare beyond the one per
// running sequence kept for growth; rejected drafts' slots are overwritten later, and only
// positions whose tokens were accepted count as computed (and reach the prefix cache). At most
// spec_max_batch drafters exist; a finished or preempted sequence hands its drafter back.
// Constrained sequences decode plainly.
//
// Thread-safety: submit(), cancel(), stats() and shutdown() may be called from any thread.
// RequestSink callbacks run on the scheduler thread and must not block.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/block_pool.h"
#include "engine/constraint.h"
#include "engine/speculative.h"
#include "engine/token_stream.h"
#include "model/model.h"
#include "sample/sampler.h"

namespace loom {

namespace tokenizer {
class Tokenizer;
}

struct RequestParams {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  sample::SamplingParams sampling;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int top_logprobs = -1;  // < 0: no logprobs; else the chosen token's plus the top N
  // Prefix-cache namespace: blocks are shared only between requests with the same salt, so one
  // tenant's cached prompt is never served to (or timed by) another.
  std::string cache_salt;
  // Constrained decoding (structured output, tool calls); null: free.
  std::shared_ptr<const ConstraintSpec> constraint;
  bool special_text = false;  // see TokenStreamOptions::special_text
  GuardOptions guard;         // see TokenStreamOptions::guard
};

struct TokenEvent {
  int32_t token = 0;
  std::string text;  // new final text (UTF-8 complete; stop strings held back / removed)
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

struct FinishEvent {
  std::string finish_reason;  // "stop" | "length" | "repetition" | "cancelled" | "error"
  std::string error;
  // "repetition": the whole text ends after this many bytes; text sent past it is to be cut
  // by a sink that collects it (see TokenStream::Final::text_bytes). -1: as sent.
  int64_t text_bytes = -1;
  bool degeneration = false;  // the guard recognised a loop (whatever its action)
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
};

class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void on_token(const TokenEvent& event) = 0;
  // Called exactly once, last.
  virtual void on_finish(const FinishEvent& event) = 0;
};

struct RequestHandle {
  std::atomic<bool> cancelled{false};
};

struct SchedulerOptions {
  int64_t max_running = 8;      // sequences decoding at once (--parallel)
  int64_t max_queue = 64;       // waiting requests beyond which submit() refuses
  int64_t kv_blocks = 256;      // pool size in blocks
  DType kv_type = DType::kF32;  // element type of the KV cache
  int64_t block_size = 16;
  int64_t step_tokens = 256;  // rows per forward pass (decode tokens + prompt chunks)
  int64_t context = 2048;     // per-sequence limit: prompt + max_tokens
  std::vector<int32_t> eos_ids;
  // Speculative decoding (see above): null make_drafter is plain decoding.
  DrafterFactory make_drafter;
  int32_t max_draft = 8;       // most drafts per sequence and step (<= kMaxDraft)
  int64_t spec_max_batch = 4;  // speculate while at most this many sequences decode
};

struct SchedulerStats {
  int64_t queued = 0;
  int64_t running = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_cached = 0;
  uint64_t prefix_hit_blocks = 0;
  uint64_t steps = 0;
  uint64_t preemptions = 0;
  uint64_t drafted = 0;         // tokens drafted (speculative decoding)
  uint64_t draft_accepted = 0;  // of them, accepted
};

class Scheduler {
 public:
  Scheduler(CausalLM& model, const tokenizer::Tokenizer* tokenizer, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class SubmitStatus { kAccepted, kQueueFull, kShuttingDown };
  struct SequenceRequest {
    RequestParams params;
    std::shared_ptr<RequestSink> sink;
    std::shared_ptr<RequestHandle> handle;
  };
  // Validates the request (throws loom::Error kInvalidArgument / kOutOfRange for a bad one:
  // ids outside the vocabulary, prompt + max_tokens beyond the context or the whole KV pool).
  SubmitStatus submit(RequestParams params, std::shared_ptr<RequestSink> sink,
                      std::shared_ptr<RequestHandle> handle);
  // The choices of one request (n > 1): every sequence is validated, then all are queued or
  // none is (kQueueFull when the queue lacks room for the whole group), so a full queue never
  // leaves part of a request running.
  SubmitStatus submit_group(std::vector<SequenceRequest> group);
  void wake();  // after setting a handle's cancelled flag

  // Stops admitting; with `finish_running` running and queued sequences run to their end, else
  // they are cancelled. request_stop() returns at once (a later call may turn a finishing
  // stop into a cancelling one); shutdown() also waits for the step thread to end.
  void request_stop(bool finish_running);
  void shutdown(bool finish_running);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Sequence;
  std::unique_ptr<Sequence> make_sequence(SequenceRequest r) const;
  void loop();
  bool admit_locked();
  void preempt(Sequence& s);
  bool grow_blocks();  // true when it preempted
  // Proposes s's drafts for this step into s.rows (after its pending token), at most
  // `budget` - 1 of them, with KV slots for them; returns how many.
  int64_t draft(Sequence& s, int64_t budget);
  void return_drafter(Sequence& s);
  void register_blocks(Sequence& s);
  void step();
  void finish(Sequence& s, const std::string& reason, const std::string& error = {});

  CausalLM& model_;
  const tokenizer::Tokenizer* tokenizer_;
  SchedulerOptions options_;
  std::unique_ptr<KvCache> cache_;
  BlockPool pool_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> queue_;     // guarded by mu_
  std::vector<std::unique_ptr<Sequence>> running_;  // step thread only
  bool stopping_ = false;                           // guarded by mu_
  bool finish_running_ = true;                      // guarded by mu_
  std::atomic<int64_t> running_count_{0};
  std::atomic<int64_t> kv_used_{0};
  std::atomic<int64_t> kv_cached_{0};
  std::atomic<uint64_t> prefix_hits_{0};
  std::atomic<uint64_t> steps_{0};
  std::atomic<uint64_t> preemptions_{0};
  std::atomic<uint64_t> drafted_{0};
  std::atomic<uint64_t> draft_accepted_{0};
  // Drafters not held by a sequence, and how many exist (step thread only).
  std::vector<std::unique_ptr<Drafter>> free_drafters_;
  int64_t drafters_ = 0;
  bool drafting_failed_ = false;  // make_drafter threw: plain decoding from then on
  uint64_t admissions_ = 0;       // guarded by mu_

  Batch batch_;
  Activations logits_;              // on the backend
  std::vector<float> host_logits_;  // its rows, downloaded after each step
  // Masks of constrained sequences, computed while the forward pass runs.
  class MaskWorker;
  std::unique_ptr<MaskWorker> masks_;
  std::thread thread_;
  std::once_flag joined_;
};

}  // namespace loom
