// Drives the real `loom` binary: the CLI contract (output, exit codes, error text) is what
// users and external checks depend on.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/system_memory.h"

namespace {

struct Result {
  int exit_code;
  std::string out;  // stdout and stderr together
};

// Runs a shell command line, stdout and stderr together.
Result shell(const std::string& command) {
  std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, {}};
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Result run(const std::string& args) {
  return shell(std::string(LOOM_BIN) + " " + args);
}

std::string data(const std::string& rel) {
  return std::string(LOOM_TEST_DATA_DIR) + "/" + rel;
}

TEST(CliInspect, HfFolderText) {
  Result r = run("inspect " + std::string(LOOM_SOURCE_DIR) + "/models/llama-tiny-llama2vocab");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("architecture:  llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.1.attn_q.weight"), std::string::npos);
  EXPECT_NE(r.out.find("BF16"), std::string::npos);
  EXPECT_NE(r.out.find("bpe, 32000 tokens"), std::string::npos);
}

TEST(CliInspect, Json) {
  Result r = run("inspect --json " + data("ref/models/qwen3-tiny"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "qwen3");
  EXPECT_EQ(j["hparams"]["n_kv_heads"], 2);
  EXPECT_EQ(j["tensors"].size(), j["n_tensors"]);
  bool found = false;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "blk.0.attn_q_norm.weight") {
      found = true;
      EXPECT_EQ(t["type"], "BF16");
      EXPECT_EQ(t["shape"], nlohmann::json::array({32}));
      EXPECT_EQ(t["bytes"], 64);  // head_dim 32, bf16
      EXPECT_EQ(t["source_name"], "model.layers.0.self_attn.q_norm.weight");
    }
  }
  EXPECT_TRUE(found);
}

