#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_util.h"

namespace loom {
namespace {

using test::Bytes;
using test::expect_error;

Bytes file_with_header(const std::string& header, const std::string& data) {
  Bytes b;
  b.put<uint64_t>(header.size()).raw(header).raw(data);
  return b;
}

void expect_corrupt(const Bytes& b, std::initializer_list<std::string> needles) {
  expect_error([&] { SafetensorsFile::parse("bad.safetensors", b.data(), b.size()); },
               ErrorCode::kCorruption, needles);
}

TEST(Safetensors, ParsesTensorsAndMetadata) {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},)"
      R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"e":{"dtype":"I64","shape":[0],"data_offsets":[28,28]}})";
  Bytes b = file_with_header(header, std::string(28, 'z'));
  SafetensorsFile f = SafetensorsFile::parse("ok.safetensors", b.data(), b.size());
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "a");  // file order, not JSON order
  const SafetensorsTensor* t = f.find("b");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::kBF16);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->n_bytes, 12u);
  EXPECT_EQ(t->data, b.data() + 8 + header.size() + 16);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.find("e")->n_bytes, 0u);
}

TEST(SafetensorsMalformed, HeaderLengthPastEnd) {
  Bytes b;
  b.put<uint64_t>(1000).raw("{}");
  expect_corrupt(b, {"bad.safetensors", "byte 0", "header length 1000 runs past the end"});
}

TEST(SafetensorsMalformed, HugeHeaderLength) {
  Bytes b;
  b.put<uint64_t>(uint64_t{1} << 40).raw("{}");
  expect_corrupt(b, {"byte 0", "exceeds the 104857600-byte limit"});
}

TEST(SafetensorsMalformed, Truncated) {
  Bytes b;
  b.raw("\x05\x00");
  expect_corrupt(b, {"byte 0", "truncated", "header length"});
}

TEST(SafetensorsMalformed, HeaderNotJson) {
  expect_corrupt(file_with_header("{\"a\": [1, 2,", ""),
                 {"bad.safetensors", "byte 20", "not valid JSON"});
  expect_corrupt(file_with_header("[1,2]", ""), {"byte 8", "not a JSON object"});
}

TEST(SafetensorsMalformed, BadEntries) {
  expect_corrupt(file_with_header(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "1234"),
                 {"tensor 'w'", "'dtype' is missing"});
  expect_corrupt(
      file_with_header(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", "1234"),
      {"tensor 'w'", "unknown dtype \"Q4\""});
  expect_corrupt(
      file_with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "1234"),
      {"tensor 'w'", "not a non-negative integer"});
  expect_corrupt(
      file_with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "1234"),
      {"tensor 'w'", "'data_offsets' must be"});
  expect_corrupt(
      file_with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "1234"),
      {"tensor 'w'", "reversed"});
  expect_corrupt(file_with_header(R"({"w":7})", ""), {"tensor 'w'", "not an object"});
  expect_corrupt(file_with_header(R"({"__metadata__":{"k":1}})", ""), {"'k' is not a string"});
}

TEST(SafetensorsMalformed, OffsetsPastBuffer) {
  expect_corrupt(
      file_with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"),
      {"tensor 'w'", "run past the data buffer (4 bytes)"});
}

TEST(SafetensorsMalformed, SizeMismatch) {
  expect_corrupt(
      file_with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "1234"),
      {"tensor 'w'", "needs 8 bytes", "hold 4"});
}

TEST(SafetensorsMalformed, ShapeOverflow) {
  expect_corrupt(
      file_with_header(
          R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})",
          "1234"),
      {"tensor 'w'", "overflows 64 bits"});
  expect_corrupt(
      file_with_header(
          R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}})", "1234"),
      {"tensor 'w'", "byte size overflows"});
}

TEST(SafetensorsMalformed, OverlapHoleAndTrailingBytes) {
  expect_corrupt(file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                                  "123456"),
                 {"tensor 'b'", "overlaps"});
  expect_corrupt(
      file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "12345678"),
      {"tensor 'a'", "hole"});
  expect_corrupt(
      file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "12345678"),
      {"cover 4 bytes of the 8-byte data buffer"});
}

class ShardedDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_path("sharded-" +
                           std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    test::write_file(
        dir_ / "s1.safetensors",
        file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "1234").s);
    test::write_file(
        dir_ / "s2.safetensors",
        file_with_header(R"({"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "5678").s);
  }
  void index(const std::string& weight_map) {
    test::write_file(dir_ / "model.safetensors.index.json",
                     R"({"metadata":{},"weight_map":)" + weight_map + "}");
  }
  std::filesystem::path dir_;
};

TEST_F(ShardedDir, OpensAllShards) {
  index(R"({"a":"s1.safetensors","b":"s2.safetensors"})");
  SafetensorsSet set = SafetensorsSet::open_dir(dir_.string());
  EXPECT_EQ(set.files().size(), 2u);
  ASSERT_NE(set.find("b"), nullptr);
  EXPECT_EQ(set.find("b")->dtype, DType::kF16);
  EXPECT_EQ(set.file_of(*set.find("b")), (dir_ / "s2.safetensors").string());
  EXPECT_EQ(set.tensors().size(), 2u);
}

TEST_F(ShardedDir, MissingTensorInShard) {
  index(R"({"a":"s1.safetensors","b":"s1.safetensors"})");
  expect_error([&] { SafetensorsSet::open_dir(dir_.string()); }, ErrorCode::kCorruption,
               {"tensor 'b' is listed in weight_map but missing from s1.safetensors"});
}

TEST_F(ShardedDir, PathTraversalRejected) {
  index(R"({"a":"../s1.safetensors"})");
  expect_error([&] { SafetensorsSet::open_dir(dir_.string()); }, ErrorCode::kCorruption,
               {"weight_map['a']", "not a file name"});
}

TEST_F(ShardedDir, MissingShardFile) {
  index(R"({"a":"s9.safetensors"})");
  expect_error([&] { SafetensorsSet::open_dir(dir_.string()); }, ErrorCode::kNotFound,
               {"s9.safetensors"});
}

TEST_F(ShardedDir, IndexNotJson) {
  test::write_file(dir_ / "model.safetensors.index.json", "{\"weight_map\": ");
  expect_error([&] { SafetensorsSet::open_dir(dir_.string()); }, ErrorCode::kCorruption,
               {"model.safetensors.index.json", "not valid JSON"});
}

TEST(SafetensorsDir, NoWeights) {
  auto dir = test::temp_path("empty-model");
  std::filesystem::create_directories(dir);
  expect_error([&] { SafetensorsSet::open_dir(dir.string()); }, ErrorCode::kNotFound,
               {"no model.safetensors"});
}

}  // namespace
}  // namespace loom
