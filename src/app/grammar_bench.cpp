#include "app/grammar_bench.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

#include "core/error.h"
#include "grammar/json_schema.h"

namespace loom::app {

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Python's float repr: the shortest digits that round-trip; fixed notation when the decimal
// exponent is in [-4, 16), else d.ddde+XX with at least two exponent digits.
std::string python_float(double d) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, end);  // "-1.2345e+06"
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, 1) + (e > 2 ? sci.substr(2, e - 2) : "");
  const int exp10 = std::stoi(sci.substr(e + 1));
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) {
      out = "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    } else if (static_cast<size_t>(exp10) + 1 >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(exp10) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(exp10) + 1) + "." +
            digits.substr(static_cast<size_t>(exp10) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
  }
  return neg ? "-" + out : out;
}

void dump_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void dump(const nlohmann::ordered_json& v, std::string& out) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::null:
      out += "null";
      return;
    case nlohmann::ordered_json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case nlohmann::ordered_json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return;
    case nlohmann::ordered_json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return;
    case nlohmann::ordered_json::value_t::number_float:
      out += python_float(v.get<double>());
      return;
    case nlohmann::ordered_json::value_t::string:
      dump_string(v.get_ref<const std::string&>(), out);
      return;
    case nlohmann::ordered_json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& x : v) {
        if (!first) out += ", ";
        first = false;
        dump(x, out);
      }
      out += ']';
      return;
    }
    case nlohmann::ordered_json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        dump_string(it.key(), out);
        out += ": ";
        dump(it.value(), out);
      }
      out += '}';
      return;
    }
    default:
      out += "null";
  }
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& v) {
  std::string out;
  dump(v, out);
  return out;
}

MaskBenchCase run_maskbench_case(const nlohmann::ordered_json& line,
                                 const tokenizer::Tokenizer& tokenizer,
                                 const std::shared_ptr<const grammar::TokenVocab>& vocab,
                                 const MaskBenchOptions& options) {
  MaskBenchCase c;
  c.id = line.value("id", std::string());
  const auto t0 = Clock::now();
  std::shared_ptr<grammar::CompiledGrammar> compiled;
  grammar::IdSet mask;
  try {
    grammar::JsonSchemaOptions o;
    o.deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(options.compile_limit_s));
    compiled = std::make_shared<grammar::CompiledGrammar>(
        grammar::compile_json_schema(line.at("schema"), o));
    grammar::Matcher first(compiled, vocab);
    first.fill_mask(mask);
  } catch (const Error& e) {
    c.ttfm_us = us_since(t0);
    const bool timeout = std::string_view(e.what()).find("time limit") != std::string_view::npos;
    c.verdict = timeout || c.ttfm_us > options.compile_limit_s * 1e6
                    ? MaskBenchCase::Verdict::kTimeout
                    : MaskBenchCase::Verdict::kCompileError;
    c.detail = e.what();
    return c;
  }
  c.ttfm_us = us_since(t0);
  if (c.ttfm_us > options.compile_limit_s * 1e6) {
    c.verdict = MaskBenchCase::Verdict::kTimeout;
    return c;
  }
  try {
    const auto& tests = line.at("tests");
    for (size_t t = 0; t < tests.size(); ++t) {
      const bool valid = tests[t].at("valid").get<bool>();
      const std::string text = python_json_dumps(tests[t].at("data"));
      const std::vector<int32_t> ids = tokenizer.encode(text, /*add_special_tokens=*/false);
      grammar::Matcher m(compiled, vocab);
      bool accepted = true;
      size_t at = 0;
      for (; at < ids.size(); ++at) {
        const auto tm = Clock::now();
        m.fill_mask(mask);
        c.tbm_us.push_back(us_since(tm));
        ++c.tokens;
        if (!mask.test(static_cast<size_t>(ids[at])) || !m.consume_token(ids[at])) {
          accepted = false;
          break;
        }
      }
      if (accepted) accepted = m.can_stop();
      if (accepted != valid) {
        c.verdict = valid ? MaskBenchCase::Verdict::kValidationError
                          : MaskBenchCase::Verdict::kInvalidationError;
        c.detail =
            fmt::format("test {} ({}) {} at token {} of {}: {}", t, valid ? "valid" : "invalid",
                        accepted ? "accepted" : "rejected", at, ids.size(), text.substr(0, 200));
        return c;
      }
    }
  } catch (const Error& e) {
    // A limit met while masking (the lexer's DFA size) fails the schema as one met while
    // compiling does, and the run goes on.
    c.verdict = MaskBenchCase::Verdict::kCompileError;
    c.detail = fmt::format("while masking: {}", e.what());
  }
  return c;
}

}  // namespace loom::app
