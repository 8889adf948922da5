// loom bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--json]
// Prompt processing (pp: one batched forward of p tokens from an empty cache) and text
// generation (tg: n single-token decode steps from an empty cache), in tokens per second, the
// median over reps with min/max and standard deviation — the same two tests as llama.cpp's
// llama-bench, so that the figures compare directly. Token ids are random (seeded): speed does
// not depend on them. One warm-up run of each test precedes the timed reps (as llama-bench), so
// page faults of the mapped weights are not timed.
//
// loom bench -m MODEL -f PROMPT_FILE (--spec ngram | --draft DRAFT_MODEL) [--draft-n K] -n N
// adds speculative decoding: greedy generation of N tokens after the prompt (from its text,
// EOS and the degeneration guard ignored), plain and speculative in alternation, reporting tg
// for both, the speedup and the share of drafted tokens accepted (tg_spec in --json).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "app/loaded_model.h"
#include "backend/process_group.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/progress.h"
#include "engine/block_pool.h"
#include "engine/generator.h"
#include "engine/speculative.h"
#include "tokenizer/tokenizer.h"

namespace loom::cli {

using namespace loom::app;  // NOLINT: the subcommands are thin wrappers over app/

namespace {

struct BenchArgs {
  std::string model;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int threads = 0;
  std::string device = "cpu";
  int reps = 5;
  bool json = false;
  std::string prompt_file;
  DraftArgs drafting;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Stats {
  int64_t tokens = 0;
  std::vector<double> tok_s;  // one per rep

  nlohmann::ordered_json to_json() const {
    std::vector<double> s = tok_s;
    std::sort(s.begin(), s.end());
    const size_t n = s.size();
    const double median = n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    double mean = 0;
    for (double v : s) mean += v;
    mean /= static_cast<double>(n);
    double var = 0;
    for (double v : s) var += (v - mean) * (v - mean);
    const double stddev = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
    return {{"tokens", tokens},
            {"tok_s", median},
            {"tok_s_min", s.front()},
            {"tok_s_max", s.back()},
            {"tok_s_mean", mean},
            {"tok_s_stddev", stddev},
            {"reps", n},
            {"samples", tok_s}};
  }
};

// Runs the model on a private cache: pp and tg each start from an empty cache.
class Runner {
 public:
  Runner(CausalLM& model, int64_t max_tokens)
      : model_(model),
        cache_(model.make_kv_cache((max_tokens + kBlock - 1) / kBlock, kBlock)),
        pool_((max_tokens + kBlock - 1) / kBlock, kBlock),
        rng_(1234) {}

  // Seconds for one forward of n random tokens at positions 0..n-1.
  double prompt(int64_t n) {
    reset();
    std::vector<int32_t> ids = random_ids(n);
    const auto t0 = Clock::now();
    step(ids, 0);
    return seconds_since(t0);
  }

  // Seconds for n single-token steps at positions 0..n-1.
  double generate(int64_t n) {
    reset();
    std::vector<int32_t> ids = random_ids(n);
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) step(std::span<const int32_t>(&ids[i], 1), i);
    return seconds_since(t0);
  }

 private:
  static constexpr int64_t kBlock = 16;

  void reset() { pool_.release_all(table_); }

  std::vector<int32_t> random_ids(int64_t n) {
    std::uniform_int_distribution<int32_t> dist(0,
                                                static_cast<int32_t>(model_.info().vocab_size - 1));
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = dist(rng_);
    return ids;
  }

  void step(std::span<const int32_t> ids, int64_t start) {
    LOOM_ASSERT(pool_.grow(table_, start + static_cast<int64_t>(ids.size())));
    batch_.clear();
    batch_.add_sequence(ids, start, table_, /*all_logits=*/false);
    model_.forward(batch_, *cache_, logits_);
    // As a real step: the sampled row's logits come back to the host.
    host_logits_.resize(static_cast<size_t>(logits_.numel()));
    model_.backend().download(logits_, 0, logits_.rows(), host_logits_);
  }

