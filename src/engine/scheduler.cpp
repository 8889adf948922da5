#include "engine/scheduler.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace loom {

struct Scheduler::Sequence {
  RequestParams params;
  std::shared_ptr<RequestSink> sink;
  std::shared_ptr<RequestHandle> handle;
  std::optional<sample::Sampler> sampler;
  std::optional<TokenStream> stream;  // EOS, stops, length, text: shared with loom run
  std::optional<SequenceConstraint> constraint;
  std::string mask_error;       // compute_mask failed (a grammar past its size limits)
  std::vector<int32_t> tokens;  // prompt, then generated ids
  std::vector<int32_t> blocks;  // block table
  int64_t n_prompt = 0;
  int64_t n_computed = 0;  // positions whose K/V are in the cache
  int64_t cached_prompt = 0;
  int64_t registered = 0;       // full blocks registered in the prefix cache
  BlockPool::Chain chain;       // prefix key up to the registered (or matched) blocks
  uint64_t admitted_order = 0;  // the larger, the younger (preempted first)
  int64_t preemptions = 0;
  int64_t take = 0;  // rows in this step's batch
  int64_t logits_index = -1;
  // Speculative decoding: the drafter it holds (from the scheduler's pool), this step's rows
  // (the pending token, then n_drafts drafts), and the next step's draft length.
  std::unique_ptr<Drafter> drafter;
  std::vector<int32_t> rows;
  int64_t n_drafts = 0;
  int32_t draft_k = 0;
  bool admitted = false;  // counted in running_count_
  bool done = false;
};

// One thread that computes the masks of a step's constrained sequences while the scheduler
// thread runs the forward pass; wait() returns when they are all done.
class Scheduler::MaskWorker {
 public:
  MaskWorker() : thread_([this] { run(); }) {}
  ~MaskWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void start(std::vector<Sequence*> jobs) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_ = std::move(jobs);
      busy_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return quit_ || busy_; });
      if (quit_) return;
      std::vector<Sequence*> jobs = std::move(jobs_);
      lock.unlock();
      for (Sequence* s : jobs) {
        try {
          s->constraint->compute_mask();
        } catch (const std::exception& e) {
          s->mask_error = e.what();
        }
      }
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Sequence*> jobs_;
  bool busy_ = false;
  bool quit_ = false;
  std::thread thread_;
};

Scheduler::Scheduler(CausalLM& model, const tokenizer::Tokenizer* tokenizer,
                     SchedulerOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      cache_(model.make_kv_cache(options_.kv_blocks, options_.block_size, options_.kv_type)),
      pool_(options_.kv_blocks, options_.block_size),
      masks_(std::make_unique<MaskWorker>()) {
  options_.context = std::min(options_.context, model.info().context_length);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  shutdown(false);
}

std::unique_ptr<Scheduler::Sequence> Scheduler::make_sequence(SequenceRequest r) const {
  RequestParams& params = r.params;
  const int64_t vocab = model_.info().vocab_size;
  const int64_t n = static_cast<int64_t>(params.prompt.size());
  if (n == 0) fail(ErrorCode::kInvalidArgument, "the prompt is empty");
  for (size_t i = 0; i < params.prompt.size(); ++i) {
    if (params.prompt[i] < 0 || params.prompt[i] >= vocab) {
      fail(ErrorCode::kInvalidArgument,
           "token id {} (position {}) is outside the vocabulary [0, {})", params.prompt[i], i,
           vocab);
    }
  }
  if (params.max_tokens < 1) fail(ErrorCode::kInvalidArgument, "max_tokens must be at least 1");
  if (n + params.max_tokens > options_.context) {
    fail(ErrorCode::kOutOfRange,
         "the prompt ({} tokens) plus max_tokens ({}) exceeds the context of {} tokens", n,
         params.max_tokens, options_.context);
  }
  const int64_t blocks = (n + params.max_tokens + options_.block_size - 1) / options_.block_size;
  if (blocks > options_.kv_blocks) {
    fail(ErrorCode::kOutOfRange,
         "the prompt plus max_tokens needs {} KV blocks but the cache has {} in all", blocks,
         options_.kv_blocks);
  }
  sample::validate_sampling_params(params.sampling, static_cast<int32_t>(vocab));

  auto s = std::make_unique<Sequence>();
  s->sampler.emplace(params.sampling, static_cast<int32_t>(vocab));
  s->sampler->accept_prompt(params.prompt);
  s->stream.emplace(tokenizer_, TokenStreamOptions{params.stop, options_.eos_ids, params.ignore_eos,
                                                   params.max_tokens, options_.context,
                                                   params.special_text, params.guard});
  if (params.constraint) s->constraint.emplace(params.constraint);
  s->tokens = params.prompt;
  s->n_prompt = n;
  s->params = std::move(params);
  s->sink = std::move(r.sink);
  s->handle = std::move(r.handle);
  return s;
}

Scheduler::SubmitStatus Scheduler::submit(RequestParams params, std::shared_ptr<RequestSink> sink,
                                          std::shared_ptr<RequestHandle> handle) {
  std::vector<SequenceRequest> group(1);
  group[0] = {std::move(params), std::move(sink), std::move(handle)};
  return submit_group(std::move(group));
}

Scheduler::SubmitStatus Scheduler::submit_group(std::vector<SequenceRequest> group) {
  std::vector<std::unique_ptr<Sequence>> seqs;
  seqs.reserve(group.size());
  for (SequenceRequest& r : group) seqs.push_back(make_sequence(std::move(r)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return SubmitStatus::kShuttingDown;
    // A group enters whole when the queue has room for one more request (so a request with
    // n > max_queue is not refused for ever); it may overshoot the bound by n - 1.
    if (static_cast<int64_t>(queue_.size()) >= options_.max_queue) return SubmitStatus::kQueueFull;
    for (auto& s : seqs) queue_.push_back(std::move(s));
  }
  cv_.notify_one();
  return SubmitStatus::kAccepted;
}

void Scheduler::wake() {
  cv_.notify_one();
}

void Scheduler::request_stop(bool finish_running) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) finish_running_ = finish_running;
    if (!finish_running) finish_running_ = false;
    stopping_ = true;
  }
  cv_.notify_one();
}

