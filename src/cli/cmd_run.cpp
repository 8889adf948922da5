// loom run -m MODEL [-p TEXT | -f FILE | --ids 1,2,3] [-n N] [--temp T] [--top-k K] [--top-p P]
//          [--min-p P] [--seed S] [--chat] [-t THREADS] [--json]
//          [--json-schema FILE | --grammar FILE | --regex RE] [--guard stop|penalize|off]
//          [--dry-multiplier M] [--dry-base B] [--dry-allowed-length N] [--dry-penalty-last-n N]
//          [--spec ngram [--spec-corpus FILE] | --draft DRAFT_MODEL] [--draft-n K]
// Streams generated text to stdout as it becomes valid UTF-8; --json prints
// {"prompt_ids", "ids", "text", "finish_reason"} at the end instead. --json-schema (a JSON
// Schema file; "object" for any JSON object), --grammar (a GBNF file) and --regex constrain the
// output to their language. --guard (default stop) ends a generation that falls into a loop with
// finish_reason "repetition" (engine/degeneration.h); penalize turns on the DRY penalty instead.
// --spec ngram (prompt lookup) or --draft (a smaller model with the same vocabulary) decode
// speculatively (engine/speculative.h): the same tokens under greedy decoding, the same
// distribution under sampling; the acceptance and speed go to stderr.
#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/drafting.h"
#include "app/loaded_model.h"
#include "app/repetition_guard.h"
#include "app/structured_output.h"
#include "backend/process_group.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "engine/generator.h"
#include "engine/speculative.h"

namespace loom::cli {

using namespace loom::app;  // NOLINT: the subcommands are thin wrappers over app/

namespace {

struct RunArgs {
  std::string model, prompt, file, ids;
  std::string json_schema, grammar, regex;
  int64_t n_predict = 128;
  SamplingFlags sampling;
  float typical_p = 1.0f, repeat_penalty = 1.0f;
  bool chat = false, json = false, ignore_eos = false;
  std::vector<std::string> stop;
  int threads = 0;
  std::string device = "cpu";
  int64_t ctx = 0;
  std::string guard = "stop";
  float dry_multiplier = 0.0f, dry_base = 1.75f;
  int32_t dry_allowed_length = 2, dry_penalty_last_n = -1;
  DraftArgs drafting;
};

int run_run(const RunArgs& a) {
  const int given = !a.prompt.empty() + !a.file.empty() + !a.ids.empty();
  if (given == 0 && !a.json && ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1) {
    // No prompt, at a terminal: a conversation.
    ChatSettings s;
    s.model = a.model;
    s.device = a.device;
    s.guard = a.guard;
    s.n_predict = a.n_predict == 128 ? 512 : a.n_predict;
    s.ctx = a.ctx;
    s.sampling = a.sampling;
    s.threads = a.threads;
    return run_chat(s);
  }
  if (given != 1) fail(ErrorCode::kInvalidArgument, "give exactly one of -p, -f or --ids");
  if (a.chat && !a.ids.empty()) fail(ErrorCode::kInvalidArgument, "--chat needs text, not --ids");
  if (!a.json_schema.empty() + !a.grammar.empty() + !a.regex.empty() > 1) {
    fail(ErrorCode::kInvalidArgument, "give at most one of --json-schema, --grammar and --regex");
  }
  GuardChoice guard;
  guard.action = parse_guard_action(a.guard);
  LoadedModel m = load_model(a.model, a.threads, /*want_tokenizer=*/true, false, false, a.device);
  std::shared_ptr<const ConstraintSpec> constraint;
  if (!a.json_schema.empty() || !a.grammar.empty() || !a.regex.empty()) {
    StructuredOutput so(&m.require_tokenizer(), m.eos_ids());
    if (a.json_schema == "object") {
      constraint = so.json_object("--json-schema");
    } else if (!a.json_schema.empty()) {
      nlohmann::ordered_json schema;
      try {
        schema = nlohmann::ordered_json::parse(read_text_file(a.json_schema));
      } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::kInvalidArgument, "--json-schema {}: not valid JSON: {}", a.json_schema,
             e.what());
      }
      constraint = so.json_schema(schema, "--json-schema");
    } else if (!a.grammar.empty()) {
      constraint = so.gbnf(read_text_file(a.grammar), "--grammar");
    } else {
      constraint = so.regex(a.regex, "--regex");
    }
  }