TEST(CliInspect, GgufJsonIncludesMetadata) {
  Result r = run("inspect --json " + data("ref/llamacpp-vocab/ggml-vocab-llama-spm.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["tokenizer"]["kind"], "llama");
  EXPECT_EQ(j["gguf"]["metadata"]["tokenizer.ggml.tokens"]["count"], 32000);
  EXPECT_EQ(j["gguf"]["version"], 3);
}

// `loom` alone lists every subcommand with its line; --version names the build.
TEST(Cli, NoArgumentsListsSubcommandsAndVersionNamesTheBuild) {
  Result r = run("");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  for (const char* sub :
       {"inspect", "run", "chat", "pull", "serve", "convert", "bench", "perplexity", "tokenize"}) {
    EXPECT_NE(r.out.find(std::string("  ") + sub + " "), std::string::npos) << sub << "\n" << r.out;
  }
  Result v = run("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("loom 0.1.0"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("CPU kernels: "), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("CUDA: "), std::string::npos) << v.out;
}

TEST(CliInspect, BadInputIsAnErrorNotACrash) {
  Result missing = run("inspect /nonexistent/model.gguf");
  EXPECT_EQ(missing.exit_code, 4) << missing.out;
  EXPECT_NE(missing.out.find("loom: error: /nonexistent/model.gguf"), std::string::npos);

  Result corrupt = run("inspect " + data("regressions/fuzz_json_number_overflow.safetensors"));
  EXPECT_EQ(corrupt.exit_code, 3) << corrupt.out;
  EXPECT_NE(corrupt.out.find("not a GGUF file"), std::string::npos) << corrupt.out;

  Result usage = run("inspect");
  EXPECT_EQ(usage.exit_code, 2) << usage.out;
  Result unknown = run("frobnicate");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.out;
}

}  // namespace

namespace {

// The random-weight model in models/ falls into " defin defin ..." at once.
// `loom run` stops it by default (finish_reason "repetition", the text cut after the loop's
// first copy), and --guard off lets it run to -n.
TEST(CliRun, DegenerationGuardStopsALoopByDefault) {
  const std::string base =
      "run -m " + std::string(LOOM_SOURCE_DIR) +
      "/models/llama-tiny-llama2vocab -p 'Once upon a time' -n 200 --temp 0 --json";
  auto json_of = [](const Result& r) {
    const size_t brace = r.out.find('{');
    return nlohmann::json::parse(r.out.substr(brace, r.out.find('\n', brace) - brace));
  };
  Result guarded = run(base);
  ASSERT_EQ(guarded.exit_code, 0) << guarded.out;
  const nlohmann::json g = json_of(guarded);
  EXPECT_EQ(g["finish_reason"], "repetition");
  EXPECT_LT(g["ids"].size(), 64u);
  EXPECT_EQ(g["text"], "phonephonephonephonephonephone defin");
  EXPECT_NE(guarded.out.find("degeneration guard"), std::string::npos) << guarded.out;

  Result off = run(base + " --guard off");
  ASSERT_EQ(off.exit_code, 0) << off.out;
  const nlohmann::json o = json_of(off);
  EXPECT_EQ(o["finish_reason"], "length");
  EXPECT_EQ(o["ids"].size(), 200u);
  // The guard changes nothing before it fires.
  for (size_t i = 0; i < g["ids"].size(); ++i) EXPECT_EQ(g["ids"][i], o["ids"][i]) << i;

  // penalize: the DRY penalty steers greedy decoding off the loop instead.
  Result pen = run(base + " --guard penalize");
  ASSERT_EQ(pen.exit_code, 0) << pen.out;
  const nlohmann::json p = json_of(pen);
  EXPECT_EQ(p["finish_reason"], "length");
  EXPECT_NE(p["ids"], o["ids"]);

  Result bad = run(base + " --guard maybe");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("--guard"), std::string::npos) << bad.out;
}

}  // namespace

namespace {

// `loom run --spec ngram` and `--draft`: the same tokens as plain greedy decoding, with the
// acceptance on stderr; `loom bench --spec` reports both speeds and checks the tokens agree.
TEST(CliRun, SpeculativeDecodingGivesThePlainTokens) {
  const std::string model = std::string(LOOM_SOURCE_DIR) + "/models/llama-tiny-llama2vocab";
  const std::string base =
      "run -m " + model + " -p 'Once upon a time' -n 60 --temp 0 --guard off --json";
  auto ids_of = [](const Result& r) {
    const size_t brace = r.out.find('{');
    return nlohmann::json::parse(r.out.substr(brace, r.out.find('\n', brace) - brace))["ids"];
  };
  const Result plain = run(base);
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  const std::vector<std::string> extras{" --spec ngram", " --spec ngram --draft-n 3",
                                        " --draft " + model, " --draft " + model + " --draft-n 15"};
  for (const std::string& extra : extras) {
    const Result r = run(base + extra);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(ids_of(r), ids_of(plain)) << extra;
    EXPECT_NE(r.out.find("speculative decoding:"), std::string::npos) << r.out;
  }
  // A draft model with another vocabulary is refused by name.
  const Result other = run(base + " --draft " + std::string(LOOM_TEST_DATA_DIR) +
                           "/ref/models/qwen3-tiny-qwen3vocab");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.out.find("vocabulary"), std::string::npos) << other.out;
  EXPECT_NE(run(base + " --spec ngram --draft " + model).exit_code, 0);  // one drafter at most
}

TEST(CliBench, SpeculativeReportsBothSpeedsAndAcceptance) {
  const std::string model = std::string(LOOM_SOURCE_DIR) + "/models/llama-tiny-llama2vocab";
  const std::string prompt = std::string(LOOM_TEST_DATA_DIR) + "/degeneration/README.md";
  const Result r =
      run("bench -m " + model + " -p 0 -n 32 -r 2 -t 2 --json -f " + prompt + " --spec ngram");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  const nlohmann::json& s = j["tg_spec"];
  EXPECT_EQ(s["drafter"], "ngram");
  EXPECT_GT(s["plain_tok_s"].get<double>(), 0.0);
  EXPECT_GT(s["spec_tok_s"].get<double>(), 0.0);
  EXPECT_LE(s["accepted"].get<int64_t>(), s["drafted"].get<int64_t>());
  EXPECT_NE(run("bench -m " + model + " -p 0 -n 8 --spec ngram").exit_code, 0);  // needs -f
}

}  // namespace

