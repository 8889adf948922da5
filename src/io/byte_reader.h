// ByteReader — bounds-checked little-endian reads from an untrusted buffer. Every read states
// what it is reading, so a truncated file reports "byte 1234: truncated while reading the key
// of metadata entry 7" instead of reading past the end.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.h"

namespace loom {

class ByteReader {
 public:
  ByteReader(std::string_view source_name, const uint8_t* data, uint64_t size)
      : name_(source_name), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - pos_; }
  const uint8_t* data() const { return data_; }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));  // GGUF is little-endian, as is every host
    pos_ += sizeof(T);                             // loom targets (x86-64, aarch64)
    return value;
  }

  std::string_view read_bytes(uint64_t n, std::string_view what) {
    need(n, what);
    std::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      fail(ErrorCode::kCorruption,
           "{}: byte {}: file truncated while reading {} ({} bytes needed, {} left)", name_, pos_,
           what, n, remaining());
    }
  }

  // Throws kCorruption at the current position.
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    error_at(pos_, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  [[noreturn]] void error_at(uint64_t offset, fmt::format_string<Args...> format,
                             Args&&... args) const {
    fail(ErrorCode::kCorruption, "{}: byte {}: {}", name_, offset,
         fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  std::string_view name_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

}  // namespace loom
