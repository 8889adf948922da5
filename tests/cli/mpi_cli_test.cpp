// `mpirun -np N loom ...`: the real binary as a tensor-parallel group of N processes over MPI.
// The logits of every llama-family reference model (HF folders and a GGUF) under 2 and 3 ranks
// equal the single process's within 1e-5 relative L2 at every position, greedy text is
// identical, and a group that cannot work ends with a clear error instead of hanging: a model
// that differs on one rank, a file missing on one, a rank killed mid-run. Skipped with the
// reason when mpirun is not installed (scripts/install-deps.sh installs Open MPI).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/safetensors.h"

namespace loom::test {
namespace {

namespace fs = std::filesystem;

const std::string kModels = std::string(LOOM_SOURCE_DIR) + "/tests/data/ref/models/";

// An output path for runs that are expected to fail before writing (never /dev/null: a writer
// that renamed over it would replace the device).
std::string scratch_output() {
  static const TempDirForProcess dir{cli_temp_dir("mpi-scratch")};
  return (dir.path / "never.safetensors").string();
}
// 80 ids: with --pp the batch is cut into micro-batches (of at least 32 rows) mid-sequence.
const std::string kIds = [] {
  std::string s = "1";
  for (int i = 1; i < 80; ++i) {
    s += ',';
    s += std::to_string((i * 37) % 900 + 1);
  }
  return s;
}();

// A shell command's exit code, stdout and stderr.
CliResult run_command(const std::string& cmd) {
  static int counter = 0;
  static const TempDirForProcess owner{cli_temp_dir("mpi-run")};
  const std::string tag = std::to_string(counter++);
  const fs::path out = owner.path / ("out-" + tag), err = owner.path / ("err-" + tag);
  const int status =
      std::system((cmd + " > '" + out.string() + "' 2> '" + err.string() + "'").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::string mpirun_prefix(int n) {
  return std::string(LOOM_MPIRUN) + " --oversubscribe -np " + std::to_string(n) + " ";
}

// `mpirun --oversubscribe -np N loom ARGS`.
CliResult mpirun(int n, const std::string& args) {
  return run_command(mpirun_prefix(n) + LOOM_BIN + " " + args);
}

class MpiCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(LOOM_MPIRUN).empty()) GTEST_SKIP() << "mpirun not found (install openmpi-bin)";
    // CI and containers run as root, which Open MPI refuses unless told.
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    // Each test process its own Open MPI session folder: two mpiruns starting at once (ctest -j2
    // on a fresh machine) raced to create /tmp/ompi.HOST.UID and one failed in orte_init
    // ("mkdir ... File exists").
    static const TempDirForProcess session{cli_temp_dir("mpi-session")};
    ::setenv("OMPI_MCA_orte_tmpdir_base", session.path.c_str(), 1);
  }
};

std::vector<float> read_logits(const std::string& path, int64_t* vocab) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const SafetensorsTensor* t = f.find("logits");
  EXPECT_NE(t, nullptr) << path;
  if (t == nullptr) return {};
  *vocab = t->shape[1];
  const auto* p = reinterpret_cast<const float*>(t->data);
  return {p, p + t->n_bytes / sizeof(float)};
}

// The worst relative L2 over positions of `split` against `whole` ([positions, vocab]).
double worst_relative_l2(const std::vector<float>& whole, const std::vector<float>& split,
                         int64_t vocab) {
  double worst = 0;
  for (size_t row = 0; (row + 1) * vocab <= whole.size(); ++row) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      const double w = whole[row * vocab + i], d = split[row * vocab + i] - w;
      num += d * d;
      den += w * w;
    }
    worst = std::max(worst, std::sqrt(num / std::max(den, 1e-30)));
  }
  return worst;
}

// `ids` (default kIds) through one process and through each layout of ranks.
void expect_group_logits_equal(const std::string& model, const std::string& name,
                               const std::string& ids = kIds) {
  const TempDirForProcess dir{cli_temp_dir("mpi-logits-" + name)};
  const std::string one = (dir.path / "one.safetensors").string();
  const CliResult single =
      run_loom("logits -t 1 -m '" + model + "' --ids " + ids + " -o '" + one + "'");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  int64_t vocab = 0;
  const std::vector<float> whole = read_logits(one, &vocab);
  // Tensor parallel over 2, 3 and 4 ranks, 2 pipeline stages, and 2 stages of 2 ranks each.
  const std::pair<int, std::string> layouts[] = {
      {2, ""}, {3, ""}, {4, ""}, {2, " --pp 2"}, {4, " --pp 2"}};
  for (const auto& [n, pp] : layouts) {
    const std::string split = (dir.path / ("np" + std::to_string(n) + ".safetensors")).string();
    const CliResult r =
        mpirun(n, "logits -m '" + model + "' --ids " + ids + " -o '" + split + "'" + pp);
    ASSERT_EQ(r.exit_code, 0) << name << " -np " << n << pp << ": " << r.err;
    int64_t v = 0;
    const std::vector<float> parts = read_logits(split, &v);
    ASSERT_EQ(v, vocab);
    ASSERT_EQ(parts.size(), whole.size());
    const double rel = worst_relative_l2(whole, parts, vocab);
    EXPECT_LE(rel, 1e-5) << name << " -np " << n << pp;
    std::printf("%s: mpirun -np %d%s vs one process, worst relative L2 over positions %.3g\n",
                name.c_str(), n, pp.c_str(), rel);
  }
}

