#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "proc_maps.h"

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

// Released pages read back the file's bytes, in both modes; ranges outside any MappedFile,
// without a whole page, or of a file changed on disk are left alone.
TEST(MappedFile, ReleasedPagesReadTheFileAgain) {
  auto path = std::filesystem::temp_directory_path() / "loom_mapped_file_release.bin";
  std::string content(3 * 1024 * 1024 + 123, '\0');
  for (size_t i = 0; i < content.size(); ++i)
    content[i] = static_cast<char>((i * 131 + i / 7) & 0xFF);
  std::ofstream(path, std::ios::binary) << content;
  for (auto mode :
       {MappedFile::Mode::kCopy, MappedFile::Mode::kMap, MappedFile::Mode::kCopyInBackground}) {
    MappedFile f = MappedFile::open(path.string(), mode);
    ASSERT_EQ(f.bytes(), content);
    EXPECT_TRUE(release_file_pages(f.data() + 40967, 1024 * 1024 + 5));
    EXPECT_FALSE(release_file_pages(f.data() + 10, 100));  // no whole page inside
    EXPECT_EQ(f.bytes(), content);
    EXPECT_TRUE(release_file_pages(f.data(), f.size()));  // everything, then read it all
    EXPECT_EQ(f.bytes(), content);
  }
  const std::string other = "not a mapped file";
  EXPECT_FALSE(release_file_pages(other.data(), other.size()));
  {
    MappedFile f = MappedFile::open(path.string(), MappedFile::Mode::kCopy);
    std::ofstream(path, std::ios::binary | std::ios::app) << "more";  // the file changes
    EXPECT_FALSE(release_file_pages(f.data(), f.size()));
    EXPECT_EQ(f.bytes(), content);  // the copy stays
  }
  std::filesystem::remove(path);
}

using testing::mapping_of;

std::string patterned(size_t n) {
  std::string content(n, '\0');
  for (size_t i = 0; i < n; ++i) content[i] = static_cast<char>((i * 151 + i / 4099) & 0xFF);
  return content;
}

// Copied in the background: the same bytes at the same addresses before, during and after the
// copy; afterwards every whole 2 MiB chunk is anonymous memory, the tail still the file.
TEST(MappedFile, BackgroundCopyKeepsAddressesAndBytes) {
  auto path = std::filesystem::temp_directory_path() / "loom_mapped_file_background.bin";
  const std::string content = patterned(5 * 1024 * 1024 + 123);
  std::ofstream(path, std::ios::binary) << content;
  MappedFile f = MappedFile::open(path.string(), MappedFile::Mode::kCopyInBackground);
  const uint8_t* data = f.data();
  EXPECT_EQ(f.bytes(), content);
  MappedFile::wait_for_background_copies();
  EXPECT_EQ(f.data(), data);
  EXPECT_EQ(f.bytes(), content);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % (2 << 20), 0u);
  for (size_t at : {size_t{0}, size_t{2 << 20} + 17, size_t{4 << 20} - 1}) {
    const std::string m = mapping_of(data + at);
    EXPECT_EQ(m.find(path.filename().string()), std::string::npos) << at << ": " << m;
  }
  EXPECT_NE(mapping_of(data + (4 << 20) + 5).find(path.filename().string()), std::string::npos);
  // Released after the copy: read from the file again, the same bytes.
  EXPECT_TRUE(release_file_pages(data + 4096, 3 << 20));
  EXPECT_EQ(f.bytes(), content);
  EXPECT_NE(mapping_of(data + (1 << 20)).find(path.filename().string()), std::string::npos);
  std::filesystem::remove(path);
}