  std::vector<int32_t> prompt;
  if (!a.ids.empty()) {
    prompt = parse_id_list(a.ids);
  } else {
    const std::string text = a.file.empty() ? a.prompt : read_text_file(a.file);
    const tokenizer::Tokenizer& tok = m.require_tokenizer();
    if (a.chat) {
      const std::string rendered = render_chat(m, {{{"role", "user"}, {"content", text}}}, true);
      prompt = tok.encode(rendered, /*add_special_tokens=*/false);
    } else {
      prompt = tok.encode(text, /*add_special_tokens=*/true);
    }
  }

  GenerationOptions opt;
  opt.max_tokens = a.n_predict;
  a.sampling.apply(opt.sampling);
  opt.sampling.typical_p = a.typical_p;
  opt.sampling.repetition_penalty = a.repeat_penalty;
  opt.stop = a.stop;
  opt.eos_ids = m.eos_ids();
  opt.ignore_eos = a.ignore_eos;
  opt.constraint = constraint;
  opt.sampling.dry_multiplier = a.dry_multiplier;
  opt.sampling.dry_base = a.dry_base;
  opt.sampling.dry_allowed_length = a.dry_allowed_length;
  opt.sampling.dry_penalty_last_n = a.dry_penalty_last_n;
  DryBreakerCache breakers(m.tokenizer ? &*m.tokenizer : nullptr);
  apply_guard(guard, breakers, opt.guard, opt.sampling);

  const int64_t ctx = a.ctx > 0 ? a.ctx : m.model->info().context_length;
  Generator gen(*m.model, m.tokenizer ? &*m.tokenizer : nullptr, ctx);
  const Drafting drafting = make_drafting(a.drafting, m, a.threads, ctx);
  const Drafter* drafter = drafting.drafter.get();
  opt.speculative.drafter = drafting.drafter.get();
  opt.speculative.max_draft = a.drafting.draft_n;
  auto stream = [&](std::string_view text) {
    if (a.json) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  GenerationResult r = gen.generate(prompt, opt, stream);
  if (a.json) {
    nlohmann::ordered_json j;
    j["prompt_ids"] = r.prompt_ids;
    j["ids"] = r.ids;
    j["text"] = r.text;
    j["finish_reason"] = r.finish_reason;
    fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::fputc('\n', stdout);
  }
  if (drafter) {
    std::fprintf(stderr,
                 "loom: speculative decoding: %lld drafted, %lld accepted (%.1f%%); %lld tokens "
                 "in %.2f s = %.2f tok/s\n",
                 static_cast<long long>(r.drafted), static_cast<long long>(r.draft_accepted),
                 r.drafted > 0 ? 100.0 * static_cast<double>(r.draft_accepted) /
                                     static_cast<double>(r.drafted)
                               : 0.0,
                 static_cast<long long>(r.ids.size()), r.decode_seconds,
                 r.decode_seconds > 0 ? static_cast<double>(r.ids.size()) / r.decode_seconds : 0.0);
  }
  if (r.finish_reason == "repetition" && r.degeneration) {
    const Degeneration& g = *r.degeneration;
    std::fprintf(stderr,
                 "loom: stopped at token %lld: the output repeats a %lld-%s unit (degeneration "
                 "guard; --guard off to keep going)\n",
                 static_cast<long long>(g.at_token),
                 static_cast<long long>(g.period_tokens > 0 ? g.period_tokens : g.period_chars),
                 g.period_tokens > 0 ? "token" : "character");
  }
  return 0;
}

}  // namespace

void SamplingFlags::apply(sample::SamplingParams& params) const {
  params.temperature = temp;
  params.top_k = temp == 0.0f ? 0 : top_k;
  params.top_p = top_p;
  params.min_p = min_p;
  // Under mpirun every rank samples the same token from the same logits: one seed for all.
  params.seed = process_world() > 1 ? std::optional<uint64_t>(agree_on_seed(seed)) : seed;
}

void refuse_process_group(const char* command) {
  if (process_world() > 1) {
    fail(ErrorCode::kUnsupported,
         "loom {} does not run under mpirun (run, logits, bench, perplexity and serve do)",
         command);
  }
}

