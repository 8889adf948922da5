#include "app/tool_calls.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "grammar/gbnf.h"
#include "tokenizer/tokenizer.h"

namespace loom::app {

using Json = nlohmann::ordered_json;

namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kMistralOpen = "[TOOL_CALLS]";
constexpr std::string_view kDsCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDsCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDsCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDsCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDsSep = "<｜tool▁sep｜>";

std::string json_quoted(const std::string& s) {
  return Json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const Json& function_of(const Json& tool) {
  return tool.at("function");
}

// ---- grammar ------------------------------------------------------------------------------

class Builder {
 public:
  Builder(const tokenizer::Tokenizer* tok, const grammar::JsonSchemaOptions& o)
      : tok_(tok), o_(o), g_(std::make_shared<grammar::Grammar>()) {
    ws_ = g_->add_rule("ws?");
    g_->add_production(ws_, {});
    g_->add_production(ws_, {lex(o.whitespace ? o.whitespace : grammar::pretty_whitespace())});
  }
  int32_t lex(const grammar::Regex& r) { return grammar::Grammar::lexeme(g_->add_lexeme(r)); }
  int32_t lit(std::string_view text) { return lex(grammar::re_literal(text)); }
  // A marker: the special token when it is one, else its text.
  grammar::Regex marker(std::string_view text) const { return grammar::token_or_text(tok_, text); }
  int32_t ws() const { return ws_; }
  grammar::Grammar& g() { return *g_; }
  std::shared_ptr<grammar::Grammar> grammar() { return g_; }

  int32_t arguments(const Json& tool, size_t index) {
    const Json& f = function_of(tool);
    Json schema = f.contains("parameters") && !f["parameters"].is_null() ? f["parameters"]
                                                                         : Json{{"type", "object"}};
    try {
      return grammar::add_json_schema(g_, schema, o_);
    } catch (const Error& e) {
      fail(e.code(), "'tools[{}].function.parameters' ({}): {}", index,
           f["name"].get<std::string>(), e.what());
    }
  }
  // {"name": "N", "<key>": ARGS} with JSON whitespace.
  int32_t call_object(const std::string& name, std::string_view key, int32_t args) {
    const int32_t r = g_->add_rule("call " + name);
    g_->add_production(
        r,
        {lit("{"), ws_, lit("\"name\""), ws_, lit(":"), ws_, lit(json_quoted(name)), ws_, lit(","),
         ws_, lit(fmt::format("\"{}\"", key)), ws_, lit(":"), ws_, args, ws_, lit("}")});
    return r;
  }
  // one ::= a | b | ...; many ::= one | many SEP one (SEP may be empty).
  int32_t repeated(int32_t one, const std::vector<int32_t>& sep, bool parallel) {
    if (!parallel) return one;
    const int32_t many = g_->add_rule("calls");
    g_->add_production(many, {one});
    std::vector<int32_t> rhs = {many};
    rhs.insert(rhs.end(), sep.begin(), sep.end());
    rhs.push_back(one);
    g_->add_production(many, rhs);
    return many;
  }

 private:
  const tokenizer::Tokenizer* tok_;
  grammar::JsonSchemaOptions o_;
  std::shared_ptr<grammar::Grammar> g_;
  int32_t ws_ = -1;
};

// ---- parsing ------------------------------------------------------------------------------

enum class St { kOk, kPartial, kBad };

struct Cursor {
  std::string_view s;
  size_t p = 0;
  bool eof() const { return p >= s.size(); }
  void ws() {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) ++p;
  }
  St lit(std::string_view t) {
    const size_t n = std::min(t.size(), s.size() - p);
    if (s.compare(p, n, t, 0, n) != 0) return St::kBad;
    if (n < t.size()) return St::kPartial;
    p += t.size();
    return St::kOk;
  }
};

// The end of the JSON value at c.p (not validated beyond nesting and strings), or kPartial.
St skip_value(Cursor& c) {
  if (c.eof()) return St::kPartial;
  const char first = c.s[c.p];
  if (first == '{' || first == '[' || first == '"') {
    int depth = 0;
    bool in_string = false;
    for (size_t i = c.p; i < c.s.size(); ++i) {
      const char ch = c.s[i];
      if (in_string) {
        if (ch == '\\') {
          ++i;
        } else if (ch == '"') {
          in_string = false;
          if (depth == 0) {
            c.p = i + 1;
            return St::kOk;
          }
        }
        continue;
      }
      if (ch == '"') {
        in_string = true;
      } else if (ch == '{' || ch == '[') {
        ++depth;
      } else if (ch == '}' || ch == ']') {
        if (--depth == 0) {
          c.p = i + 1;
          return St::kOk;
        }
        if (depth < 0) return St::kBad;
      }
    }
    return St::kPartial;
  }
  // number, true, false, null: up to a delimiter (at the end of the text it may go on).
  size_t i = c.p;
  while (i < c.s.size() && std::string_view(",}] \t\r\n").find(c.s[i]) == std::string_view::npos) {
    ++i;
  }
  if (i == c.s.size()) return St::kPartial;
  if (i == c.p) return St::kBad;
  c.p = i;
  return St::kOk;
}

St string_value(Cursor& c, std::string& out) {
  const size_t start = c.p;
  if (c.eof()) return St::kPartial;
  if (c.s[c.p] != '"') return St::kBad;
  const St st = skip_value(c);
  if (st != St::kOk) return st;
  try {
    out = Json::parse(c.s.substr(start, c.p - start)).get<std::string>();
  } catch (const std::exception&) {
    return St::kBad;
  }
  return St::kOk;
}

// The arguments' JSON text at c.p into `args` (all the rest of the text while partial).
St arguments_value(Cursor& c, std::string& args) {
  const size_t v = c.p;
  const St st = skip_value(c);
  if (st == St::kPartial) args = std::string(c.s.substr(v));
  if (st == St::kOk) args = std::string(c.s.substr(v, c.p - v));
  return st;
}

// {"name": ..., "arguments" | "parameters": ...} in any member order.
St call_object(Cursor& c, ParsedToolCall& call) {
  St st = c.lit("{");
  if (st != St::kOk) return st;
  bool have_args = false;
  while (true) {
    c.ws();
    if (c.eof()) return St::kPartial;
    if (c.s[c.p] == '}') {
      ++c.p;
      if (call.name.empty()) return St::kBad;
      if (!have_args) call.arguments = "{}";
      call.complete = true;
      return St::kOk;
    }
    std::string key;
    if ((st = string_value(c, key)) != St::kOk) return st;
    c.ws();
    if ((st = c.lit(":")) != St::kOk) return st;
    c.ws();
    if (key == "arguments" || key == "parameters") {
      have_args = true;
      if ((st = arguments_value(c, call.arguments)) != St::kOk) return st;
      if (!call.arguments.empty() && call.arguments[0] == '"') {  // arguments as a JSON string
        try {
          call.arguments = Json::parse(call.arguments).get<std::string>();
        } catch (const std::exception&) {
          return St::kBad;
        }
      }
    } else if (key == "name") {
      if ((st = string_value(c, call.name)) != St::kOk) return st;
    } else if ((st = skip_value(c)) != St::kOk) {
      return st;
    }
    c.ws();
    if (c.eof()) return St::kPartial;
    if (c.s[c.p] == ',') {
      ++c.p;
    } else if (c.s[c.p] != '}') {
      return St::kBad;
    }
  }
}

// Parses calls from c on; false when the text is not well-formed calls.
St parse_calls(ToolFormat f, Cursor& c, std::vector<ParsedToolCall>& calls) {
  St st = St::kOk;
  auto object = [&]() {
    calls.emplace_back();
    return call_object(c, calls.back());
  };
  switch (f) {
    case ToolFormat::kHermes:
      while (true) {
        c.ws();
        if (c.eof()) return St::kOk;
        if ((st = c.lit(kHermesOpen)) != St::kOk) return st;
        c.ws();
        if ((st = object()) != St::kOk) return st;
        c.ws();
        if ((st = c.lit(kHermesClose)) != St::kOk) return st;
      }
    case ToolFormat::kLlama3Json:
      while (true) {
        c.ws();
        if (c.eof()) return St::kOk;
        if (!calls.empty() && c.s[c.p] == ';') {
          ++c.p;
          c.ws();
          if (c.eof()) return St::kPartial;
        }
        if ((st = object()) != St::kOk) return st;
      }
    case ToolFormat::kMistral:
      if ((st = c.lit(kMistralOpen)) != St::kOk) return st;
      c.ws();
      if ((st = c.lit("[")) != St::kOk) return st;
      while (true) {
        c.ws();
        if ((st = object()) != St::kOk) return st;
        c.ws();
        if (c.eof()) return St::kPartial;
        if (c.s[c.p] == ']') {
          ++c.p;
          c.ws();
          return c.eof() ? St::kOk : St::kBad;
        }
        if ((st = c.lit(",")) != St::kOk) return st;
      }
    case ToolFormat::kDeepSeekV3:
      if ((st = c.lit(kDsCallsBegin)) != St::kOk) return st;
      while (true) {
        c.ws();
        if (c.eof()) return St::kPartial;
        if (c.lit(kDsCallsEnd) == St::kOk) {
          c.ws();
          return c.eof() ? St::kOk : St::kBad;
        }
        if ((st = c.lit(kDsCallBegin)) != St::kOk) return st;
        const size_t sep = c.s.find(kDsSep, c.p);
        if (sep == std::string_view::npos) return St::kPartial;
        c.p = sep + kDsSep.size();
        const size_t nl = c.s.find('\n', c.p);
        if (nl == std::string_view::npos) return St::kPartial;
        calls.emplace_back();
        ParsedToolCall& call = calls.back();
        call.name = std::string(c.s.substr(c.p, nl - c.p));
        c.p = nl;
        c.ws();
        if ((st = c.lit("```json")) != St::kOk) return st;
        c.ws();
        if ((st = arguments_value(c, call.arguments)) != St::kOk) return st;
        c.ws();
        if ((st = c.lit("```")) != St::kOk) return st;
        c.ws();
        if ((st = c.lit(kDsCallEnd)) != St::kOk) return st;
        call.complete = true;
      }
  }
  return St::kBad;
}

// Where the calls start in `text`, or npos; `hold` receives how many bytes at the end of the
// content might still become the start of a call.
size_t section_start(ToolFormat f, std::string_view text, size_t& hold) {
  hold = 0;
  auto find_marker = [&](std::string_view m) {
    const size_t at = text.find(m);
    if (at != std::string_view::npos) return at;
    for (size_t k = std::min(m.size() - 1, text.size()); k > 0; --k) {
      if (text.substr(text.size() - k) == m.substr(0, k)) {
        hold = k;
        break;
      }
    }
    return std::string_view::npos;
  };
  switch (f) {
    case ToolFormat::kHermes:
      return find_marker(kHermesOpen);
    case ToolFormat::kMistral:
      return find_marker(kMistralOpen);
    case ToolFormat::kDeepSeekV3:
      return find_marker(kDsCallsBegin);
    case ToolFormat::kLlama3Json: {
      const size_t lead = text.find_first_not_of(" \t\r\n");
      if (lead == std::string_view::npos) {
        hold = text.size();
        return std::string_view::npos;
      }
      return text[lead] == '{' ? lead : std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

}  // namespace

std::string_view tool_format_name(ToolFormat f) {
  switch (f) {
    case ToolFormat::kHermes:
      return "hermes";
    case ToolFormat::kLlama3Json:
      return "llama3_json";
    case ToolFormat::kMistral:
      return "mistral";
    case ToolFormat::kDeepSeekV3:
      return "deepseek_v3";
  }
  return "?";
}

ToolFormat detect_tool_format(std::string_view src) {
  if (src.find("[TOOL_CALLS]") != std::string_view::npos) return ToolFormat::kMistral;
  if (src.find("tool▁calls▁begin") != std::string_view::npos) return ToolFormat::kDeepSeekV3;
  if (src.find("<tool_call>") != std::string_view::npos) return ToolFormat::kHermes;
  if (src.find("<|python_tag|>") != std::string_view::npos ||
      (src.find("\"parameters\"") != std::string_view::npos &&
       src.find("tools") != std::string_view::npos)) {
    return ToolFormat::kLlama3Json;
  }
  return ToolFormat::kHermes;
}

void null_content_for_template(Json& messages, std::string_view src) {
  const bool tests_none = src.find("content'] is none") != std::string_view::npos ||
                          src.find("content\"] is none") != std::string_view::npos ||
                          src.find("content is none") != std::string_view::npos;
  if (tests_none) return;
  for (Json& m : messages) {
    if (m.is_object() && m.contains("content") && m["content"].is_null()) m["content"] = "";
  }
}

std::string render_chat(const ModelChatTemplates& templates, jinja::ChatRequest request) {
  null_content_for_template(request.messages, templates.source(!request.tools.is_null()));
  bool has_calls = false;
  for (const Json& m : request.messages) {
    has_calls =
        has_calls || (m.is_object() && m.contains("tool_calls") && m["tool_calls"].is_array());
  }
  try {
    return templates.apply(request);
  } catch (const Error& first) {
    if (!has_calls) throw;
    for (Json& m : request.messages) {
      if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
      for (Json& call : m["tool_calls"]) {
        if (!call.is_object() || !call.contains("function")) continue;
        Json& args = call["function"]["arguments"];
        if (!args.is_string() && !args.is_null()) {
          args = args.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
      }
    }
    try {
      return templates.apply(request);
    } catch (const Error&) {
      throw first;
    }
  }
}

bool template_renders_tools(std::string_view src) {
  return src.find("tools") != std::string_view::npos;
}

std::string describe_tools(const Json& tools) {
  std::string s =
      "You may call one or more functions to help with the user's request. To call a function, "
      "reply with one block per call:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<arguments as a JSON object>}\n</tool_call>\n\nThe functions:\n";
  for (const Json& t : tools) {
    s += t.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    s += '\n';
  }
  return s;
}

ToolGrammar tool_call_grammar(ToolFormat format, const Json& tools, const ToolChoice& choice,
                              bool parallel, const tokenizer::Tokenizer* tok,
                              const grammar::JsonSchemaOptions& options) {
  LOOM_ASSERT(choice.mode != ToolChoice::Mode::kNone);
  Builder b(tok, options);
  std::vector<std::pair<std::string, int32_t>> fns;  // name, arguments rule
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string name = function_of(tools[i]).at("name").get<std::string>();
    if (choice.mode == ToolChoice::Mode::kFunction && name != choice.function) continue;
    fns.emplace_back(name, b.arguments(tools[i], i));
  }
  if (fns.empty()) {
    fail(ErrorCode::kInvalidArgument, "'tool_choice': no tool named '{}' in tools",
         choice.function);
  }
  auto& g = b.g();
  const int32_t ws = b.ws();
  const int32_t one = g.add_rule("call");
  int32_t root = -1;
  ToolGrammar out;
  switch (format) {
    case ToolFormat::kHermes: {
      const int32_t open = b.lex(b.marker(kHermesOpen));
      const int32_t close = b.lex(b.marker(kHermesClose));
      for (const auto& [name, args] : fns) {
        g.add_production(one, {open, ws, b.call_object(name, "arguments", args), ws, close});
      }
      root = b.repeated(one, {ws}, parallel);
      out.triggers.push_back({grammar::special_token_bytes_or_text(tok, kHermesOpen), false});
      break;
    }
    case ToolFormat::kLlama3Json: {
      for (const auto& [name, args] : fns) {
        g.add_production(one, {b.call_object(name, "parameters", args)});
      }
      const int32_t semi = g.add_rule("sep");
      g.add_production(semi, {ws});
      g.add_production(semi, {ws, b.lit(";"), ws});
      root = b.repeated(one, {semi}, parallel);
      out.triggers.push_back({"{", true});
      break;
    }
    case ToolFormat::kMistral: {
      for (const auto& [name, args] : fns) {
        g.add_production(one, {b.call_object(name, "arguments", args)});
      }
      const int32_t list = b.repeated(one, {ws, b.lit(","), ws}, parallel);
      root = g.add_rule("calls");
      g.add_production(root,
                       {b.lex(b.marker(kMistralOpen)), ws, b.lit("["), ws, list, ws, b.lit("]")});
      out.triggers.push_back({grammar::special_token_bytes_or_text(tok, kMistralOpen), false});
      break;
    }
    case ToolFormat::kDeepSeekV3: {
      for (const auto& [name, args] : fns) {
        const int32_t head = b.lex(
            grammar::re_concat({b.marker(kDsCallBegin), grammar::re_literal("function"),
                                b.marker(kDsSep), grammar::re_literal(name + "\n```json\n")}));
        const int32_t tail =
            b.lex(grammar::re_concat({grammar::re_literal("\n```"), b.marker(kDsCallEnd)}));
        g.add_production(one, {head, args, tail});
      }
      const int32_t list = b.repeated(one, {}, parallel);
      root = g.add_rule("calls");
      g.add_production(root, {b.lex(b.marker(kDsCallsBegin)), list, b.lex(b.marker(kDsCallsEnd))});
      out.triggers.push_back({grammar::special_token_bytes_or_text(tok, kDsCallsBegin), false});
      break;
    }
  }
  if (choice.mode != ToolChoice::Mode::kAuto) out.triggers.clear();
  g.set_start(root);
  g.finalize();
  out.grammar = b.grammar();
  return out;
}

ToolOutput parse_tool_output(ToolFormat format, std::string_view text, bool final) {
  ToolOutput out;
  size_t hold = 0;
  const size_t start = section_start(format, text, hold);
  if (start == std::string_view::npos) {
    out.content = std::string(final ? text : text.substr(0, text.size() - hold));
    return out;
  }
  out.started = true;
  out.content = std::string(text.substr(0, start));
  Cursor c{text, start};
  const St st = parse_calls(format, c, out.calls);
  const bool ok = st == St::kOk || (st == St::kPartial && !final);
  if (!ok || (final && out.calls.empty())) {
    out.valid = false;
    if (final) {  // not calls after all: everything is content
      out.calls.clear();
      out.content = std::string(text);
    }
    return out;
  }
  // A partial call without a name yet is not shown.
  while (!out.calls.empty() && out.calls.back().name.empty()) out.calls.pop_back();
  if (final) {
    for (const auto& call : out.calls) {
      if (!call.complete) {
        out.valid = false;
        out.calls.clear();
        out.content = std::string(text);
        break;
      }
    }
  }
  // Models end a turn with whitespace before the calls.
  while (!out.content.empty() && (out.content.back() == '\n' || out.content.back() == ' ')) {
    out.content.pop_back();
  }
  return out;
}

}  // namespace loom::app
