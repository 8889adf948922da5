// loom perplexity -m MODEL -f TEXT [--ctx N] [--chunks N] [--kl-base BASE_MODEL] [--json]
//
// Perplexity by llama-perplexity's method, so that the figures compare: the text is tokenized
// whole (with BOS when the model's tokenizer adds one), cut into chunks of N tokens (the
// remainder is dropped), each chunk run from an empty cache with its first token replaced by
// BOS, and only the second half of each chunk scored (every scored token has at least N/2
// tokens of context): positions N/2 .. N-2 predict tokens N/2+1 .. N-1.
// PPL = exp(mean negative log-likelihood). With --kl-base, BASE_MODEL (same vocabulary, e.g.
// the F16 of a quantized MODEL) runs on the same chunks and the mean KL divergence
// KL(base || model) and the share of positions whose argmax agree are reported too, as
// llama-perplexity --kl-divergence does. --json prints
// {"ppl", "chunks", "kld_mean", "top1_agree", ...} on the last line.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "engine/generator.h"

namespace loom::cli {

using namespace loom::app;  // NOLINT: the subcommands are thin wrappers over app/

namespace {

struct PerplexityArgs {
  std::string model, file, kl_base;
  int64_t ctx = 512;
  int64_t chunks = -1;
  bool json = false;
  int threads = 0;
  std::string device = "cpu";
};

// log-softmax of one row into `out` (double sums: vocabularies of 150k tokens).
void log_softmax(std::span<const float> logits, std::vector<float>& out) {
  float max = logits[0];
  for (const float v : logits) max = std::max(max, v);
  double sum = 0;
  for (const float v : logits) sum += std::exp(static_cast<double>(v - max));
  const double lse = static_cast<double>(max) + std::log(sum);
  out.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(logits[i] - lse);
}

size_t argmax(std::span<const float> v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

int run_perplexity(const PerplexityArgs& a) {
  if (a.ctx < 4) fail(ErrorCode::kInvalidArgument, "--ctx {} is too small (at least 4)", a.ctx);
  LoadedModel m = load_model(a.model, a.threads, /*want_tokenizer=*/true, false, false, a.device);
  const tokenizer::Tokenizer& tok = m.require_tokenizer();
  const std::vector<int32_t> tokens =
      tok.encode(read_text_file(a.file), /*add_special_tokens=*/true);
  const std::optional<int32_t> bos = tok.special_ids().bos;
  const bool add_bos = bos && !tokens.empty() && tokens[0] == *bos;
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2 * a.ctx) {
    fail(ErrorCode::kInvalidArgument,
         "{} tokenizes to {} tokens; a context of {} needs at least {} (two chunks)", a.file,
         n_tokens, a.ctx, 2 * a.ctx);
  }
  if (a.ctx > m.model->info().context_length) {
    fail(ErrorCode::kOutOfRange, "--ctx {} is beyond the model's context of {} tokens", a.ctx,
         m.model->info().context_length);
  }
  int64_t n_chunk = n_tokens / a.ctx;
  if (a.chunks > 0) n_chunk = std::min(n_chunk, a.chunks);
  const int64_t vocab = m.model->info().vocab_size;

  std::optional<LoadedModel> base;
  std::optional<Generator> base_gen;
  if (!a.kl_base.empty()) {
    base.emplace(
        load_model(a.kl_base, a.threads, /*want_tokenizer=*/false, false, false, a.device));
    if (base->model->info().vocab_size != vocab) {
      fail(ErrorCode::kInvalidArgument,
           "--kl-base {} has a vocabulary of {} tokens, {} has {}: they must be the same",
           a.kl_base, base->model->info().vocab_size, a.model, vocab);
    }
    base_gen.emplace(*base->model, nullptr, a.ctx);
  }
  Generator gen(*m.model, nullptr, a.ctx);

  const int64_t first = a.ctx / 2;
  const int64_t scored_per_chunk = a.ctx - 1 - first;
  std::vector<float> base_logp(static_cast<size_t>(scored_per_chunk * vocab));
  std::vector<float> logp;
  double nll = 0, nll2 = 0, base_nll = 0, kld = 0;
  int64_t count = 0, agree = 0;
  std::vector<int32_t> ids(static_cast<size_t>(a.ctx));
  for (int64_t c = 0; c < n_chunk; ++c) {
    const int64_t start = c * a.ctx;
    std::copy_n(tokens.begin() + start, a.ctx, ids.begin());
    if (add_bos) ids[0] = *bos;
    if (base_gen) {
      base_gen->score(ids, first, [&](int64_t pos, std::span<const float> row) {
        if (pos >= a.ctx - 1) return;
        log_softmax(row, logp);
        std::copy(logp.begin(), logp.end(), base_logp.begin() + (pos - first) * vocab);
        base_nll -= logp[static_cast<size_t>(ids[static_cast<size_t>(pos + 1)])];
      });
    }
    gen.score(ids, first, [&](int64_t pos, std::span<const float> row) {
      if (pos >= a.ctx - 1) return;
      log_softmax(row, logp);
      const double l =
          -static_cast<double>(logp[static_cast<size_t>(ids[static_cast<size_t>(pos + 1)])]);
      nll += l;
      nll2 += l * l;
      ++count;
      if (!base_gen) return;
      const std::span<const float> b(base_logp.data() + (pos - first) * vocab,
                                     static_cast<size_t>(vocab));
      double k = 0;
      for (int64_t t = 0; t < vocab; ++t) {
        const double lb = b[static_cast<size_t>(t)];
        k += std::exp(lb) * (lb - static_cast<double>(logp[static_cast<size_t>(t)]));
      }
      kld += k;
      agree += argmax(b) == argmax(logp) ? 1 : 0;
    });
    fmt::print(stderr, "[{}]{:.4f}{}", c + 1, std::exp(nll / static_cast<double>(count)),
               c + 1 == n_chunk ? "\n" : ",");
  }
  const double mean = nll / static_cast<double>(count);
  const double var = nll2 / static_cast<double>(count) - mean * mean;
  const double ppl = std::exp(mean);
  const double ppl_err = var > 0 ? ppl * std::sqrt(var / static_cast<double>(count - 1)) : 0.0;
  nlohmann::ordered_json j;
  j["ppl"] = ppl;
  j["chunks"] = n_chunk;
  j["kld_mean"] = base_gen ? nlohmann::ordered_json(kld / static_cast<double>(count)) : nullptr;
  j["top1_agree"] =
      base_gen ? nlohmann::ordered_json(static_cast<double>(agree) / static_cast<double>(count))
               : nullptr;
  j["ppl_stderr"] = ppl_err;
  j["ctx"] = a.ctx;
  j["tokens_scored"] = count;
  if (base_gen) j["base_ppl"] = std::exp(base_nll / static_cast<double>(count));
  if (a.json) {
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f} ({} chunks of {}, {} tokens scored)\n", ppl,
               ppl_err, n_chunk, a.ctx, count);
    if (base_gen) {
      fmt::print("KL divergence from {}: mean {:.6f}; same top token {:.3f}%; base PPL {:.4f}\n",
                 a.kl_base, j["kld_mean"].get<double>(), 100.0 * j["top1_agree"].get<double>(),
                 j["base_ppl"].get<double>());
    }
  }
  return 0;
}

}  // namespace

Command add_perplexity(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of a model on a text file (llama-perplexity's method), and with --kl-base the "
      "KL divergence from a base model");
  auto a = std::make_shared<PerplexityArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_option("-f,--file", a->file, "the text to score")->required();
  cmd->add_option("-c,--ctx", a->ctx, "tokens per chunk (default 512); the second half is scored");
  cmd->add_option("--chunks", a->chunks, "score at most this many chunks (default: all)");
  cmd->add_option("--kl-base", a->kl_base,
                  "a model with the same vocabulary (e.g. the F16 of MODEL): report the mean KL "
                  "divergence from it and the top-token agreement");
  cmd->add_flag("--json", a->json,
                "print {\"ppl\", \"chunks\", \"kld_mean\", \"top1_agree\", ...} as one JSON line");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  return {cmd, [a] { return run_perplexity(*a); }};
}

}  // namespace loom::cli
