// Inputs the fuzzers crashed on, kept as tests named after the bug (tests/data/regressions/).
#include <gtest/gtest.h>

#include "core/mapped_file.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace loom {
namespace {

// nlohmann::json throws out_of_range (not parse_error) for numbers like 88e888888; it escaped
// as a foreign exception and aborted the process.
TEST(FuzzRegression, JsonNumberOverflowInSafetensorsHeader) {
  std::string path = test::data_dir() + "/regressions/fuzz_json_number_overflow.safetensors";
  test::expect_error(
      [&] { SafetensorsFile::open(path); }, ErrorCode::kCorruption,
      {"fuzz_json_number_overflow.safetensors", "not valid JSON", "number overflow"});
}

TEST(FuzzRegression, JsonNumberOverflowInConfig) {
  std::string path = test::data_dir() + "/regressions/fuzz_json_number_overflow_config.json";
  test::expect_error([&] { parse_hf_config(read_text_file(path), path); }, ErrorCode::kCorruption,
                     {"fuzz_json_number_overflow_config.json", "not valid JSON"});
}

// Issue 12 (fuzz_hf_config, ASan heap-use-after-free): the rope-scaling reader kept a
// reference to a temporary file name, and the error for a numeric rope_type printed heap bytes.
TEST(FuzzRegression, Issue12RopeTypeNumberUseAfterFree) {
  std::string path = test::data_dir() + "/regressions/issue12_rope_type_number_config.json";
  test::expect_error([&] { parse_hf_config(read_text_file(path), path); }, ErrorCode::kCorruption,
                     {"config.json rope scaling", "'rope_type' must be a string, got 5"});
}

}  // namespace
}  // namespace loom
