#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace loom {
namespace {

TEST(MappedFile, MapsContents) {
  auto path = std::filesystem::temp_directory_path() / "loom_mapped_file_test.bin";
  std::ofstream(path, std::ios::binary) << "hello";
  MappedFile f = MappedFile::open(path.string());
  EXPECT_EQ(f.size(), 5u);
  EXPECT_EQ(f.bytes(), "hello");
  MappedFile moved = std::move(f);
  EXPECT_EQ(moved.bytes(), "hello");
  EXPECT_EQ(f.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  std::filesystem::remove(path);
}

TEST(MappedFile, EmptyFileIsEmpty) {
  auto path = std::filesystem::temp_directory_path() / "loom_mapped_file_empty.bin";
  std::ofstream(path, std::ios::binary).flush();
  MappedFile f = MappedFile::open(path.string());
  EXPECT_EQ(f.size(), 0u);
  std::filesystem::remove(path);
}

TEST(MappedFile, MissingFileIsNotFound) {
  try {
    MappedFile::open("/nonexistent/loom/file.gguf");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/loom/file.gguf"), std::string::npos);
  }
}

TEST(MappedFile, DirectoryIsRejected) {
  EXPECT_THROW(MappedFile::open(std::filesystem::temp_directory_path().string()), Error);
}

}  // namespace
}  // namespace loom