namespace {

// An output that is not a regular file (a FIFO here; /dev/null or /dev/stdout for users) is
// written, not replaced: a writer that staged PATH.tmp and renamed it over PATH turned root's
// /dev/null into a regular file.
TEST(CliOutput, AnOutputThatIsNotARegularFileIsWrittenNotReplaced) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("loom-fifo-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path fifo = dir / "out.pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Our own reader and writer ends hold the pipe open, so loom's write (8 KiB, under the pipe's
  // buffer) neither blocks nor ends it; with the writer closed after loom, the read sees EOF.
  const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  const int wr = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(rd, 0);
  ASSERT_GE(wr, 0);
  const Result r =
      run("logits -m " + data("ref/models/llama-tiny") + " --ids 1,2 -o " + fifo.string());
  ::close(wr);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(rd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(rd);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_FALSE(fs::exists(fifo.string() + ".tmp"));
  // A whole safetensors file came through: header length, header, 2 x vocab floats.
  ASSERT_GT(got.size(), 8u);
  uint64_t header = 0;
  std::memcpy(&header, got.data(), 8);
  EXPECT_NE(got.find("\"logits\""), std::string::npos);
  EXPECT_EQ(got.size() % 4, 0u);
  EXPECT_GT(got.size(), 8 + header);
  fs::remove_all(dir);
}

}  // namespace

namespace {

// A memory cgroup this test may create a child in (root on a cgroup v1 machine, as CI's; or a
// v2 group with the memory controller delegated): the child's directory and file names.
struct MemoryCgroup {
  std::string dir;
  std::string limit_file;  // memory.limit_in_bytes (v1) or memory.max (v2)
  std::string peak_file;   // memory.max_usage_in_bytes (v1) or memory.peak (v2)
};

std::optional<MemoryCgroup> child_memory_cgroup(const std::string& name, std::string& why) {
  namespace fs = std::filesystem;
  bool v1 = false;
  const std::string parent = loom::memory_cgroup_dir(v1);
  if (parent.empty()) {
    why = "no memory cgroup";
    return std::nullopt;
  }
  MemoryCgroup g = v1 ? MemoryCgroup{"", "memory.limit_in_bytes", "memory.max_usage_in_bytes"}
                      : MemoryCgroup{"", "memory.max", "memory.peak"};
  const fs::path dir = fs::path(parent) / name;
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec || !fs::exists(dir / g.limit_file) || !fs::exists(dir / g.peak_file)) {
    fs::remove(dir, ec);
    why = "cannot create a memory cgroup under " + parent;
    return std::nullopt;
  }
  g.dir = dir.string();
  return g;
}

// A model larger than the memory the process may use runs from its mapped file (the kernel
// pages it in) instead of being copied into memory that is not there. In a fresh cgroup, loom
// running the mapped model peaks at P bytes (the file's page cache is charged to this test's
// group, which wrote it); limited to halfway between P and the model's size, loom still
// generates, and says why it maps; forcing the copy (LOOM_MMAP=0), as a copy of a model larger
// than RAM did before, gets the process killed.
TEST(CliMemory, AModelLargerThanItsMemoryLimitRunsMapped) {
  namespace fs = std::filesystem;
  const std::string tag = std::to_string(::getpid());
  const fs::path model = fs::temp_directory_path() / ("loom-mem-model-" + tag);
  const Result synth = run("synth --hidden 1024 --layers 2 --heads 8 --ffn 2048 --vocab-from " +
                           data("ref/models/llama-tiny-llama2vocab") + " -o " + model.string());
  ASSERT_EQ(synth.exit_code, 0) << synth.out;
  const uint64_t size = fs::file_size(model / "model.safetensors");
  const std::string args = "run -m " + model.string() + " -p hello -n 4 --temp 0";
  auto in_group = [&](const MemoryCgroup& g, const std::string& env) {
    return shell("sh -c 'echo $$ > " + g.dir + "/cgroup.procs && " + env + " exec " + LOOM_BIN +
                 " " + args + "'");
  };
  auto read_number = [](const std::string& path) {
    uint64_t v = 0;
    std::ifstream(path) >> v;
    return v;
  };
  std::error_code ec;
  std::string why;
  uint64_t peak = 0;
  if (const auto free_group = child_memory_cgroup("loom-test-free-" + tag, why)) {
    const Result r = in_group(*free_group, "LOOM_MMAP=1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    peak = read_number(free_group->dir + "/" + free_group->peak_file);
    fs::remove(free_group->dir, ec);
  }
  const auto group = child_memory_cgroup("loom-test-" + tag, why);
  if (!group || peak == 0 || peak >= size / 2) {
    fs::remove_all(model, ec);
    if (group) fs::remove(group->dir, ec);
    GTEST_SKIP() << (group ? "loom alone peaks at " + std::to_string(peak) + " bytes" : why);
  }
  const uint64_t limit = peak + (size - peak) / 2;
  std::ofstream(group->dir + "/" + group->limit_file) << limit;
  const Result mapped = in_group(*group, "");
  EXPECT_EQ(mapped.exit_code, 0) << "limit " << limit << ": " << mapped.out;
  EXPECT_NE(mapped.out.find("does not fit in the"), std::string::npos) << mapped.out;
  EXPECT_NE(mapped.out.find("stays mapped"), std::string::npos) << mapped.out;
  const Result copied = in_group(*group, "LOOM_MMAP=0");
  EXPECT_NE(copied.exit_code, 0) << copied.out;
  fs::remove_all(model, ec);
  fs::remove(group->dir, ec);
}

}  // namespace
