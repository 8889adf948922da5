#include "io/gguf.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "test_util.h"

namespace loom {
namespace {

using test::Bytes;
using test::expect_error;

// A writer holding every metadata type, nested arrays, and tensors of plain and block types.
GgufWriter make_sample_writer(std::vector<std::vector<uint8_t>>& storage) {
  GgufWriter w;
  w.set("general.architecture", GgufValue("llama"));
  w.set("test.u8", GgufValue(uint8_t{200}));
  w.set("test.i8", GgufValue(int8_t{-100}));
  w.set("test.u16", GgufValue(uint16_t{60000}));
  w.set("test.i16", GgufValue(int16_t{-30000}));
  w.set("test.u32", GgufValue(uint32_t{4000000000u}));
  w.set("test.i32", GgufValue(int32_t{-2000000000}));
  w.set("test.f32", GgufValue(1.5f));
  w.set("test.bool", GgufValue(true));
  w.set("test.string", GgufValue(std::string("h\xc3\xa9llo\0world", 12)));
  w.set("test.u64", GgufValue(uint64_t{1} << 63));
  w.set("test.i64", GgufValue(int64_t{-1} << 62));
  w.set("test.f64", GgufValue(2.25));
  w.set("test.strings", GgufValue::string_array({"a", "", "ccc"}));
  w.set("test.nested", GgufValue::array(GgufType::kArray,
                                        {GgufValue::array(GgufType::kI32, {GgufValue(int32_t{1})}),
                                         GgufValue::array(GgufType::kI32, {})}));
  w.set("test.empty", GgufValue::array(GgufType::kF32, {}));
  storage.push_back(std::vector<uint8_t>(4 * 3 * 5, 7));   // F32 [5, 3] (ne = 3, 5)
  storage.push_back(std::vector<uint8_t>(18 * 2 * 2, 9));  // Q4_0 ne = 64, 2
  storage.push_back(std::vector<uint8_t>(2 * 7, 1));       // F16 ne = 7 (odd size: padding)
  w.add_tensor("a.weight", DType::kF32, {3, 5}, storage[0].data(), storage[0].size());
  w.add_tensor("b.weight", DType::kQ4_0, {64, 2}, storage[1].data(), storage[1].size());
  w.add_tensor("c.bias", DType::kF16, {7}, storage[2].data(), storage[2].size());
  return w;
}

TEST(Gguf, WriteReadRoundTripIsIdentical) {
  std::vector<std::vector<uint8_t>> storage;
  GgufWriter w = make_sample_writer(storage);
  auto path = test::temp_path("roundtrip.gguf");
  w.write(path.string());
  GgufFile f = GgufFile::open(path.string());

  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  ASSERT_EQ(f.metadata().size(), 16u);
  EXPECT_EQ(*f.get_int("test.u8"), 200);
  EXPECT_EQ(*f.get_int("test.i8"), -100);
  EXPECT_EQ(*f.get_int("test.u16"), 60000);
  EXPECT_EQ(*f.get_int("test.i16"), -30000);
  EXPECT_EQ(*f.get_int("test.u32"), 4000000000);
  EXPECT_EQ(*f.get_int("test.i32"), -2000000000);
  EXPECT_EQ(*f.get_float("test.f32"), 1.5);
  EXPECT_EQ(*f.get_bool("test.bool"), true);
  EXPECT_EQ(*f.get_string("test.string"), std::string("h\xc3\xa9llo\0world", 12));
  EXPECT_THROW(f.get_int("test.u64"), Error);  // 2^63 does not fit an int64
  EXPECT_EQ(*f.find("test.u64")->as_uint(), uint64_t{1} << 63);
  EXPECT_EQ(*f.get_int("test.i64"), int64_t{-1} << 62);
  EXPECT_EQ(*f.get_float("test.f64"), 2.25);
  const GgufArray* strings = f.get_array("test.strings");
  ASSERT_NE(strings, nullptr);
  ASSERT_EQ(strings->items.size(), 3u);
  EXPECT_EQ(*strings->items[2].as_string(), "ccc");
  const GgufArray* nested = f.get_array("test.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->elem_type, GgufType::kArray);
  EXPECT_EQ(nested->items[0].as_array()->items[0], GgufValue(int32_t{1}));

  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensorInfo* b = f.find_tensor("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kQ4_0);
  EXPECT_EQ(b->shape(), (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(b->n_bytes, 72u);
  EXPECT_EQ(b->offset % 32, 0u);
  EXPECT_EQ(std::vector<uint8_t>(b->data, b->data + b->n_bytes), storage[1]);
  const GgufTensorInfo* c = f.find_tensor("c.bias");
  EXPECT_EQ(std::vector<uint8_t>(c->data, c->data + c->n_bytes), storage[2]);

  // Rewriting what was read gives the same bytes.
  GgufWriter again;
  for (const auto& [k, v] : f.metadata()) again.set(k, v);
  for (const GgufTensorInfo& t : f.tensors()) {
    again.add_tensor(t.name, t.dtype, t.ne, t.data, t.n_bytes);
  }
  EXPECT_EQ(again.write_to_string(), test::read_file(path));
  EXPECT_EQ(w.write_to_string(), test::read_file(path));
}

// llama.cpp's own files (written by its gguf-py) come back byte for byte from loom's writer:
// the strongest check that llama.cpp will read what loom writes.
TEST(Gguf, RewritingLlamaCppFilesIsByteIdentical) {
  int n = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(test::data_dir() + "/ref/llamacpp-vocab")) {
    if (entry.path().extension() != ".gguf") continue;
    SCOPED_TRACE(entry.path().string());
    GgufFile f = GgufFile::open(entry.path().string());
    GgufWriter w;
    for (const auto& [k, v] : f.metadata()) w.set(k, v);
    for (const GgufTensorInfo& t : f.tensors()) {
      w.add_tensor(t.name, t.dtype, t.ne, t.data, t.n_bytes);
    }
    std::string original = test::read_file(entry.path());
    std::string rewritten = w.write_to_string();
    EXPECT_EQ(rewritten.size(), original.size());
    EXPECT_TRUE(rewritten == original);
    ++n;
  }
  EXPECT_GE(n, 10);
}

TEST(Gguf, WriterRejectsWrongByteCounts) {
  std::vector<uint8_t> data(10);
  GgufWriter w;
  expect_error([&] { w.add_tensor("x", DType::kF32, {3}, data.data(), 10); },
               ErrorCode::kInvalidArgument, {"'x'", "10 bytes given"});
  expect_error([&] { w.add_tensor("q", DType::kQ8_0, {33}, data.data(), 10); },
               ErrorCode::kInvalidArgument, {"'q'"});
  expect_error([&] { w.set("general.alignment", GgufValue(uint32_t{3})); },
               ErrorCode::kInvalidArgument, {"power of two"});
}

// --- malformed files: each gives a specific error with the byte offset --------------------

Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes b;
  b.raw("GGUF").put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  return b;
}

void expect_corrupt(const Bytes& b, std::initializer_list<std::string> needles,
                    ErrorCode code = ErrorCode::kCorruption) {
  expect_error([&] { GgufFile::parse("bad.gguf", b.data(), b.size()); }, code, needles);
}

TEST(GgufMalformed, WrongMagic) {
  Bytes b;
  b.raw("GGML").put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(0);
  expect_corrupt(b, {"bad.gguf", "byte 0", "not a GGUF file"});
}

TEST(GgufMalformed, EmptyFile) {
  expect_corrupt(Bytes(), {"bad.gguf", "byte 0", "truncated", "magic"});
}

TEST(GgufMalformed, UnsupportedVersions) {
  expect_corrupt(header(0, 0, 1), {"byte 4", "version 1 is not supported"});
  expect_corrupt(header(0, 0, 7), {"byte 4", "unknown GGUF version 7"});
  expect_corrupt(header(0, 0, 0x03000000), {"big-endian"}, ErrorCode::kUnsupported);
}

TEST(GgufMalformed, AbsurdCounts) {
  expect_corrupt(header(0, uint64_t{1} << 60), {"byte 16", "metadata count", "impossible"});
  expect_corrupt(header(uint64_t{1} << 60, 0), {"byte 8", "tensor count", "impossible"});
}

TEST(GgufMalformed, AbsurdStringLength) {
  Bytes b = header(0, 1);
  b.put<uint64_t>(uint64_t{1} << 62).raw(std::string(40, 'a'));
  expect_corrupt(b, {"byte 24", "length 4611686018427387904", "key of metadata entry 0"});
}

TEST(GgufMalformed, UnknownValueType) {
  Bytes b = header(0, 1);
  b.str("k").put<uint32_t>(13).put<uint32_t>(0);
  expect_corrupt(b, {"byte 33", "unknown metadata value type 13"});
}

TEST(GgufMalformed, AbsurdArrayCount) {
  Bytes b = header(0, 1);
  b.str("k").put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(uint64_t{1} << 61);
  expect_corrupt(b, {"'k'", "array of 2305843009213693952 f32 values cannot fit"});
}

TEST(GgufMalformed, DeeplyNestedArrays) {
  Bytes b = header(0, 1);
  b.str("k").put<uint32_t>(9);
  for (int i = 0; i < 100; ++i) b.put<uint32_t>(9).put<uint64_t>(1);
  b.put<uint32_t>(0).put<uint64_t>(0);
  expect_corrupt(b, {"'k'", "nested deeper"});
}

TEST(GgufMalformed, BoolOutOfRange) {
  Bytes b = header(0, 1);
  b.str("flag").put<uint32_t>(7).put<uint8_t>(2);
  expect_corrupt(b, {"'flag'", "bool value 2"});
}

TEST(GgufMalformed, DuplicateKey) {
  Bytes b = header(0, 2);
  b.str("k").put<uint32_t>(4).put<uint32_t>(1);
  b.str("k").put<uint32_t>(4).put<uint32_t>(2);
  expect_corrupt(b, {"duplicate metadata key 'k'"});
}

TEST(GgufMalformed, BadAlignment) {
  Bytes b = header(0, 1);
  b.str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
  expect_corrupt(b, {"general.alignment", "48", "power of two"});
  Bytes c = header(0, 1);
  c.str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
  expect_corrupt(c, {"general.alignment", "type u64, expected u32"});
}

Bytes one_tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                 uint64_t offset) {
  Bytes b = header(1, 0);
  b.str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) b.put<uint64_t>(d);
  b.put<uint32_t>(type).put<uint64_t>(offset);
  return b;
}

TEST(GgufMalformed, TensorPastEndOfFile) {
  Bytes b = one_tensor("w", {4, 4}, 0, 0);
  b.pad_to(32).raw(std::string(32, 'x'));  // 64 bytes needed, 32 present
  expect_corrupt(b, {"tensor 'w'", "extends past the end of the file"});
}

TEST(GgufMalformed, MisalignedOffset) {
  Bytes b = one_tensor("w", {4}, 0, 3);
  b.pad_to(32).raw(std::string(64, 'x'));
  expect_corrupt(b, {"tensor 'w'", "offset 3 is not a multiple of the alignment 32"});
}

TEST(GgufMalformed, ShapeOverflow) {
  Bytes b = one_tensor("w", {uint64_t{1} << 40, uint64_t{1} << 30}, 0, 0);
  expect_corrupt(b, {"tensor 'w'", "overflows 64 bits"});
  Bytes c = one_tensor("w", {uint64_t{1} << 62}, 0, 0);  // elements fit, bytes do not
  expect_corrupt(c, {"tensor 'w'", "byte size overflows 64 bits"});
  Bytes d = one_tensor("w", {uint64_t{1} << 63}, 0, 0);
  expect_corrupt(d, {"tensor 'w'", "larger than 2^63-1"});
}

TEST(GgufMalformed, TooManyDims) {
  expect_corrupt(one_tensor("w", {1, 1, 1, 1, 1}, 0, 0), {"'w' has 5 dimensions"});
}

TEST(GgufMalformed, UnknownTensorType) {
  expect_corrupt(one_tensor("w", {32}, 4, 0), {"'w' has unknown ggml type 4"});
  expect_corrupt(one_tensor("w", {32}, 999, 0), {"'w' has unknown ggml type 999"});
}

TEST(GgufMalformed, RowNotMultipleOfBlock) {
  expect_corrupt(one_tensor("w", {33}, 2, 0), {"'w'", "row length 33", "Q4_0 block size 32"});
}

TEST(GgufMalformed, DuplicateTensor) {
  Bytes b = header(2, 0);
  for (int i = 0; i < 2; ++i)
    b.str("w").put<uint32_t>(1).put<uint64_t>(8).put<uint32_t>(0).put<uint64_t>(0);
  b.pad_to(32).raw(std::string(32, 'x'));
  expect_corrupt(b, {"duplicate tensor name 'w'"});
}

// Every truncation of a valid file is a clean error (never a crash or an over-read, which
// the sanitizer build would catch).
TEST(GgufMalformed, EveryTruncationIsAnError) {
  std::vector<std::vector<uint8_t>> storage;
  std::string full = make_sample_writer(storage).write_to_string();
  GgufFile whole =
      GgufFile::parse("t.gguf", reinterpret_cast<const uint8_t*>(full.data()), full.size());
  const GgufTensorInfo& last = whole.tensors().back();
  // The trailing padding after the last tensor carries nothing; every cut before its end must
  // be an error.
  size_t needed = whole.data_offset() + last.offset + last.n_bytes;
  ASSERT_LT(needed, full.size());
  for (size_t n = 0; n < needed; ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    EXPECT_THROW(GgufFile::parse("t.gguf", prefix.data(), prefix.size()), Error) << n;
  }
  EXPECT_NO_THROW(
      GgufFile::parse("t.gguf", reinterpret_cast<const uint8_t*>(full.data()), full.size()));
}

TEST(GgufMalformed, WrongTypedGetterNamesKey) {
  std::vector<std::vector<uint8_t>> storage;
  std::string full = make_sample_writer(storage).write_to_string();
  GgufFile f =
      GgufFile::parse("t.gguf", reinterpret_cast<const uint8_t*>(full.data()), full.size());
  expect_error([&] { f.get_string("test.u32"); }, ErrorCode::kCorruption,
               {"'test.u32'", "type u32, expected string"});
  EXPECT_FALSE(f.get_string("absent").has_value());
}

}  // namespace
}  // namespace loom
