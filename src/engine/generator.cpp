#include "engine/generator.h"

#include <algorithm>
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

void Generator::run(std::span<const int32_t> ids, int64_t start, bool all_rows,
                    Activations& logits) {
  LOOM_ASSERT(pool_.grow(table_, start + static_cast<int64_t>(ids.size())));
  batch_.clear();
  batch_.add_sequence(ids, start, table_, all_rows);
  model_.forward(batch_, cache_, logits);
}

std::vector<float> Generator::all_logits(std::span<const int32_t> ids, int64_t chunk) {
  check_ids(ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n > context_tokens_) {
    fail(ErrorCode::kOutOfRange, "{} tokens do not fit the context of {} tokens", n,
         context_tokens_);
  }
  const int64_t vocab = model_.info().vocab_size;
  std::vector<float> out(static_cast<size_t>(n * vocab));
  pool_.release_all(table_);
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t len = std::min(chunk, n - start);
    run(ids.subspan(start, len), start, true, logits_);
    std::copy_n(logits_.data(), len * vocab, out.data() + start * vocab);
  }
  pool_.release_all(table_);
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
  const int64_t vocab = model_.info().vocab_size;
  pool_.release_all(table_);
  for (int64_t start = 0; start < n;) {
    // A pass never straddles `first`: rows before it need no logits.
    const int64_t end = std::min({n, start + chunk, start < first ? first : n});
    const bool want = start >= first;
    run(ids.subspan(start, end - start), start, want, logits_);
    if (want) {
      for (int64_t i = 0; i < end - start; ++i) {
        row(start + i, std::span<const float>(logits_.row(i), static_cast<size_t>(vocab)));
      }
    }
    start = end;
  }
  pool_.release_all(table_);
}

GenerationResult Generator::generate(std::span<const int32_t> prompt,
                                     const GenerationOptions& options,
                                     const std::function<void(std::string_view)>& on_text) {
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

  pool_.release_all(table_);
  for (int64_t start = 0; start < n_prompt; start += options.prefill_chunk) {
    const int64_t len = std::min(options.prefill_chunk, n_prompt - start);
    run(prompt.subspan(start, len), start, false, logits_);
  }
  std::string reason = "length";
  for (int64_t pos = n_prompt; options.max_tokens > 0; ++pos) {
    const std::span<const float> logits(logits_.row(0), vocab);
    const bool constrained = constraint && constraint->active();
    if (constrained) {
      constraint->compute_mask();
      if (constraint->must_stop()) {
        reason = "stop";
        break;
      }
    }
    const int32_t token =
        constrained ? sampler.sample(logits, constraint->mask()) : sampler.sample(logits);
    sampler.accept(token);
    result.ids.push_back(token);
    const bool grammar_ended =
        constraint && constraint->accept(token) == SequenceConstraint::Result::kEnded;
    TokenStream::Step step = stream.push(token, pos + 1);
    emit(step.text);
    if (grammar_ended && step.finish_reason.empty()) step.finish_reason = "stop";
    if (!step.finish_reason.empty()) {
      reason = step.finish_reason;
      break;
    }
    const int32_t next[1] = {token};
    run(next, pos, false, logits_);
  }
  const TokenStream::Final final = stream.finish(reason);
  emit(final.text);
  result.finish_reason = final.finish_reason;
  if (final.text_bytes >= 0 && final.text_bytes < static_cast<int64_t>(result.text.size())) {
    result.text.resize(static_cast<size_t>(final.text_bytes));
  }
  result.degeneration = stream.degeneration();
  pool_.release_all(table_);
  return result;
}

}  // namespace loom
