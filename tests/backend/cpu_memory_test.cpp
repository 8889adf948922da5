// Where the CPU backend keeps prepared weights: a table that is only looked up (an untied token
// embedding) stays in the file's pages instead of a copy in memory.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "backend/backend.h"
#include "core/mapped_file.h"
#include "proc_maps.h"

namespace loom {
namespace {

// Whether the mapping that holds `p` is the file `name` (and not anonymous memory).
bool mapped_from(const void* p, const std::string& name) {
  return testing::mapping_of(p).find(name) != std::string::npos;
}

// A file copied into memory in the background (as loom holds a model file that fits): after
// prepare_weight, a lookup table's whole 2 MiB chunks are the file's mapping, never copied; a
// table read as rows (experts, a tied embedding) is copied like the rest. Bytes unchanged.
TEST(CpuWeights, LookupTablesStayInTheFilesPages) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("loom_cpu_lookup_" + std::to_string(::getpid()) + ".bin");
  constexpr int64_t kCols = 1024, kRows = 4096;  // two tables of 16 MiB of F32
  std::string content(2 * kRows * kCols * 4, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 131 + i / 4093);
  std::ofstream(path, std::ios::binary) << content;
  {
    MappedFile f = MappedFile::open(path.string(), MappedFile::Mode::kCopyInBackground);
    const uint64_t table = kRows * kCols * 4;
    auto be = make_cpu_backend(1);
    const TensorView lookup = be->prepare_weight(
        TensorView{DType::kF32, {kRows, kCols}, f.data(), table}, Backend::WeightUse::kLookup);
    const TensorView rows =
        be->prepare_weight(TensorView{DType::kF32, {kRows, kCols}, f.data() + table, table},
                           Backend::WeightUse::kRows);
    MappedFile::wait_for_background_copies();
    EXPECT_EQ(lookup.data, f.data());  // read in place, accounted as a weight
    EXPECT_EQ(be->weight_bytes(), 2 * table);
    const std::string name = path.filename().string();
    for (uint64_t at = 0; at < table; at += 2 << 20) {
      EXPECT_TRUE(mapped_from(f.data() + at + 100, name)) << at;
    }
    for (uint64_t at = 2 << 20; at + (2 << 20) < table; at += 2 << 20) {
      EXPECT_FALSE(mapped_from(f.data() + table + at + 100, name)) << at;
    }
    EXPECT_EQ(f.bytes(), content);
    (void)rows;
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace loom
