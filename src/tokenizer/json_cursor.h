// Internal: typed access to a parsed JSON document that remembers where it is, so every
// error names the file and the JSON path (e.g. "model.merges[12]") of the offending value.
//
// Ownership: borrows the json value and the file name; both must outlive the cursor.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "core/error.h"

namespace loom::tokenizer {

class JsonCursor {
 public:
  JsonCursor(const nlohmann::json& value, std::string path, const std::string& file)
      : value_(&value), path_(std::move(path)), file_(&file) {}

  const nlohmann::json& value() const { return *value_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }
  bool is_null() const { return value_->is_null(); }

  [[noreturn]] void fail(ErrorCode code, const std::string& what) const {
    throw Error(code, fmt::format("{}: {}: {}", *file_, path_.empty() ? "(root)" : path_, what));
  }

  // A member that must exist.
  JsonCursor at(const std::string& key) const {
    if (!value_->is_object()) fail(ErrorCode::kCorruption, "expected an object");
    auto it = value_->find(key);
    if (it == value_->end()) {
      JsonCursor(*value_, child_path(key), *file_).fail(ErrorCode::kCorruption, "missing key");
    }
    return JsonCursor(*it, child_path(key), *file_);
  }
  // A member that may be absent or null.
  std::optional<JsonCursor> find(const std::string& key) const {
    if (!value_->is_object()) fail(ErrorCode::kCorruption, "expected an object");
    auto it = value_->find(key);
    if (it == value_->end() || it->is_null()) return std::nullopt;
    return JsonCursor(*it, child_path(key), *file_);
  }
  JsonCursor operator[](size_t index) const {
    return JsonCursor((*value_)[index], fmt::format("{}[{}]", path_, index), *file_);
  }
  size_t array_size() const {
    if (!value_->is_array()) fail(ErrorCode::kCorruption, "expected an array");
    return value_->size();
  }

  std::string string() const {
    if (!value_->is_string()) fail(ErrorCode::kCorruption, "expected a string");
    return value_->get<std::string>();
  }
  bool boolean() const {
    if (!value_->is_boolean()) fail(ErrorCode::kCorruption, "expected true or false");
    return value_->get<bool>();
  }
  int64_t integer() const {
    if (!value_->is_number_integer()) fail(ErrorCode::kCorruption, "expected an integer");
    return value_->get<int64_t>();
  }
  int32_t id() const {
    int64_t v = integer();
    if (v < 0 || v > INT32_MAX) fail(ErrorCode::kCorruption, fmt::format("id {} out of range", v));
    return static_cast<int32_t>(v);
  }
  double number() const {
    if (!value_->is_number()) fail(ErrorCode::kCorruption, "expected a number");
    return value_->get<double>();
  }

  std::string string_or(const std::string& key, std::string fallback) const {
    auto c = find(key);
    return c ? c->string() : fallback;
  }
  bool bool_or(const std::string& key, bool fallback) const {
    auto c = find(key);
    return c ? c->boolean() : fallback;
  }
  int64_t int_or(const std::string& key, int64_t fallback) const {
    auto c = find(key);
    return c ? c->integer() : fallback;
  }

 private:
  std::string child_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }

  const nlohmann::json* value_;
  std::string path_;
  const std::string* file_;
};

}  // namespace loom::tokenizer
