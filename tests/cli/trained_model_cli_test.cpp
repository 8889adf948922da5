// The trained model in models/ (tools/train/train_kjv.py) through the real binary: the checks
// that random weights made meaningless. Its distribution is real English, so quantization has a
// KL divergence worth ordering, n-gram drafts are accepted because text repeats as text does,
// sampled text runs on without tripping the degeneration guard, and a JSON-schema-constrained
// generation ends on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_util.h"

namespace {

namespace fs = std::filesystem;
using loom::test::CliResult;
using loom::test::last_json_line;
using loom::test::run_loom;

const std::string kModel = std::string(LOOM_SOURCE_DIR) + "/models/kjv-llama-6m";
const std::string kHeldOut = kModel + "/heldout.txt";

// Bounds with a margin over what was measured on 2026-12-06 (bench/README.md, "Issue 22"):
// held-out perplexity 19.67 (ctx 128, 12 chunks); KL from bf16: q8_0 0.00036, q4_k 0.0213,
// q4_0 0.0327 (perplexity 20.16, 1.025x); drafts accepted below. A model
// with random weights has a perplexity near its vocabulary (4096).
constexpr double kMaxHeldOutPerplexity = 30;
constexpr double kMaxKlQ8 = 0.002;
constexpr double kMaxKlQ4 = 0.1;
constexpr double kMaxQ4PerplexityRatio = 1.1;
constexpr double kMinNgramAcceptance = 0.55;
constexpr double kMinDraftModelAcceptance = 0.35;

nlohmann::json run_json(const std::string& args) {
  const CliResult r = run_loom(args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code == 0 ? last_json_line(r.out) : nlohmann::json::object();
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (const char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  return out;
}

// The README's first command prints English: nearly every word it writes is a word of the
// held-out chapters (which the model never saw).
TEST(TrainedModel, ReadmeCommandPrintsEnglish) {
  const nlohmann::json r = run_json("run -m " + kModel + " -p 'In the beginning' -n 64 --temp 0");
  const std::string text = r.value("text", "");
  const std::vector<std::string> got = words(text);
  const std::vector<std::string> known_list = words(loom::test::slurp(kHeldOut));
  const std::set<std::string> known(known_list.begin(), known_list.end());
  ASSERT_GE(got.size(), 10u) << text;
  const auto english =
      std::count_if(got.begin(), got.end(), [&](const std::string& w) { return known.count(w); });
  EXPECT_GE(static_cast<double>(english), 0.9 * static_cast<double>(got.size())) << text;
}

// Perplexity of the held-out text, and the KL divergence of each quantization from the bf16
// original: Q8_0 is nearly lossless, Q4_K (with its per-block scales and mins) is closer than
// Q4_0, and every format stays a usable model.
TEST(TrainedModel, QuantizationKlDivergenceOrder) {
  const fs::path dir = loom::test::cli_temp_dir("trained-model");
  const std::string args = " -f " + kHeldOut + " --ctx 128 --chunks 12 --kl-base " + kModel;
  const nlohmann::json base = run_json("perplexity -m " + kModel + args);
  const double ppl = base.value("ppl", 0.0);
  EXPECT_GT(ppl, 1.0);
  EXPECT_LT(ppl, kMaxHeldOutPerplexity);
  std::map<std::string, nlohmann::json> q;
  for (const char* type : {"f16", "q8_0", "q4_k", "q4_0"}) {
    const std::string file = (dir / (std::string(type) + ".gguf")).string();
    ASSERT_EQ(run_loom("convert " + kModel + " -o " + file + " --type " + type).exit_code, 0);
    q[type] = run_json("perplexity -m " + file + args);
    std::printf("%s: ppl %.3f (bf16 %.3f), KL %.5f, top-1 agreement %.4f\n", type,
                q[type].value("ppl", 0.0), ppl, q[type].value("kld_mean", 0.0),
                q[type].value("top1_agree", 0.0));
  }
  EXPECT_LT(q["f16"]["kld_mean"].get<double>(), 1e-5);
  EXPECT_LT(q["q8_0"]["kld_mean"].get<double>(), kMaxKlQ8);
  EXPECT_GT(q["q8_0"]["top1_agree"].get<double>(), 0.97);
  EXPECT_LT(q["q8_0"]["kld_mean"].get<double>(), q["q4_k"]["kld_mean"].get<double>());
  EXPECT_LT(q["q4_k"]["kld_mean"].get<double>(), q["q4_0"]["kld_mean"].get<double>());
  EXPECT_LT(q["q4_0"]["kld_mean"].get<double>(), kMaxKlQ4);
  EXPECT_LT(q["q4_0"]["ppl"].get<double>(), kMaxQ4PerplexityRatio * ppl);
  fs::remove_all(dir);
}

// Numbers 7:18-24, one prince's offering and the next day's opening line: the model goes on
// with the next offering, which repeats the prompt's wording, as structured text does.
const char* const kOffering =
    "On the second day Nethaneel the son of Zuar, prince of Issachar, did offer:\n"
    "He offered for his offering one silver charger, the weight whereof was an hundred and "
    "thirty shekels, one silver bowl of seventy shekels, after the shekel of the sanctuary; both "
    "of them full of fine flour mingled with oil for a meat offering:\n"
    "One spoon of gold of ten shekels, full of incense:\n"
    "One young bullock, one ram, one lamb of the first year, for a burnt offering:\n"
    "One kid of the goats for a sin offering:\n"
    "And for a sacrifice of peace offerings, two oxen, five rams, five he goats, five lambs of "
    "the first year: this was the offering of Nethaneel the son of Zuar.\n"
    "On the third day Eliab the son of Helon, prince of the children of Zebulun, did offer:\n";

// Speculative decoding where drafts can be right: greedy output identical to plain decoding,
// and the share of drafts accepted (measured 2026-12-06: prompt lookup 34 of 47, the 0.9M
// draft model trained the same way 33 of 63).
TEST(TrainedModel, DraftsAreAcceptedOnRealText) {
  const fs::path dir = loom::test::cli_temp_dir("trained-drafts");
  const std::string prompt = (dir / "prompt.txt").string();
  std::ofstream(prompt) << kOffering;
  const std::string base = "run -m " + kModel + " -f " + prompt + " -n 64 --temp 0";
  const nlohmann::json plain = run_json(base);
  const std::vector<std::pair<std::string, double>> drafters = {
      {"--spec ngram", kMinNgramAcceptance},
      {"--draft " + std::string(LOOM_SOURCE_DIR) + "/models/kjv-llama-draft",
       kMinDraftModelAcceptance}};
  for (const auto& [flags, min_share] : drafters) {
    SCOPED_TRACE(flags);
    const CliResult spec = run_loom(base + " " + flags + " --json");
    ASSERT_EQ(spec.exit_code, 0) << spec.err;
    EXPECT_EQ(last_json_line(spec.out)["ids"], plain["ids"]);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(spec.err, m, std::regex(R"((\d+) drafted, (\d+) accepted)")))
        << spec.err;
    const double drafted = std::stod(m[1]), accepted = std::stod(m[2]);
    std::printf("%s: %.0f drafted, %.0f accepted\n", flags.c_str(), drafted, accepted);
    EXPECT_GT(drafted, 0);
    EXPECT_GE(accepted, min_share * drafted);
  }
  fs::remove_all(dir);
}

// The guard on live generation: greedy decoding of this small model falls into
// "and thy feet, and thy feet, ..." after "And God said, Let there be"; the guard (on by
// default) ends it there, and without it the loop runs to -n.
TEST(TrainedModel, GuardStopsARealLoop) {
  const std::string base = "run -m " + kModel + " -p 'And God said, Let there be' -n 160 --temp 0";
  const nlohmann::json guarded = run_json(base);
  const nlohmann::json off = run_json(base + " --guard off");
  EXPECT_EQ(guarded.value("finish_reason", ""), "repetition") << guarded.dump();
  EXPECT_EQ(off.value("finish_reason", ""), "length");
  const std::string text = guarded.value("text", "");
  EXPECT_EQ(off.value("text", "").substr(0, text.size()), text);  // the same text until it stops
  EXPECT_LT(text.size(), off.value("text", "").size());
}

// Sampled generation of real text runs to its length: no false stop of the degeneration guard,
// which is on by default.
TEST(TrainedModel, GuardLetsSampledTextRun) {
  for (int seed = 1; seed <= 6; ++seed) {
    const nlohmann::json r = run_json("run -m " + kModel +
                                      " -p 'And it came to pass' -n 160 --temp 0.8 --top-p 0.95 "
                                      "--ignore-eos --seed " +
                                      std::to_string(seed));
    EXPECT_EQ(r.value("finish_reason", ""), "length") << "seed " << seed << ": " << r.dump();
  }
}

// A generation constrained by a JSON schema ends on its own, with an instance of the schema.
TEST(TrainedModel, JsonSchemaGenerationFinishes) {
  const std::string schema =
      R"({"type":"object","properties":{"book":{"type":"string","maxLength":24},)"
      R"("chapter":{"type":"integer","minimum":1,"maximum":150},"verse":{"type":"string",)"
      R"("maxLength":120}},"required":["book","chapter","verse"],"additionalProperties":false})";
  const fs::path dir = loom::test::cli_temp_dir("trained-schema");
  const std::string file = (dir / "schema.json").string();
  std::ofstream(file) << schema;
  const nlohmann::json r = run_json("run -m " + kModel +
                                    " -p 'The first verse of Genesis, as JSON:' -n 200 --temp 0 "
                                    "--json-schema " +
                                    file);
  fs::remove_all(dir);
  EXPECT_EQ(r.value("finish_reason", ""), "stop") << r.dump();
  const nlohmann::json v = nlohmann::json::parse(r.value("text", ""), nullptr, false);
  ASSERT_TRUE(v.is_object()) << r.dump();
  EXPECT_TRUE(v["book"].is_string());
  EXPECT_TRUE(v["chapter"].is_number_integer());
  EXPECT_TRUE(v["verse"].is_string());
  EXPECT_EQ(v.size(), 3u);
}

}  // namespace