// Released before the copy gets there: those chunks are never copied; and files closed while
// their copy runs stop it (no crash, no leak of the copier).
TEST(MappedFile, BackgroundCopySkipsReleasedChunksAndStopsOnClose) {
  auto path = std::filesystem::temp_directory_path() / "loom_mapped_file_background2.bin";
  const std::string content = patterned(9 * 1024 * 1024 + 5);
  std::ofstream(path, std::ios::binary) << content;
  for (int i = 0; i < 20; ++i) {
    MappedFile f = MappedFile::open(path.string(), MappedFile::Mode::kCopyInBackground);
    if (i % 2 == 0) {
      EXPECT_EQ(f.bytes().substr(0, 4096), content.substr(0, 4096));
    }
  }
  MappedFile f = MappedFile::open(path.string(), MappedFile::Mode::kCopyInBackground);
  EXPECT_TRUE(release_file_pages(f.data() + (6 << 20), 2 << 20));
  MappedFile::wait_for_background_copies();
  EXPECT_EQ(f.bytes(), content);
  EXPECT_NE(mapping_of(f.data() + (6 << 20) + 100).find(path.filename().string()),
            std::string::npos);
  std::filesystem::remove(path);
}

// A file truncated while its copy runs: the copy reads it with pread, so the part that is gone
// ends the copy (it stays mapped) instead of raising SIGBUS in the copier or the waiter, and
// what is still in the file reads as before.
TEST(MappedFile, BackgroundCopyStopsWhenTheFileShrinks) {
  auto path = std::filesystem::temp_directory_path() / "loom_mapped_file_background3.bin";
  const std::string content = patterned(33 * 1024 * 1024);
  for (int i = 0; i < 4; ++i) {
    std::ofstream(path, std::ios::binary) << content;
    MappedFile f = MappedFile::open(path.string(), MappedFile::Mode::kCopyInBackground);
    std::filesystem::resize_file(path, (3 << 20) + 7);
    MappedFile::wait_for_background_copies();
    EXPECT_EQ(f.bytes().substr(0, 3 << 20), content.substr(0, 3 << 20));
  }
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

namespace loom {
namespace {

TEST(HugeBuffer, ZeroFilledWritableAndMovable) {
  HugeBuffer big(uint64_t{3} << 20);
  ASSERT_NE(big.data(), nullptr);
  EXPECT_EQ(big.size(), uint64_t{3} << 20);
  EXPECT_EQ(big.data()[0], 0);
  EXPECT_EQ(big.data()[big.size() - 1], 0);
  big.data()[12345] = 7;
  HugeBuffer moved(std::move(big));
  EXPECT_EQ(big.data(), nullptr);  // NOLINT: checking the moved-from state
  EXPECT_EQ(moved.data()[12345], 7);
  HugeBuffer empty;
  EXPECT_EQ(empty.data(), nullptr);
  empty = std::move(moved);
  EXPECT_EQ(empty.data()[12345], 7);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(empty.data()) % (2 << 20), 0u);  // whole huge pages
}

// Buffers of awkward sizes lie one after another (64-byte aligned, zeroed, never overlapping),
// a new 2 MiB-aligned chunk starting only when one is full; one larger than a chunk gets its own.
TEST(HugeArena, PacksBuffersContiguouslyInHugePageChunks) {
  HugeArena arena;
  std::vector<std::pair<uint8_t*, uint64_t>> got;
  for (uint64_t size : {uint64_t{9437184}, uint64_t{2359297}, uint64_t{65}, uint64_t{36864000},
                        uint64_t{9437184}, uint64_t{9437184}, uint64_t{100} << 20, uint64_t{1}}) {
    uint8_t* p = arena.allocate(size);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    EXPECT_EQ(p[0], 0);
    EXPECT_EQ(p[size - 1], 0);
    std::memset(p, 0xAB, size);
    got.emplace_back(p, size);
  }
  EXPECT_EQ(reinterpret_cast<uintptr_t>(got[0].first) % (2 << 20), 0u);
  EXPECT_EQ(got[1].first, got[0].first + 9437184);  // the next one, rounded up to 64 bytes
  EXPECT_EQ(got[2].first, got[1].first + 2359360);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(got[6].first) % (2 << 20), 0u);  // 100 MiB: a chunk
  for (size_t i = 0; i < got.size(); ++i) {
    for (size_t j = 0; j < got.size(); ++j) {
      if (i == j) continue;
      EXPECT_TRUE(got[i].first + got[i].second <= got[j].first ||
                  got[j].first + got[j].second <= got[i].first)
          << i << " overlaps " << j;
    }
    EXPECT_EQ(got[i].first[got[i].second / 2], 0xAB);
  }
}

}  // namespace
}  // namespace loom
