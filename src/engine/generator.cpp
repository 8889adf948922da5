#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/error.h"
#include "engine/token_stream.h"
#include "tokenizer/tokenizer.h"

namespace loom {

Generator::Generator(CausalLM& model, const tokenizer::Tokenizer* tokenizer, int64_t context_tokens,
                     int64_t block_size)
    : model_(model),
      tokenizer_(tokenizer),
      context_tokens_(std::min(context_tokens, model.info().context_length)),
      cache_(model.make_kv_cache((context_tokens_ + block_size - 1) / block_size, block_size)),
      pool_((context_tokens_ + block_size - 1) / block_size, block_size) {}

void Generator::check_ids(std::span<const int32_t> ids) const {
  const int64_t vocab = model_.info().vocab_size;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      fail(ErrorCode::kInvalidArgument,
           "token id {} (position {}) is outside the vocabulary [0, {})", ids[i], i, vocab);
    }
  }
}

void Generator::run(std::span<const int32_t> ids, int64_t start, bool all_rows) {
  LOOM_ASSERT(pool_.grow(table_, start + static_cast<int64_t>(ids.size())));
  batch_.clear();
  batch_.add_sequence(ids, start, table_, all_rows);
  model_.forward(batch_, *cache_, logits_);
  host_logits_.resize(static_cast<size_t>(logits_.numel()));
  model_.backend().download(logits_, 0, logits_.rows(), host_logits_);
}

std::vector<float> Generator::all_logits(std::span<const int32_t> ids, int64_t chunk) {
  const int64_t vocab = model_.info().vocab_size;
  std::vector<float> out(ids.size() * static_cast<size_t>(vocab));
  score(
      ids, 0,
      [&](int64_t pos, std::span<const float> row) {
        std::copy(row.begin(), row.end(), out.begin() + pos * vocab);
      },
      chunk);
  return out;
}

void Generator::score(std::span<const int32_t> ids, int64_t first,
                      const std::function<void(int64_t, std::span<const float>)>& row,
                      int64_t chunk) {
  check_ids(ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n > context_tokens_) {
    fail(ErrorCode::kOutOfRange, "{} tokens do not fit the context of {} tokens", n,
         context_tokens_);
  }
  cached_.clear();
  pool_.release_all(table_);
  for (int64_t start = 0; start < n;) {
    // A pass never straddles `first`: rows before it need no logits.
    const int64_t end = std::min({n, start + chunk, start < first ? first : n});
    const bool want = start >= first;
    run(ids.subspan(start, end - start), start, want);
    if (want) {
      for (int64_t i = 0; i < end - start; ++i) {
        row(start + i, logits_row(i));
      }
    }
    start = end;
  }
  pool_.release_all(table_);
}

const float* Generator::forward(std::span<const int32_t> ids, int64_t start) {
  check_ids(ids);
  if (ids.empty() || start + static_cast<int64_t>(ids.size()) > context_tokens_) {
    fail(ErrorCode::kOutOfRange, "{} tokens at position {} do not fit the context of {} tokens",
         ids.size(), start, context_tokens_);
  }
  cached_.clear();
  run(ids, start, false);
  return logits_row(0).data();
}

