// Running the real `loom` binary from a test: exit code, stdout and stderr kept apart.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace loom::test {

struct CliResult {
  int exit_code;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A directory of this test process's own under the system temp directory.
inline std::filesystem::path cli_temp_dir(const std::string& tag) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("loom-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// A directory removed (with what is left in it) when the test process exits.
struct TempDirForProcess {
  std::filesystem::path path;
  ~TempDirForProcess() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// `loom ARGS` through the shell (ARGS may quote and redirect stdin).
inline CliResult run_loom(const std::string& args) {
  static int counter = 0;
  static const TempDirForProcess owner{cli_temp_dir("cli-run")};
  const std::filesystem::path& dir = owner.path;
  const std::string tag = std::to_string(counter++);
  const std::filesystem::path out = dir / ("out-" + tag), err = dir / ("err-" + tag);
  const std::string cmd =
      std::string(LOOM_BIN) + " " + args + " > '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  CliResult r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

// The JSON object on the last non-empty line of OUT.
inline nlohmann::json last_json_line(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  if (end == std::string::npos) return nlohmann::json();
  const size_t start = out.rfind('\n', end);
  return nlohmann::json::parse(out.substr(start == std::string::npos ? 0 : start + 1,
                                          end + 1 - (start == std::string::npos ? 0 : start + 1)));
}

}  // namespace loom::test
