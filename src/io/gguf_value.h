// GgufValue — one GGUF metadata value, keeping its exact wire type so that a file read and
// written back is identical. GGUF spec: value types 0..12 (u8, i8, u16, i16, u32, i32, f32,
// bool, string, array, u64, i64, f64); arrays hold elements of one type and may nest.
// Values own their data (strings are copied out of the file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace loom {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

std::string_view gguf_type_name(GgufType type);

class GgufValue;

struct GgufArray {
  GgufType elem_type = GgufType::kU8;
  std::vector<GgufValue> items;
  bool operator==(const GgufArray&) const;
};

class GgufValue {
 public:
  // Alternative index == GgufType value, so type() is just index().
  using Storage = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;

  GgufValue() = default;
  template <typename T>
  explicit GgufValue(T value) : storage_(std::move(value)) {}
  explicit GgufValue(const char* s) : storage_(std::string(s)) {}

  static GgufValue array(GgufType elem_type, std::vector<GgufValue> items);
  static GgufValue string_array(const std::vector<std::string>& items);

  GgufType type() const { return static_cast<GgufType>(storage_.index()); }
  const Storage& storage() const { return storage_; }

  // Numeric views: any integer type converts when the value fits; floats only to as_double.
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_double() const;  // integers and floats
  std::optional<bool> as_bool() const;
  const std::string* as_string() const { return std::get_if<std::string>(&storage_); }
  const GgufArray* as_array() const { return std::get_if<GgufArray>(&storage_); }

  // Human-readable rendering; long arrays are elided after `max_items`.
  std::string to_display_string(size_t max_items = 8) const;

  bool operator==(const GgufValue& other) const { return storage_ == other.storage_; }

 private:
  Storage storage_ = uint8_t{0};
};

}  // namespace loom