GenerationResult Generator::generate(std::span<const int32_t> prompt,
                                     const GenerationOptions& options,
                                     const std::function<void(std::string_view)>& on_text) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  check_ids(prompt);
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt == 0) fail(ErrorCode::kInvalidArgument, "the prompt is empty");
  if (n_prompt >= context_tokens_) {
    fail(ErrorCode::kOutOfRange,
         "the prompt has {} tokens but the context holds {} (prompt plus at least one generated "
         "token); shorten the prompt or raise the context size",
         n_prompt, context_tokens_);
  }
  if (options.max_tokens < 0) fail(ErrorCode::kInvalidArgument, "max tokens must be >= 0");
  const int32_t vocab = static_cast<int32_t>(model_.info().vocab_size);
  sample::Sampler sampler(options.sampling, vocab);
  sampler.accept_prompt(prompt);

  GenerationResult result;
  result.prompt_ids.assign(prompt.begin(), prompt.end());
  result.finish_reason = "length";
  TokenStream stream(tokenizer_,
                     {options.stop, options.eos_ids, options.ignore_eos, options.max_tokens,
                      context_tokens_, options.special_text, options.guard});
  std::optional<SequenceConstraint> constraint;
  if (options.constraint) constraint.emplace(options.constraint);
  auto emit = [&](std::string_view text) {
    if (text.empty()) return;
    result.text += text;
    if (on_text) on_text(text);
  };

  // What the cache holds of this prompt (reuse_cache), leaving at least its last token to run:
  // its logits choose the first generated token.
  int64_t reused = 0;
  if (options.reuse_cache) {
    const auto limit = std::min<int64_t>(static_cast<int64_t>(cached_.size()), n_prompt - 1);
    while (reused < limit && cached_[static_cast<size_t>(reused)] == prompt[reused]) ++reused;
  }
  if (reused == 0) pool_.release_all(table_);
  cached_.clear();
  result.cached_prompt_tokens = reused;
  for (int64_t start = reused; start < n_prompt; start += options.prefill_chunk) {
    const int64_t len = std::min(options.prefill_chunk, n_prompt - start);
    run(prompt.subspan(start, len), start, false);
  }
  const auto t_prefill = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t_prefill - t0).count();

  // One loop for plain and speculative decoding. `pending` is the last token chosen, at
  // position `pos`, not yet run through the model. Each step runs it together with the drafts
  // proposed after it; row i of that pass gives the distribution at position pos + 1 + i, which
  // decides draft i (or, past the drafts, samples a bonus token). The first token not taken as
  // drafted becomes the next pending one. Without drafts this is one token per pass.
  std::string reason = "length";
  bool done = options.max_tokens == 0;
  // Takes `token` at position `at` as generated; false when generation ends with it.
  auto take = [&](int32_t token, int64_t at, bool grammar_ended) {
    sampler.accept(token);
    result.ids.push_back(token);
    TokenStream::Step step = stream.push(token, at + 1);
    emit(step.text);
    if (grammar_ended && step.finish_reason.empty()) step.finish_reason = "stop";
    if (step.finish_reason.empty()) return true;
    reason = step.finish_reason;
    return false;
  };
  // Samples the token at position `at` from `row` (under the constraint, if any).
  auto choose = [&](std::span<const float> row, int64_t at) {
    const bool constrained = constraint && constraint->active();
    if (constrained) {
      constraint->compute_mask();
      if (constraint->must_stop()) {
        reason = "stop";
        done = true;
        return;
      }
    }
    const int32_t token =
        constrained ? sampler.sample(row, constraint->mask()) : sampler.sample(row);
    const bool grammar_ended =
        constraint && constraint->accept(token) == SequenceConstraint::Result::kEnded;
    done = !take(token, at, grammar_ended);
    pending_ = token;
  };
  int64_t pos = n_prompt;
  if (!done) choose(logits_row(0), pos);
  Drafter* drafter = constraint ? nullptr : options.speculative.drafter;
  const int32_t max_draft = std::clamp(options.speculative.max_draft, 0, kMaxDraft);
  // Each of the 1 + max_draft rows of a checking pass must come out exactly as a one-token
  // step computes it, so that the tokens are plain decoding's.
  struct RowKernels {
    Backend& backend;
    ~RowKernels() { backend.set_single_row_kernels_up_to(0); }
  };
  std::optional<RowKernels> row_kernels;
  if (drafter != nullptr) {
    row_kernels.emplace(RowKernels{model_.backend()});
    model_.backend().set_single_row_kernels_up_to(max_draft + 1);
  }
  int32_t k = options.speculative.adaptive ? std::min(4, max_draft) : max_draft;
  std::vector<int32_t> context(prompt.begin(), prompt.end());
  std::vector<int32_t> step_ids;
  while (!done) {
    if (options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed)) {
      reason = "cancelled";
      break;
    }
    context.push_back(pending_);
    step_ids.assign(1, pending_);
    if (drafter != nullptr && k > 0) {
      // Drafts can only be taken while max_tokens and the context leave room for them.
      const int64_t room =
          std::min(options.max_tokens - stream.generated() - 1, context_tokens_ - 1 - (pos + 1));
      const auto want = static_cast<int32_t>(std::min<int64_t>(k, room));
      if (want > 0) drafter->propose(context, want, step_ids);
    }
    const auto n_drafts = static_cast<int64_t>(step_ids.size()) - 1;
    run(step_ids, pos, n_drafts > 0);
    result.drafted += n_drafts;
    int64_t taken = 0;
    for (int64_t i = 0; i <= n_drafts && !done; ++i) {
      const std::span<const float> row = logits_row(n_drafts > 0 ? i : 0);
      const int64_t at = pos + 1 + i;
      if (i == n_drafts) {  // past the drafts: the bonus token
        choose(row, at);
        pos = at;
        break;
      }
      const int32_t draft = step_ids[static_cast<size_t>(i + 1)];
      const sample::Sampler::Verdict v = sampler.verify(row, draft);
      done = !take(v.token, at, false);
      if (v.accepted) {
        ++taken;
        context.push_back(v.token);
        continue;
      }
      pending_ = v.token;
      pos = at;
      break;
    }
    result.draft_accepted += taken;
    if (n_drafts > 0 && options.speculative.adaptive) {
      k = taken == n_drafts ? std::min(k + 1, max_draft) : static_cast<int32_t>(taken + 1);
    }
  }
  const TokenStream::Final final = stream.finish(reason);
  emit(final.text);
  result.finish_reason = final.finish_reason;
  if (final.text_bytes >= 0 && final.text_bytes < static_cast<int64_t>(result.text.size())) {
    result.text.resize(static_cast<size_t>(final.text_bytes));
  }
  result.degeneration = stream.degeneration();
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t_prefill).count();
  if (options.reuse_cache) {
    cached_ = std::move(context);  // every token run whose K/V stands (not the last chosen)
  } else {
    pool_.release_all(table_);
  }
  return result;
}

}  // namespace loom