TEST_F(MpiCli, ReferenceModelsGiveTheSingleProcessLogits) {
  for (const char* m :
       {"llama-tiny", "llama3-ropescaled-tiny", "mistral-tiny", "qwen2-tiny", "qwen3-tiny",
        "phi3-tiny", "mixtral-tiny", "qwen3moe-tiny", "gemma2-tiny", "gemma3-tiny", "gpt2-tiny"}) {
    expect_group_logits_equal(kModels + m, m);
  }
}

TEST_F(MpiCli, LargeStepsReduceScatterAndStillAgree) {
  // 256 rows of 64 floats: a 64 KiB all-reduce, which more than two ranks reduce-scatter and
  // all-gather instead of gathering every part.
  std::string ids = "1";
  for (int i = 1; i < 256; ++i) {
    ids += ',';
    ids += std::to_string((i * 53) % 1000 + 1);
  }
  expect_group_logits_equal(kModels + "llama-tiny", "llama-tiny 256 ids", ids);
}

TEST_F(MpiCli, GgufFilesGiveTheSingleProcessLogits) {
  // One file of each family as llama.cpp lays it out (llama's permuted q/k rows included).
  const TempDirForProcess dir{cli_temp_dir("mpi-gguf")};
  for (const char* m : {"llama-tiny", "qwen3-tiny", "gemma2-tiny", "gpt2-tiny"}) {
    const std::string gguf = (dir.path / (std::string(m) + "-f32.gguf")).string();
    const CliResult c = run_loom("convert " + kModels + m + " --type f32 -o '" + gguf + "'");
    ASSERT_EQ(c.exit_code, 0) << c.err;
    expect_group_logits_equal(gguf, std::string(m) + " GGUF");
  }
}

TEST_F(MpiCli, GreedyTextIsTheSingleProcessText) {
  const std::string model = std::string(LOOM_SOURCE_DIR) + "/models/kjv-llama-6m";
  const std::string args =
      "run -m '" + model + "' -p 'In the beginning God' -n 40 --temp 0 --ignore-eos";
  const CliResult single = run_loom(args + " -t 1");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  ASSERT_FALSE(single.out.empty());
  const std::pair<int, std::string> layouts[] = {{2, ""}, {3, ""}, {2, " --pp 2"}};
  for (const auto& [n, pp] : layouts) {
    const CliResult r = mpirun(n, args + pp);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, single.out) << "-np " << n << pp;  // rank 0 prints; the others are quiet
  }
}

TEST_F(MpiCli, AModelThatDiffersOnOneRankIsRefused) {
  // MPMD: rank 1 names another model of the same architecture.
  const auto start = std::chrono::steady_clock::now();
  const CliResult r =
      run_command(mpirun_prefix(1) + LOOM_BIN + " logits -m " + kModels +
                  "llama-tiny --ids 1,2 -o '" + scratch_output() + "' : -np 1 " + LOOM_BIN +
                  " logits -m " + kModels + "qwen2-tiny --ids 1,2 -o '" + scratch_output() + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("rank 1 of 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is not the same as on rank 0"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST_F(MpiCli, AFileMissingOnOneRankEndsTheGroup) {
  const auto start = std::chrono::steady_clock::now();
  const CliResult r =
      run_command(mpirun_prefix(1) + LOOM_BIN + " logits -m " + kModels +
                  "llama-tiny --ids 1,2 -o '" + scratch_output() + "' : -np 1 " + LOOM_BIN +
                  " logits -m /nonexistent/model.gguf --ids 1,2 -o '" + scratch_output() + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST_F(MpiCli, ARankKilledMidRunEndsTheGroup) {
  // A benchmark that would run for hours; rank 1 is killed once both ranks are decoding.
  const TempDirForProcess dir{cli_temp_dir("mpi-kill")};
  const std::string pids = (dir.path / "pids").string();
  const std::string script = mpirun_prefix(2) + "sh -c 'echo $$ >> " + pids + "; exec " + LOOM_BIN +
                             " bench -m " + kModels +
                             "llama-tiny -p 0 -n 64 -r 1000000000' & mpi=$!; "
                             "while [ $(cat " +
                             pids +
                             " 2>/dev/null | wc -l) -lt 2 ]; do sleep 0.1; done; sleep 2; "
                             "kill -9 $(sort -n " +
                             pids + " | tail -1); wait $mpi";
  const std::string file = (dir.path / "kill.sh").string();
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(script.c_str(), f);
  std::fclose(f);
  const auto start = std::chrono::steady_clock::now();
  const CliResult r = run_command("bash '" + file + "'");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(seconds, 30) << r.err;
  std::printf("rank killed: the group ended %.1f s after the start (2 s of it running)\n", seconds);
}

TEST_F(MpiCli, LayoutsThatCannotBeMadeAreRefused) {
  const std::string m = kModels + "llama-tiny --ids 1,2 -o '" + scratch_output() + "'";
  CliResult r = mpirun(3, "logits -m " + m + " --pp 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("3 ranks do not split into 2 pipeline stages"), std::string::npos) << r.err;
  r = mpirun(3, "logits -m " + m + " --pp 3");  // 2 layers
  EXPECT_NE(r.err.find("2 layers cannot be split into 3 pipeline stages"), std::string::npos)
      << r.err;
  r = mpirun(2, "logits -m " + m + " --tp 3");
  EXPECT_NE(r.err.find("--tp 3 x --pp 1 is not the 2 ranks"), std::string::npos) << r.err;
  r = run_loom("logits -m " + m + " --pp 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("mpirun -np N"), std::string::npos) << r.err;
}

TEST_F(MpiCli, CommandsThatWouldWriteTheSameFileAreRefused) {
  const CliResult r = mpirun(2, "convert " + kModels + "llama-tiny --type f32 -o /tmp/never.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("does not run under mpirun"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("/tmp/never.gguf"));
}

}  // namespace
}  // namespace loom::test
