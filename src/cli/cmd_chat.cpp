// loom chat -m MODEL (and `loom run -m MODEL` with no prompt on a terminal): an interactive
// conversation through the model's chat template, streamed as it is generated, with the
// degeneration guard on. Lines starting with '/' are commands: /clear, /system TEXT,
// /save FILE, /help, /exit. Ctrl-C stops the answer being written (what was written stays in
// the history) without leaving; at the prompt it says how to leave; Ctrl-D leaves.
// Each turn renders the whole conversation and runs it from the start (no KV reuse between
// turns); when it outgrows the context the oldest turns are dropped, and the chat says so.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/loaded_model.h"
#include "app/repetition_guard.h"
#include "cli/commands.h"
#include "core/error.h"
#include "engine/generator.h"

namespace loom::cli {

using namespace loom::app;  // NOLINT: the subcommands are thin wrappers over app/

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
  g_interrupted.store(true);
}

// Ctrl-C sets the flag instead of ending the process while the chat runs.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read at the prompt returns EINTR
    ::sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { ::sigaction(SIGINT, &old_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_ = {};
};

enum class Input { kLine, kEnd, kInterrupted };

// One line from stdin without its newline; kInterrupted when Ctrl-C came first.
Input read_line(std::string& line) {
  line.clear();
  for (;;) {
    char c = 0;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) {
      if (g_interrupted.exchange(false)) return Input::kInterrupted;
      continue;
    }
    if (n <= 0) return line.empty() ? Input::kEnd : Input::kLine;
    if (c == '\n') return Input::kLine;
    line += c;
  }
}

void say(const std::string& text) {
  std::fflush(stdout);
  fmt::print(stderr, "{}\n", text);
}

const char* const kHelp =
    "/clear         forget the conversation (the system message stays)\n"
    "/system TEXT   set the system message (/system alone removes it)\n"
    "/save FILE     write the conversation as JSON ({\"messages\": [...]})\n"
    "/help          this list\n"
    "/exit          leave (or Ctrl-D); Ctrl-C stops an answer";

}  // namespace

int run_chat(const ChatSettings& s) {
  refuse_process_group("chat");
  GuardChoice guard;
  guard.action = parse_guard_action(s.guard);
  LoadedModel m = load_model(s.model, s.threads, /*want_tokenizer=*/true, false, false, s.device);
  const tokenizer::Tokenizer& tok = m.require_tokenizer();
  if (!m.chat_templates.has_template()) {
    fail(ErrorCode::kUnsupported,
         "{}: the model has no chat template, so it cannot chat (loom run -m MODEL -p TEXT "
         "continues a text)",
         s.model);
  }
  const int64_t ctx = s.ctx > 0 ? s.ctx : m.model->info().context_length;
  Generator gen(*m.model, &tok, ctx);

  GenerationOptions opt;
  opt.max_tokens = s.n_predict;
  s.sampling.apply(opt.sampling);
  opt.eos_ids = m.eos_ids();
  opt.cancel = &g_interrupted;
  DryBreakerCache breakers(&tok);
  apply_guard(guard, breakers, opt.guard, opt.sampling);

  std::string system = s.system;
  nlohmann::ordered_json turns = nlohmann::ordered_json::array();  // user/assistant messages
  auto conversation = [&] {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    for (const auto& t : turns) messages.push_back(t);
    return messages;
  };

  SigintGuard sigint;
  say(
      fmt::format("loom chat: {} ({} tokens of context). /help lists the commands; Ctrl-D "
                  "leaves.",
                  m.spec.name, ctx));
  std::string line;
  for (;;) {
    fmt::print("> ");
    std::fflush(stdout);
    const Input in = read_line(line);
    if (in == Input::kEnd) {
      fmt::print("\n");
      return 0;
    }
    if (in == Input::kInterrupted) {
      fmt::print("\n");
      say("(/exit or Ctrl-D leaves)");
      continue;
    }
    if (line.empty()) continue;
    if (line[0] == '/') {
      const size_t sp = line.find(' ');
      const std::string cmd = line.substr(0, sp);
      const std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
      if (cmd == "/exit" || cmd == "/quit") return 0;
      if (cmd == "/help") {
        say(kHelp);
      } else if (cmd == "/clear") {
        turns = nlohmann::ordered_json::array();
        say("(conversation cleared)");
      } else if (cmd == "/system") {
        system = arg;
        say(arg.empty() ? "(system message removed)" : "(system message set)");
      } else if (cmd == "/save") {
        if (arg.empty()) {
          say("/save needs a file name");
          continue;
        }
        std::ofstream out(arg);
        out << nlohmann::ordered_json{{"messages", conversation()}}.dump(2) << "\n";
        say(out ? fmt::format("(saved {} messages to {})", conversation().size(), arg)
                : fmt::format("cannot write {}", arg));
      } else {
        say(fmt::format("{}: not a command; /help lists them", cmd));
      }
      continue;
    }

    turns.push_back({{"role", "user"}, {"content", line}});
    std::vector<int32_t> prompt;
    bool trimmed = false;
    try {
      for (;;) {
        prompt = tok.encode(render_chat(m, conversation(), true), /*add_special_tokens=*/false);
        // Room for at least a short answer; otherwise drop the oldest exchange.
        if (static_cast<int64_t>(prompt.size()) + 16 <= ctx || turns.size() <= 1) break;
        turns.erase(turns.begin(), turns.begin() + std::min<size_t>(2, turns.size() - 1));
        trimmed = true;
      }
    } catch (const Error& e) {
      turns.erase(turns.end() - 1);
      say(fmt::format("the chat template failed: {}", e.what()));
      continue;
    }
    if (trimmed) say("(the oldest turns no longer fit the context and were dropped)");
    if (static_cast<int64_t>(prompt.size()) + 16 > ctx) {
      turns.erase(turns.end() - 1);
      say(fmt::format("that message is {} tokens; the context holds {}", prompt.size(), ctx));
      continue;
    }
    opt.reuse_cache = true;  // each turn's prompt starts with the last turn's: compute the rest
    opt.max_tokens = std::min<int64_t>(s.n_predict, ctx - static_cast<int64_t>(prompt.size()));
    g_interrupted.store(false);
    const GenerationResult r = gen.generate(prompt, opt, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    fmt::print("\n");
    if (r.finish_reason == "cancelled") {
      g_interrupted.store(false);
      say("(stopped)");
    } else if (r.finish_reason == "repetition") {
      say("(stopped: the answer started repeating itself)");
    } else if (r.finish_reason == "length") {
      say("(the answer reached its length limit)");
    }
    turns.push_back({{"role", "assistant"}, {"content", r.text}});
  }
}

Command add_chat(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "chat",
      "Chat with a model interactively through its chat template (also: loom run -m "
      "MODEL with no prompt on a terminal)");
  auto s = std::make_shared<ChatSettings>();
  cmd->add_option("-m,--model", s->model,
                  "a .gguf file, a Hugging Face model folder or a Hub name (org/name[:quant])")
      ->required();
  cmd->add_option("--system", s->system, "a system message to start with");
  cmd->add_option("-n,--n-predict", s->n_predict, "most tokens per answer (default 512)");
  add_sampling_options(*cmd, s->sampling);
  cmd->add_option("-c,--ctx", s->ctx, "context size in tokens (default: the model's)");
  cmd->add_option("-t,--threads", s->threads, "threads (default: all cores)");
  cmd->add_option("--guard", s->guard, "degeneration guard: stop (default), penalize or off");
  add_device_option(*cmd, s->device);
  return {cmd, [s] { return run_chat(*s); }};
}

}  // namespace loom::cli