void Scheduler::shutdown(bool finish_running) {
  request_stop(finish_running);
  std::call_once(joined_, [this] {
    if (thread_.joinable()) thread_.join();
  });
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.queued = static_cast<int64_t>(queue_.size());
  }
  st.running = running_count_.load();
  st.kv_blocks_total = options_.kv_blocks;
  st.kv_blocks_used = kv_used_.load();
  st.kv_blocks_cached = kv_cached_.load();
  st.prefix_hit_blocks = prefix_hits_.load();
  st.steps = steps_.load();
  st.preemptions = preemptions_.load();
  st.drafted = drafted_.load();
  st.draft_accepted = draft_accepted_.load();
  return st;
}

void Scheduler::finish(Sequence& s, const std::string& reason, const std::string& error) {
  if (s.done) return;
  s.done = true;
  // Text still held back (an incomplete character, a possible stop-string start) goes out
  // unless the sequence was cancelled, failed or hit a stop string.
  const TokenStream::Final final = s.stream->finish(reason);
  if (!final.text.empty()) {
    TokenEvent e;
    e.token = -1;
    e.text = final.text;
    s.sink->on_token(e);
  }
  pool_.release_all(s.blocks);
  return_drafter(s);
  // Visible (e.g. in /metrics) before the client hears of the end.
  kv_used_ = pool_.n_used();
  kv_cached_ = pool_.n_cached();
  if (s.admitted) --running_count_;
  FinishEvent f;
  f.finish_reason = final.finish_reason;
  f.error = error;
  f.text_bytes = final.text_bytes;
  f.degeneration = s.stream->degeneration().has_value();
  f.prompt_tokens = s.n_prompt;
  f.completion_tokens = s.stream->generated();
  f.cached_prompt_tokens = s.cached_prompt;
  s.sink->on_finish(f);
}

