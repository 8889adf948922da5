// A scratch folder for this test process: PREFIX-PID under the system's temp folder, created on
// first use and removed with everything in it when the process exits (ctest runs each TEST in a
// process of its own, so nothing piles up in /tmp). One prefix per test program.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace loom::testing {

inline std::filesystem::path scratch_dir(const std::string& prefix) {
  struct Scratch {
    std::filesystem::path path;
    explicit Scratch(const std::string& p)
        : path(std::filesystem::temp_directory_path() / (p + "-" + std::to_string(::getpid()))) {
      std::filesystem::create_directories(path);
    }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Scratch scratch(prefix);
  return scratch.path;
}

}  // namespace loom::testing
