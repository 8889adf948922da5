// loom grammar-bench -m MODEL [--json] [--limit N] FILE...
// MaskBench (app/grammar_bench.h) over MaskBench JSON files, .jsonl files of them, or .jsonl.xz.
// MODEL is any model or tokenizer folder (MaskBench uses the Llama 3 tokenizer). With --json
// the last line of stdout is one object: {"schemas", "passing", "compile_error",
// "validation_error", "invalidation_error", "timeout", "crash", "tokens", "ttfm_us": {"p50",
// "p75", "p99", "max"}, "tbm_us": {...}}. --slowest N lists the schemas behind the tails.
#include <fmt/format.h>
#include <lzma.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/grammar_bench.h"
#include "app/loaded_model.h"
#include "cli/commands.h"
#include "core/error.h"

namespace loom::cli {

namespace {

struct Args {
  std::string model;
  std::vector<std::string> files;
  bool json = false;
  int64_t limit = -1;
  bool verbose = false;
  int64_t slowest = 0;
};

// One schema's timings, for --slowest.
struct SchemaTimes {
  std::string id;
  double ttfm_us = 0, tbm_max_us = 0, tbm_total_us = 0;
};

// The `n` schemas with the largest `key`, largest first, as "slow_KIND<TAB>id<TAB>times".
void print_slowest(std::vector<SchemaTimes> all, size_t n, const char* kind,
                   double SchemaTimes::*key) {
  n = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                    [&](const SchemaTimes& a, const SchemaTimes& b) { return a.*key > b.*key; });
  for (size_t i = 0; i < n; ++i) {
    fmt::print("slow_{}\t{}\tttfm {:.0f} us, tbm max {:.0f} us, tbm total {:.0f} us\n", kind,
               all[i].id, all[i].ttfm_us, all[i].tbm_max_us, all[i].tbm_total_us);
  }
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(ErrorCode::kNotFound, "{}: cannot open", path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string xz_decompress(const std::string& in, const std::string& path) {
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
    fail(ErrorCode::kInternal, "{}: cannot start the xz decoder", path);
  }
  std::string out;
  std::vector<uint8_t> buf(1 << 20);
  s.next_in = reinterpret_cast<const uint8_t*>(in.data());
  s.avail_in = in.size();
  for (;;) {
    s.next_out = buf.data();
    s.avail_out = buf.size();
    const lzma_ret r = lzma_code(&s, LZMA_FINISH);
    out.append(reinterpret_cast<const char*>(buf.data()), buf.size() - s.avail_out);
    if (r == LZMA_STREAM_END) break;
    if (r != LZMA_OK) {
      lzma_end(&s);
      fail(ErrorCode::kCorruption, "{}: not valid xz data (error {})", path, static_cast<int>(r));
    }
  }
  lzma_end(&s);
  return out;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

int run(const Args& a) {
  app::TokenizerModel tm = app::load_tokenizer_model(a.model);
  const tokenizer::Tokenizer& tok = tm.require_tokenizer();
  std::vector<int32_t> eos;
  if (tok.special_ids().eos) eos.push_back(*tok.special_ids().eos);
  const auto vocab = grammar::TokenVocab::from_tokenizer(tok, eos);
  int64_t counts[5] = {}, tokens = 0, schemas = 0;
  std::vector<double> ttfm, tbm;
  std::vector<SchemaTimes> times;
  auto run_one = [&](const nlohmann::ordered_json& line) {
    if (a.limit >= 0 && schemas >= a.limit) return;
    ++schemas;
    const app::MaskBenchCase c = app::run_maskbench_case(line, tok, vocab);
    ++counts[static_cast<int>(c.verdict)];
    tokens += c.tokens;
    ttfm.push_back(c.ttfm_us);
    tbm.insert(tbm.end(), c.tbm_us.begin(), c.tbm_us.end());
    if (a.slowest > 0) {
      SchemaTimes t{c.id, c.ttfm_us, 0, 0};
      for (double us : c.tbm_us) {
        t.tbm_max_us = std::max(t.tbm_max_us, us);
        t.tbm_total_us += us;
      }
      times.push_back(std::move(t));
    }
    if (a.verbose && c.verdict != app::MaskBenchCase::Verdict::kPassing) {
      static const char* kNames[] = {"passing", "compile_error", "validation_error",
                                     "invalidation_error", "timeout"};
      fmt::print("{}\t{}\t{}\n", kNames[static_cast<int>(c.verdict)], c.id, c.detail);
    }
  };
  for (const std::string& f : a.files) {
    std::string text = read_file_bytes(f);
    if (f.size() > 3 && f.compare(f.size() - 3, 3, ".xz") == 0) text = xz_decompress(text, f);
    const bool lines = f.find(".jsonl") != std::string::npos;
    auto parse = [&](std::string_view s, size_t line_no) {
      try {
        return nlohmann::ordered_json::parse(s);
      } catch (const nlohmann::json::exception& e) {
        fail(ErrorCode::kCorruption, "{}:{}: not valid JSON: {}", f, line_no, e.what());
      }
    };
    if (!lines) {
      run_one(parse(text, 1));
      continue;
    }
    size_t pos = 0, line_no = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      ++line_no;
      std::string_view line(text.data() + pos, end - pos);
      if (!line.empty()) run_one(parse(line, line_no));
      pos = end + 1;
    }
  }
  nlohmann::ordered_json summary = {
      {"schemas", schemas},
      {"passing", counts[0]},
      {"compile_error", counts[1]},
      {"validation_error", counts[2]},
      {"invalidation_error", counts[3]},
      {"timeout", counts[4]},
      {"crash", 0},
      {"tokens", tokens},
      {"ttfm_us",
       {{"p50", percentile(ttfm, 50)},
        {"p75", percentile(ttfm, 75)},
        {"p99", percentile(ttfm, 99)},
        {"max", ttfm.empty() ? 0.0 : *std::max_element(ttfm.begin(), ttfm.end())}}},
      {"tbm_us",
       {{"p50", percentile(tbm, 50)},
        {"p75", percentile(tbm, 75)},
        {"p99", percentile(tbm, 99)},
        {"max", tbm.empty() ? 0.0 : *std::max_element(tbm.begin(), tbm.end())}}}};
  if (!a.json) {
    fmt::print(
        "{} schemas: {} passing ({:.1f}%), {} compile errors, {} validation errors, {} "
        "invalidation "
        "errors, {} timeouts; {} tokens; TTFM p50 {:.0f} us p99 {:.0f} us; TBM p50 {:.1f} us p99 "
        "{:.1f} us max {:.0f} us\n",
        schemas, counts[0],
        schemas ? 100.0 * static_cast<double>(counts[0]) / static_cast<double>(schemas) : 0.0,
        counts[1], counts[2], counts[3], counts[4], tokens, summary["ttfm_us"]["p50"].get<double>(),
        summary["ttfm_us"]["p99"].get<double>(), summary["tbm_us"]["p50"].get<double>(),
        summary["tbm_us"]["p99"].get<double>(), summary["tbm_us"]["max"].get<double>());
  }
  if (a.slowest > 0) {
    const auto n = static_cast<size_t>(a.slowest);
    print_slowest(times, n, "ttfm", &SchemaTimes::ttfm_us);
    print_slowest(times, n, "tbm_max", &SchemaTimes::tbm_max_us);
    print_slowest(times, n, "tbm_total", &SchemaTimes::tbm_total_us);
  }
  if (a.json) fmt::print("{}\n", summary.dump());
  return 0;
}

}  // namespace

Command add_grammar_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "grammar-bench", "MaskBench: JSON-schema constrained decoding, verdicts and mask timings");
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "a model or tokenizer folder (or .gguf)")->required();
  cmd->add_option("files", a->files, "MaskBench .json / .jsonl / .jsonl.xz files")->required();
  cmd->add_flag("--json", a->json, "print the summary as one JSON object (last line)");
  cmd->add_option("--limit", a->limit, "stop after N schemas");
  cmd->add_flag("-v,--verbose", a->verbose, "print each schema that does not pass, and why");
  cmd->add_option("--slowest", a->slowest,
                  "print the N schemas with the largest TTFM, largest mask time and largest "
                  "total mask time");
  return {cmd, [a] { return run(*a); }};
}

}  // namespace loom::cli