bool Scheduler::admit_locked() {
  bool admitted = false;
  const int64_t bs = options_.block_size;
  while (!queue_.empty() && static_cast<int64_t>(running_.size()) < options_.max_running) {
    Sequence& s = *queue_.front();
    if (s.handle && s.handle->cancelled.load()) {
      running_.push_back(std::move(queue_.front()));  // finished as cancelled in step()
      queue_.pop_front();
      continue;
    }
    // Blocks are taken as tokens are produced: admission needs the tokens so far (the prompt,
    // or prompt + generated for a preempted sequence) plus the next one, and leaves one block
    // per running sequence for their growth in the next step.
    const int64_t n_tokens = static_cast<int64_t>(s.tokens.size());
    const int64_t needed = (n_tokens + 1 + bs - 1) / bs;
    const int64_t reserve = static_cast<int64_t>(running_.size());
    // Share cached prefix blocks, but always leave at least one token to compute: its logits
    // continue the generation.
    s.chain = pool_.start_chain(s.params.cache_salt);
    const int64_t matched =
        pool_.match_prefix(s.tokens, s.params.cache_salt, (n_tokens - 1) / bs, s.blocks, s.chain);
    if (pool_.n_available() < needed - matched + reserve) {
      pool_.release_all(s.blocks);
      break;  // wait for running sequences to free blocks (FIFO: no overtaking)
    }
    while (static_cast<int64_t>(s.blocks.size()) < needed) s.blocks.push_back(pool_.allocate());
    s.n_computed = matched * bs;
    if (s.preemptions == 0) s.cached_prompt = s.n_computed;
    s.registered = matched;
    s.admitted = true;
    s.admitted_order = ++admissions_;
    ++running_count_;
    kv_used_ = pool_.n_used();  // the gauges follow admission at once, not a step later
    kv_cached_ = pool_.n_cached();
    running_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    admitted = true;
  }
  return admitted;
}

void Scheduler::preempt(Sequence& s) {
  // Recompute later: its blocks go back to the pool now (full ones stay in the prefix cache,
  // so the recompute is often a cache hit), its tokens, sampler, decoder and stop state stay.
  pool_.release_all(s.blocks);
  return_drafter(s);
  s.n_computed = 0;
  s.registered = 0;
  s.admitted = false;
  ++s.preemptions;
  --running_count_;
  ++preemptions_;
}

bool Scheduler::grow_blocks() {
  // Each running sequence needs a slot for every token it will compute this step. Oldest
  // first; when the pool is dry the youngest running sequence is preempted, so the oldest
  // always progresses and a request that fits the pool on its own always finishes.
  const int64_t bs = options_.block_size;
  std::vector<Sequence*> by_age;
  for (auto& s : running_) by_age.push_back(s.get());
  std::sort(by_age.begin(), by_age.end(), [](const Sequence* a, const Sequence* b) {
    return a->admitted_order < b->admitted_order;
  });
  std::vector<Sequence*> preempted;
  for (Sequence* s : by_age) {
    if (!s->admitted) continue;  // preempted in this loop
    const int64_t needed = (static_cast<int64_t>(s->tokens.size()) + bs - 1) / bs;
    while (s->admitted && static_cast<int64_t>(s->blocks.size()) < needed) {
      const int32_t b = pool_.allocate();
      if (b >= 0) {
        s->blocks.push_back(b);
        continue;
      }
      Sequence* victim = nullptr;
      for (auto it = by_age.rbegin(); it != by_age.rend(); ++it) {
        if ((*it)->admitted) {
          victim = *it;
          break;
        }
      }
      LOOM_ASSERT(victim != nullptr);
      preempt(*victim);
      preempted.push_back(victim);
    }
  }
  if (preempted.empty()) return false;
  // Back to the front of the queue, oldest first, ahead of requests never admitted.
  std::sort(preempted.begin(), preempted.end(), [](const Sequence* a, const Sequence* b) {
    return a->admitted_order > b->admitted_order;
  });
  std::lock_guard<std::mutex> lock(mu_);
  for (Sequence* p : preempted) {
    auto it =
        std::find_if(running_.begin(), running_.end(), [p](const auto& u) { return u.get() == p; });
    queue_.push_front(std::move(*it));
    running_.erase(it);
  }
  return true;
}

void Scheduler::return_drafter(Sequence& s) {
  if (s.drafter) free_drafters_.push_back(std::move(s.drafter));
}