void add_sampling_options(CLI::App& cmd, SamplingFlags& f) {
  cmd.add_option("--temp", f.temp, "temperature; 0 = greedy (default 0.8)");
  cmd.add_option("--top-k", f.top_k, "top-k (default 40; 0 = off)");
  cmd.add_option("--top-p", f.top_p, "top-p (default 1 = off)");
  cmd.add_option("--min-p", f.min_p, "min-p (default 0 = off)");
  cmd.add_option("--seed", f.seed, "RNG seed (same seed, same output)");
}

void add_device_option(CLI::App& cmd, std::string& device) {
  std::string names;
  for (const std::string& d : available_devices()) names += (names.empty() ? "" : ", ") + d;
  cmd.add_option("--device", device,
                 fmt::format("where the model runs: cpu, cuda or cuda:N (this build: {}; "
                             "default cpu)",
                             names));
}

void add_draft_options(CLI::App& cmd, DraftArgs& a) {
  auto* spec =
      cmd.add_option("--spec", a.spec, "speculative decoding with prompt-lookup drafts: ngram")
          ->check(CLI::IsMember({"ngram"}));
  cmd.add_option("--draft", a.draft,
                 "speculative decoding with this draft model (same vocabulary, e.g. the Q4_0 of "
                 "MODEL)")
      ->excludes(spec);
  cmd.add_option("--draft-n", a.draft_n, "most tokens drafted per step (default 8, adaptive)")
      ->check(CLI::Range(1, kMaxDraft));
  cmd.add_option("--spec-corpus", a.corpus,
                 "with --spec ngram: a text the output copies from besides the context (a "
                 "document being edited), searched for drafts too")
      ->needs(spec);
}

Command add_run(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Generate text (or ids) from a prompt");
  auto a = std::make_shared<RunArgs>();
  cmd->add_option("-m,--model", a->model, "a .gguf file or a Hugging Face model folder")
      ->required();
  cmd->add_option("-p,--prompt", a->prompt, "prompt text");
  cmd->add_option("-f,--file", a->file, "read the prompt from a file");
  cmd->add_option("--ids", a->ids, "prompt as token ids, e.g. 1,2,3");
  cmd->add_option("-n,--n-predict", a->n_predict, "tokens to generate (default 128)");
  add_sampling_options(*cmd, a->sampling);
  cmd->add_option("--typical-p", a->typical_p, "typical-p (default 1 = off)");
  cmd->add_option("--repeat-penalty", a->repeat_penalty, "repetition penalty (default 1 = off)");
  cmd->add_option("--stop", a->stop, "stop string (repeatable)");
  cmd->add_flag("--chat", a->chat, "apply the model's chat template to the prompt");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "keep generating after an end-of-sequence token");
  cmd->add_option("-c,--ctx", a->ctx, "context size in tokens (default: the model's)");
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)");
  add_device_option(*cmd, a->device);
  cmd->add_flag("--json", a->json, "print prompt_ids, ids, text and finish_reason as JSON");
  cmd->add_option("--json-schema", a->json_schema,
                  "constrain the output to a JSON Schema (a file; 'object' for any JSON object)");
  cmd->add_option("--grammar", a->grammar, "constrain the output to a GBNF grammar (a file)");
  cmd->add_option("--regex", a->regex, "constrain the output to a regular expression");
  cmd->add_option("--guard", a->guard,
                  "degeneration guard: stop (end a looping generation, finish_reason "
                  "\"repetition\"; the default), penalize (DRY penalty) or off")
      ->check(CLI::IsMember({"stop", "penalize", "off"}));
  add_draft_options(*cmd, a->drafting);
  cmd->add_option("--dry-multiplier", a->dry_multiplier,
                  "DRY penalty strength (default 0 = off; 0.8 with --guard penalize)");
  cmd->add_option("--dry-base", a->dry_base, "DRY growth per repeated token (default 1.75)");
  cmd->add_option("--dry-allowed-length", a->dry_allowed_length,
                  "repeats up to this long are free (default 2)");
  cmd->add_option("--dry-penalty-last-n", a->dry_penalty_last_n,
                  "tokens DRY looks back over (default -1 = whole context)");
  return {cmd, [a] { return run_run(*a); }};
}

}  // namespace loom::cli
