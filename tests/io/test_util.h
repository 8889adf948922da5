// Helpers shared by the io tests: raw little-endian byte building for hand-made (and
// deliberately broken) files, temp paths, and asserting a loom::Error's category and text.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "core/error.h"
#include "scratch_dir.h"

namespace loom::test {

class Bytes {
 public:
  template <typename T>
  Bytes& put(T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    s.append(buf, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& v) {
    put<uint64_t>(v.size());
    s += v;
    return *this;
  }
  Bytes& raw(const std::string& v) {
    s += v;
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    while (s.size() % alignment != 0) s.push_back('\0');
    return *this;
  }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(s.data()); }
  size_t size() const { return s.size(); }
  std::string s;
};

// In this test process's own scratch folder (ctest runs tests in parallel processes, and two
// that wrote a converted model of the same name read each other's half-written file).
inline std::filesystem::path temp_path(const std::string& name) {
  return loom::testing::scratch_dir("loom-tests") / name;
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline std::string data_dir() {
  return LOOM_TEST_DATA_DIR;
}

// Runs `fn`, which must throw loom::Error of category `code` whose message contains every
// one of `needles`.
inline void expect_error(const std::function<void()>& fn, ErrorCode code,
                         std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected loom::Error (" << error_code_name(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "message lacks \"" << n << "\": " << e.what();
    }
  }
}

}  // namespace loom::test