int64_t Scheduler::draft(Sequence& s, int64_t budget) {
  const int32_t max_draft = std::clamp(options_.max_draft, 0, kMaxDraft);
  if (s.constraint || drafting_failed_ || max_draft == 0) return 0;
  if (s.draft_k == 0) s.draft_k = std::min(4, max_draft);
  // Room for the drafts and the token after them within max_tokens and this step's budget.
  const int64_t want =
      std::min<int64_t>({s.draft_k, s.params.max_tokens - s.stream->generated() - 1, budget - 1});
  if (want <= 0) return 0;
  if (!s.drafter) {
    if (!free_drafters_.empty()) {
      s.drafter = std::move(free_drafters_.back());
      free_drafters_.pop_back();
    } else if (drafters_ < options_.spec_max_batch) {
      try {
        s.drafter = options_.make_drafter(options_.context);
        ++drafters_;
      } catch (const std::exception&) {
        drafting_failed_ = true;  // e.g. no memory for a draft model's cache
        return 0;
      }
    } else {
      return 0;
    }
  }
  s.rows.assign(1, s.tokens.back());
  try {
    s.drafter->propose(s.tokens, static_cast<int32_t>(want), s.rows);
  } catch (const std::exception&) {
    drafting_failed_ = true;  // a draft model's pass failed: plain decoding from then on
    s.rows.resize(1);
    return 0;
  }
  // KV slots for the drafts, from blocks the pool can spare beyond one per running sequence.
  const int64_t bs = options_.block_size;
  const auto reserve = static_cast<int64_t>(running_.size());
  const int64_t last = s.n_computed + static_cast<int64_t>(s.rows.size());  // positions needed
  while (static_cast<int64_t>(s.blocks.size()) * bs < last && pool_.n_available() > reserve) {
    const int32_t b = pool_.allocate();
    if (b < 0) break;
    s.blocks.push_back(b);
  }
  const int64_t slots = static_cast<int64_t>(s.blocks.size()) * bs - s.n_computed - 1;
  const int64_t n = std::clamp<int64_t>(static_cast<int64_t>(s.rows.size()) - 1, 0, slots);
  s.rows.resize(static_cast<size_t>(n + 1));
  return n;
}

void Scheduler::register_blocks(Sequence& s) {
  const int64_t bs = options_.block_size;
  while ((s.registered + 1) * bs <= s.n_computed) {
    const auto block_tokens = std::span<const int32_t>(s.tokens).subspan(s.registered * bs, bs);
    pool_.register_full_block(block_tokens, s.params.cache_salt, s.blocks[s.registered], s.chain);
    ++s.registered;
  }
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> to_cancel;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Running sequences always have work (a decode token at least), so the thread only
      // sleeps when nothing is running or queued.
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !running_.empty(); });
      if (stopping_ && !finish_running_) {
        for (auto& s : queue_) to_cancel.push_back(std::move(s));
        queue_.clear();
        for (auto& s : running_) to_cancel.push_back(std::move(s));
        running_.clear();
      } else {
        admit_locked();
      }
      if (stopping_ && queue_.empty() && running_.empty() && to_cancel.empty()) break;
    }
    for (auto& s : to_cancel) finish(*s, "cancelled");
    if (!to_cancel.empty()) {
      kv_used_ = pool_.n_used();
      running_count_ = 0;
      continue;
    }
    step();
  }
  kv_used_ = pool_.n_used();
  kv_cached_ = pool_.n_cached();
  running_count_ = 0;
}