  CausalLM& model_;
  std::unique_ptr<KvCache> cache_;
  BlockPool pool_;
  std::vector<int32_t> table_;
  Batch batch_;
  Activations logits_;
  std::vector<float> host_logits_;
  std::mt19937 rng_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::ordered_json bench_speculative(const BenchArgs& a, const LoadedModel& m, int threads) {
  if (a.prompt_file.empty()) {
    fail(ErrorCode::kInvalidArgument, "--spec and --draft need a prompt: -f PROMPT_FILE");
  }
  if (a.n_gen < 1) fail(ErrorCode::kInvalidArgument, "--spec and --draft need -n >= 1");
  const tokenizer::Tokenizer& tok = m.require_tokenizer();
  const std::vector<int32_t> prompt = tok.encode(read_text_file(a.prompt_file), true);
  const int64_t ctx = static_cast<int64_t>(prompt.size()) + a.n_gen + 1;
  if (ctx > m.model->info().context_length) {
    fail(ErrorCode::kOutOfRange, "the prompt ({} tokens) plus -n {} exceed the context of {}",
         prompt.size(), a.n_gen, m.model->info().context_length);
  }
  const Drafting drafting = make_drafting(a.drafting, m, threads, ctx);
  Generator gen(*m.model, &tok, ctx);
  GenerationOptions plain;
  plain.max_tokens = a.n_gen;
  plain.sampling.temperature = 0.0f;
  plain.ignore_eos = true;
  GenerationOptions spec = plain;
  spec.speculative.drafter = drafting.drafter.get();
  spec.speculative.max_draft = a.drafting.draft_n;
  gen.generate(prompt, spec, {});  // warm-up (the draft's pages too)
  std::vector<double> plain_tok_s, spec_tok_s;
  int64_t drafted = 0, accepted = 0;
  for (int r = 0; r < a.reps; ++r) {
    const GenerationResult p = gen.generate(prompt, plain, {});
    plain_tok_s.push_back(static_cast<double>(p.ids.size()) / p.decode_seconds);
    const GenerationResult s = gen.generate(prompt, spec, {});
    spec_tok_s.push_back(static_cast<double>(s.ids.size()) / s.decode_seconds);
    drafted += s.drafted;
    accepted += s.draft_accepted;
    if (s.ids != p.ids) {
      fail(ErrorCode::kInternal, "speculative greedy output differs from plain decoding");
    }
  }
  const double plain_med = median(plain_tok_s), spec_med = median(spec_tok_s);
  return {{"drafter", a.drafting.draft.empty() ? std::string("ngram") : a.drafting.draft},
          {"prompt_tokens", prompt.size()},
          {"tokens", a.n_gen},
          {"plain_tok_s", plain_med},
          {"spec_tok_s", spec_med},
          {"speedup", spec_med / plain_med},
          {"drafted", drafted},
          {"accepted", accepted},
          {"acceptance",
           drafted > 0 ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0.0},
          {"plain_samples", plain_tok_s},
          {"spec_samples", spec_tok_s}};
}

int run_bench(const BenchArgs& a) {
  if (a.n_prompt < 0 || a.n_gen < 0) {
    fail(ErrorCode::kInvalidArgument, "-p and -n must be >= 0");
  }
  if (a.n_prompt == 0 && a.n_gen == 0) {
    fail(ErrorCode::kInvalidArgument, "nothing to measure: -p and -n are both 0");
  }
  if (a.reps < 1) fail(ErrorCode::kInvalidArgument, "-r must be >= 1");
  const int threads = a.threads > 0 ? a.threads : default_threads();

  const auto t_load = Clock::now();
  LoadedModel m =
      load_model(a.model, threads, /*want_tokenizer=*/a.drafting.any(), false, false, a.device);
  const double load_s = seconds_since(t_load);
  // The weights are copied into huge-page memory in the background (core/mapped_file.h): the
  // figures are of the steady state, so that copy finishes first.
  const auto t_copy = Clock::now();
  MappedFile::wait_for_background_copies();
  const double copy_s = seconds_since(t_copy);
  const int64_t ctx = std::max(a.n_prompt, a.n_gen);
  if (ctx > m.model->info().context_length) {
    fail(ErrorCode::kOutOfRange, "{} tokens exceed the model's context of {}", ctx,
         m.model->info().context_length);
  }
  uint64_t params = 0;
  for (const TensorInfo& t : m.spec.tensors) params += static_cast<uint64_t>(t.view().numel());

  Runner runner(*m.model, ctx);
  Stats pp{a.n_prompt, {}}, tg{a.n_gen, {}};
  // Under mpirun: bytes this rank put into the collectives per token of each test.
  double pp_bytes = 0, tg_bytes = 0;
  {
    // The runs, counted (warm-ups included) on stderr; the figures go to stdout.
    const int64_t runs = (a.n_prompt > 0 ? a.reps + 1 : 0) + (a.n_gen > 0 ? a.reps + 1 : 0);
    Progress progress("bench runs", runs, Progress::Unit::kCount, false);
    if (a.n_prompt > 0) {
      runner.prompt(a.n_prompt);  // warm-up
      progress.add(1);
      const uint64_t sent = process_bytes_sent();
      for (int r = 0; r < a.reps; ++r) {
        pp.tok_s.push_back(static_cast<double>(a.n_prompt) / runner.prompt(a.n_prompt));
        progress.add(1);
      }
      pp_bytes = static_cast<double>(process_bytes_sent() - sent) / (a.n_prompt * a.reps);
    }
    if (a.n_gen > 0) {
      runner.generate(1);  // warm-up
      progress.add(1);
      const uint64_t sent = process_bytes_sent();
      for (int r = 0; r < a.reps; ++r) {
        tg.tok_s.push_back(static_cast<double>(a.n_gen) / runner.generate(a.n_gen));
        progress.add(1);
      }
      tg_bytes = static_cast<double>(process_bytes_sent() - sent) / (a.n_gen * a.reps);
    }
  }

  nlohmann::ordered_json spec_json;
  if (a.drafting.any()) spec_json = bench_speculative(a, m, threads);

  nlohmann::ordered_json out = {{"model", a.model},
                                {"architecture", m.spec.architecture},
                                {"size_bytes", m.spec.total_bytes()},
                                {"params", params},
                                {"threads", threads},
                                {"ranks", process_world()},
                                {"backend", m.backend->name()},
                                {"load_s", load_s},
                                {"background_copy_s", copy_s}};
  if (a.n_prompt > 0) out["pp"] = pp.to_json();
  if (a.n_gen > 0) out["tg"] = tg.to_json();
  if (process_world() > 1) {
    out["pipeline_stages"] = pipeline_stages();
    out["rank0_bytes_sent_per_token"] = {{"pp", pp_bytes}, {"tg", tg_bytes}};
  }
  if (!spec_json.is_null()) out["tg_spec"] = spec_json;
  if (a.json) {
    fmt::print("{}\n", out.dump(2));
    return 0;
  }
  fmt::print(
      "model: {} ({}, {:.2f} GiB, {:.2f} B params), loaded in {:.2f} s{}, {} threads{}\n", a.model,
      m.spec.architecture, static_cast<double>(m.spec.total_bytes()) / (1024.0 * 1024 * 1024),
      static_cast<double>(params) / 1e9, load_s,
      copy_s >= 0.01 ? fmt::format(" (then {:.2f} s to finish copying into memory)", copy_s) : "",
      threads, process_world() > 1 ? fmt::format(" x {} ranks (mpirun)", process_world()) : "");
  fmt::print("| {:>8} | {:>12} | {:>9} | {:>9} | {:>4} |\n", "test", "t/s (median)", "min", "max",
             "reps");
  for (const auto& [name, s] : {std::pair{"pp", &pp}, std::pair{"tg", &tg}}) {
    if (s->tokens == 0) continue;
    const nlohmann::ordered_json j = s->to_json();
    fmt::print("| {:>8} | {:>12.2f} | {:>9.2f} | {:>9.2f} | {:>4} |\n",
               fmt::format("{}{}", name, s->tokens), j["tok_s"].get<double>(),
               j["tok_s_min"].get<double>(), j["tok_s_max"].get<double>(), a.reps);
  }
  if (process_world() > 1) {
    fmt::print(
        "rank 0 put {:.1f} KiB per prompt token and {:.1f} KiB per generated token into "
        "the collectives ({} pipeline stage{})\n",
        pp_bytes / 1024, tg_bytes / 1024, pipeline_stages(), pipeline_stages() > 1 ? "s" : "");
  }
  if (!spec_json.is_null()) {
    fmt::print(
        "speculative ({}): tg{} plain {:.2f} t/s, speculative {:.2f} t/s, speedup {:.2f}x; "
        "{} of {} drafted tokens accepted ({:.1f}%), medians of {} reps\n",
        spec_json["drafter"].get<std::string>(), a.n_gen, spec_json["plain_tok_s"].get<double>(),
        spec_json["spec_tok_s"].get<double>(), spec_json["speedup"].get<double>(),
        spec_json["accepted"].get<int64_t>(), spec_json["drafted"].get<int64_t>(),
        100.0 * spec_json["acceptance"].get<double>(), a.reps);
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench", "Measure prompt processing (pp) and generation (tg) speed in tokens per second");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens per pp run (0: skip pp)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", a->n_gen, "generated tokens per tg run (0: skip tg)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  cmd->add_option("-r,--reps", a->reps, "timed repetitions of each test")->capture_default_str();
  cmd->add_flag("--json", a->json, "print one JSON object instead of a table");
  cmd->add_option("-f,--file", a->prompt_file, "prompt text for the speculative test");
  add_draft_options(*cmd, a->drafting);
  return {cmd, [a] { return run_bench(*a); }};
}

}  // namespace loom::cli
