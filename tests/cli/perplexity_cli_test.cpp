// `loom perplexity` through the real binary, against the method stated independently: the
// text's tokens (`loom tokenize --special`) cut into chunks of --ctx, each chunk's first token
// replaced by BOS, its logits from `loom logits` (checked against transformers elsewhere),
// and the negative log-likelihood of the second half of each chunk. The KL divergence from the
// same model is 0 with full agreement, and from a Q8_0 conversion small but not 0.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int exit_code;
  std::string out;  // stdout
};

Result run(const std::string& args) {
  const std::string cmd = std::string(LOOM_BIN) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, {}};
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kModel = std::string(LOOM_TEST_DATA_DIR) + "/ref/models/llama-tiny-llama2vocab";

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("loom-perplexity-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

const std::string kText =
    "In the beginning God created the heaven and the earth. And the earth was without form, and "
    "void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face "
    "of the waters. And God said, Let there be light: and there was light. And God saw the "
    "light, that it was good: and God divided the light from the darkness.";

nlohmann::json last_json_line(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  const size_t start = out.rfind('\n', end);
  return nlohmann::json::parse(out.substr(start == std::string::npos ? 0 : start + 1));
}

TEST(CliPerplexity, FollowsLlamaPerplexitysMethod) {
  const fs::path dir = temp_dir();
  const std::string text_file = (dir / "text.txt").string();
  std::ofstream(text_file) << kText;
  const int64_t ctx = 16;
  Result r =
      run("perplexity --json -m " + kModel + " -f " + text_file + " --ctx " + std::to_string(ctx));
  ASSERT_EQ(r.exit_code, 0);
  const nlohmann::json got = last_json_line(r.out);

  // The same by hand.
  Result tok = run("tokenize --special -m " + kModel + " < " + text_file);
  ASSERT_EQ(tok.exit_code, 0);
  const std::vector<int32_t> ids = nlohmann::json::parse(tok.out).get<std::vector<int32_t>>();
  ASSERT_EQ(ids[0], 1);  // BOS
  const int64_t chunks = static_cast<int64_t>(ids.size()) / ctx;
  ASSERT_GE(chunks, 2);
  double nll = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    std::string list = "1";  // the chunk's first token becomes BOS
    for (int64_t i = 1; i < ctx; ++i) {
      list += ',';
      list += std::to_string(ids[static_cast<size_t>(c * ctx + i)]);
    }
    const std::string out = (dir / "logits.safetensors").string();
    ASSERT_EQ(run("logits -m " + kModel + " --ids " + list + " -o " + out).exit_code, 0);
    const loom::SafetensorsFile f = loom::SafetensorsFile::open(out);
    const loom::SafetensorsTensor* t = f.find("logits");
    ASSERT_NE(t, nullptr);
    const int64_t vocab = t->shape[1];
    const auto* logits = reinterpret_cast<const float*>(t->data);
    for (int64_t pos = ctx / 2; pos < ctx - 1; ++pos) {
      const float* row = logits + pos * vocab;
      double max = row[0], sum = 0;
      for (int64_t v = 0; v < vocab; ++v) max = std::max(max, double{row[v]});
      for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
      const int32_t target = ids[static_cast<size_t>(c * ctx + pos + 1)];
      nll += max + std::log(sum) - row[target];
      ++count;
    }
  }
  EXPECT_EQ(got["chunks"], chunks);
  EXPECT_EQ(got["tokens_scored"], count);
  EXPECT_NEAR(got["ppl"].get<double>(), std::exp(nll / static_cast<double>(count)),
              1e-4 * std::exp(nll / static_cast<double>(count)));
  EXPECT_TRUE(got["kld_mean"].is_null());
  EXPECT_TRUE(got["top1_agree"].is_null());
  fs::remove_all(dir);
}

TEST(CliPerplexity, KlDivergenceFromABaseModel) {
  const fs::path dir = temp_dir();
  const std::string text_file = (dir / "text.txt").string();
  std::ofstream(text_file) << kText;
  const std::string args = " -f " + text_file + " --ctx 16 --json";
  Result same = run("perplexity -m " + kModel + args + " --kl-base " + kModel);
  ASSERT_EQ(same.exit_code, 0);
  const nlohmann::json s = last_json_line(same.out);
  EXPECT_NEAR(s["kld_mean"].get<double>(), 0.0, 1e-6);
  EXPECT_EQ(s["top1_agree"].get<double>(), 1.0);
  EXPECT_NEAR(s["base_ppl"].get<double>(), s["ppl"].get<double>(), 1e-9 * s["ppl"].get<double>());

  const std::string q8 = (dir / "q8.gguf").string();
  ASSERT_EQ(run("convert " + kModel + " -o " + q8 + " --type q8_0").exit_code, 0);
  Result quant = run("perplexity -m " + q8 + args + " --kl-base " + kModel);
  ASSERT_EQ(quant.exit_code, 0);
  const nlohmann::json q = last_json_line(quant.out);
  EXPECT_GT(q["kld_mean"].get<double>(), 0.0);
  EXPECT_LT(q["kld_mean"].get<double>(), 0.05);
  EXPECT_GT(q["top1_agree"].get<double>(), 0.8);
  EXPECT_NEAR(q["base_ppl"].get<double>(), s["ppl"].get<double>(), 1e-4 * s["ppl"].get<double>());
  fs::remove_all(dir);
}

TEST(CliPerplexity, BadInputIsAClearError) {
  const fs::path dir = temp_dir();
  const std::string text_file = (dir / "short.txt").string();
  std::ofstream(text_file) << "Too short.";
  EXPECT_NE(run("perplexity -m " + kModel + " -f " + text_file + " --ctx 16").exit_code, 0);
  EXPECT_NE(run("perplexity -m " + kModel + " -f /nonexistent.txt").exit_code, 0);
  const std::string other = std::string(LOOM_TEST_DATA_DIR) + "/ref/models/qwen3-tiny-qwen3vocab";
  std::ofstream(dir / "text.txt") << kText;
  EXPECT_NE(run("perplexity -m " + kModel + " -f " + (dir / "text.txt").string() +
                " --ctx 16 --kl-base " + other)
                .exit_code,
            0);
  fs::remove_all(dir);
}

}  // namespace