void Scheduler::step() {
  // 1. Cancelled sequences leave first, freeing their blocks at once.
  for (auto& s : running_) {
    if (s->handle && s->handle->cancelled.load()) finish(*s, "cancelled");
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  grow_blocks();
  kv_used_ = pool_.n_used();

  // 2. Form the batch: decode tokens first (inter-token latency), then prompt chunks.
  batch_.clear();
  int64_t budget = options_.step_tokens;
  std::vector<Sequence*> order;
  for (auto& s : running_) {
    if (s->n_computed >= s->n_prompt) order.push_back(s.get());
  }
  const auto n_decoding = static_cast<int64_t>(order.size());
  const bool speculate = options_.make_drafter && n_decoding <= options_.spec_max_batch;
  for (auto& s : running_) {
    if (s->n_computed < s->n_prompt) order.push_back(s.get());
  }
  std::vector<Sequence*> in_batch;
  for (Sequence* s : order) {
    s->take = 0;
    s->logits_index = -1;
    s->n_drafts = 0;
    const int64_t pending = static_cast<int64_t>(s->tokens.size()) - s->n_computed;
    if (budget <= 0 || pending <= 0) continue;
    if (speculate && pending == 1 && s->n_computed >= s->n_prompt) {
      s->n_drafts = draft(*s, budget);
    }
    if (s->n_drafts > 0) {
      s->take = 1 + s->n_drafts;
      budget -= s->take;
      batch_.add_sequence(s->rows, s->n_computed, s->blocks, /*all_logits=*/true);
      s->logits_index = static_cast<int64_t>(batch_.logit_rows.size()) - s->take;
      in_batch.push_back(s);
      continue;
    }
    s->take = std::min(pending, budget);
    budget -= s->take;
    batch_.add_sequence(std::span<const int32_t>(s->tokens).subspan(s->n_computed, s->take),
                        s->n_computed, s->blocks, /*all_logits=*/false);
    if (s->take == pending) {
      s->logits_index = static_cast<int64_t>(batch_.logit_rows.size()) - 1;
    } else {
      batch_.logit_rows.pop_back();  // a partial prompt chunk: its logits are not needed
    }
    in_batch.push_back(s);
  }
  if (in_batch.empty()) return;

  // 3. One forward pass for everyone, and meanwhile the masks of the constrained sequences
  // that sample this step.
  std::vector<Sequence*> mask_jobs;
  for (Sequence* s : in_batch) {
    if (s->logits_index >= 0 && s->constraint && s->constraint->active()) mask_jobs.push_back(s);
  }
  if (!mask_jobs.empty()) masks_->start(mask_jobs);
  try {
    model_.forward(batch_, *cache_, logits_);
    host_logits_.resize(static_cast<size_t>(logits_.numel()));
    model_.backend().download(logits_, 0, logits_.rows(), host_logits_);
  } catch (const std::exception& e) {
    if (!mask_jobs.empty()) masks_->wait();
    for (Sequence* s : in_batch) finish(*s, "error", e.what());
    std::erase_if(running_, [](const auto& s) { return s->done; });
    return;
  }
  if (!mask_jobs.empty()) masks_->wait();
  ++steps_;

  // 4. Sample (or check the drafts), stream, and finish.
  const int64_t vocab = model_.info().vocab_size;
  for (Sequence* s : in_batch) {
    // Drafts' positions count as computed only once their tokens are accepted.
    s->n_computed += s->take - s->n_drafts;
    if (s->logits_index < 0) {
      register_blocks(*s);
      continue;
    }
    std::string end;  // the finish reason, once known
    std::string error;
    int64_t accepted = 0;
    try {
      const bool constrained = s->constraint && s->constraint->active();
      if (constrained && !s->mask_error.empty()) {
        end = "error";
        error = s->mask_error;
      } else if (constrained && s->constraint->must_stop()) {
        end = "stop";
      }
      // Row i decides draft i; the row past the drafts samples the next token.
      for (int64_t i = 0; end.empty() && i <= s->n_drafts; ++i) {
        const std::span<const float> logits =
            std::span<const float>(host_logits_).subspan((s->logits_index + i) * vocab, vocab);
        int32_t token = 0;
        bool is_draft = false;
        if (i < s->n_drafts) {
          const sample::Sampler::Verdict v =
              s->sampler->verify(logits, s->rows[static_cast<size_t>(i + 1)]);
          token = v.token;
          is_draft = v.accepted;
        } else {
          token = constrained ? s->sampler->sample(logits, s->constraint->mask())
                              : s->sampler->sample(logits);
        }
        s->sampler->accept(token);
        const bool grammar_ended =
            s->constraint && s->constraint->accept(token) == SequenceConstraint::Result::kEnded;
        TokenEvent e;
        e.token = token;
        if (s->params.top_logprobs >= 0) {
          auto lp =
              s->sampler->logprobs(logits, token, static_cast<size_t>(s->params.top_logprobs));
          e.logprob = lp.logprob;
          for (const auto& t : lp.top) e.top_logprobs.emplace_back(t.token, t.logprob);
        }
        s->tokens.push_back(token);
        if (is_draft) {  // its K/V, written by this pass, hold the token taken
          ++s->n_computed;
          ++accepted;
        }
        TokenStream::Step step = s->stream->push(token, static_cast<int64_t>(s->tokens.size()));
        if (step.eos || grammar_ended) {  // not text: the client only hears that it stopped
          end = "stop";
          break;
        }
        e.text = std::move(step.text);
        s->sink->on_token(e);
        if (!step.finish_reason.empty()) end = step.finish_reason;
        if (i < s->n_drafts && !is_draft) break;  // a draft refused: the rest are moot
      }
    } catch (const std::exception& ex) {
      end = "error";
      error = ex.what();
    }
    register_blocks(*s);
    if (s->n_drafts > 0) {
      drafted_ += static_cast<uint64_t>(s->n_drafts);
      draft_accepted_ += static_cast<uint64_t>(accepted);
      // Adaptive length, as loom run: one more after a clean sweep, else what was accepted + 1.
      s->draft_k =
          accepted == s->n_drafts
              ? std::min<int32_t>(s->draft_k + 1, std::clamp(options_.max_draft, 1, kMaxDraft))
              : static_cast<int32_t>(accepted + 1);
    }
    if (!end.empty()) finish(*s, end, error);
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  kv_used_ = pool_.n_used();
  kv_cached_ = pool_.n_cached();
  prefix_hits_ = pool_.prefix_hits();
}

}  // namespace loom
