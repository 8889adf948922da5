#include "io/safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/checked_math.h"
#include "core/error.h"
#include "io/byte_reader.h"
#include "io/json_util.h"

namespace loom {

namespace {

using nlohmann::json;

SafetensorsTensor parse_entry(const std::string& file, const std::string& name, const json& e,
                              uint64_t buffer_size) {
  auto bad = [&](std::string_view what) {
    fail(ErrorCode::kCorruption, "{}: header: tensor '{}': {}", file, name, what);
  };
  if (!e.is_object()) bad("entry is not an object");
  SafetensorsTensor t;
  t.name = name;

  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) bad("'dtype' is missing or not a string");
  auto dtype = dtype_from_safetensors_name(dt->get_ref<const std::string&>());
  if (!dtype) bad(fmt::format("unknown dtype {:?}", dt->get_ref<const std::string&>()));
  t.dtype = *dtype;

  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) bad("'shape' is missing or not an array");
  uint64_t n_elements = 1;
  for (const json& d : *sh) {
    if (!d.is_number_unsigned()) bad("'shape' holds a value that is not a non-negative integer");
    uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(INT64_MAX)) bad("a dimension exceeds 2^63-1");
    auto p = checked_mul(n_elements, dim);
    if (!p) bad("element count overflows 64 bits");
    n_elements = *p;
    t.shape.push_back(static_cast<int64_t>(dim));
  }

  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned()) {
    bad("'data_offsets' must be an array of two non-negative integers");
  }
  uint64_t begin = (*off)[0].get<uint64_t>();
  uint64_t end = (*off)[1].get<uint64_t>();
  if (begin > end) bad(fmt::format("data_offsets [{}, {}] are reversed", begin, end));
  if (end > buffer_size) {
    bad(fmt::format("data_offsets [{}, {}] run past the data buffer ({} bytes)", begin, end,
                    buffer_size));
  }
  auto bytes = checked_mul(n_elements, dtype_info(t.dtype).block_bytes);
  if (!bytes) bad("byte size overflows 64 bits");
  if (*bytes != end - begin) {
    bad(fmt::format("shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}",
                    fmt::join(t.shape, "x"), dtype_name(t.dtype), *bytes, begin, end, end - begin));
  }
  t.begin = begin;
  t.n_bytes = end - begin;
  return t;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto mapping = std::make_shared<MappedFile>(MappedFile::open(path));
  SafetensorsFile file = parse(path, mapping->data(), mapping->size());
  file.mapping_ = std::move(mapping);
  return file;
}

SafetensorsFile SafetensorsFile::parse(std::string name, const uint8_t* data, uint64_t size) {
  SafetensorsFile file;
  file.name_ = std::move(name);
  ByteReader r(file.name_, data, size);
  uint64_t header_len = r.read<uint64_t>("the header length");
  if (header_len > kSafetensorsMaxHeader) {
    r.error_at(0, "header length {} exceeds the {}-byte limit", header_len, kSafetensorsMaxHeader);
  }
  if (header_len > r.remaining()) {
    r.error_at(0, "header length {} runs past the end of the file ({} bytes left)", header_len,
               r.remaining());
  }
  std::string_view header = r.read_bytes(header_len, "the header");
  uint64_t buffer_size = r.remaining();
  const uint8_t* buffer = data + r.pos();

  json j = parse_json_or_fail(header, file.name_, 8);
  if (!j.is_object()) r.error_at(8, "header is not a JSON object");

  for (auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) r.error_at(8, "header: '__metadata__' is not an object");
      for (auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          r.error_at(8, "header: '__metadata__' value of '{}' is not a string", mk);
        }
        file.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    SafetensorsTensor t = parse_entry(file.name_, key, value, buffer_size);
    t.data = buffer + t.begin;
    file.tensors_.push_back(std::move(t));
  }

  // File order (by offset) reads better than the JSON object's alphabetical order, and makes
  // the tiling check one pass: the tensors must tile the buffer exactly (safetensors spec: no
  // overlap, no holes).
  std::sort(file.tensors_.begin(), file.tensors_.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.n_bytes < b.n_bytes;
  });
  uint64_t expected = 0;
  for (size_t i = 0; i < file.tensors_.size(); ++i) {
    const SafetensorsTensor& t = file.tensors_[i];
    if (t.begin != expected) {
      fail(ErrorCode::kCorruption, "{}: tensor '{}' starts at data offset {}, expected {} ({})",
           file.name_, t.name, t.begin, expected,
           t.begin < expected ? "it overlaps the tensor before it" : "there is a hole");
    }
    expected = t.begin + t.n_bytes;
    file.index_.emplace(t.name, i);
  }
  if (expected != buffer_size) {
    fail(ErrorCode::kCorruption,
         "{}: tensors cover {} bytes of the {}-byte data buffer (the file has trailing bytes or "
         "is truncated)",
         file.name_, expected, buffer_size);
  }
  return file;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsSet SafetensorsSet::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  SafetensorsSet set;
  fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path)) {
    std::string text = read_text_file(index_path.string());
    json j = parse_json_or_fail(text, index_path.string(), 0);
    auto wm = j.is_object() ? j.find("weight_map") : j.end();
    if (wm == j.end() || !wm->is_object()) {
      fail(ErrorCode::kCorruption, "{}: 'weight_map' is missing or not an object",
           index_path.string());
    }
    std::vector<std::string> shard_names;
    for (auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string()) {
        fail(ErrorCode::kCorruption, "{}: weight_map['{}'] is not a string", index_path.string(),
             tensor);
      }
      const std::string& s = shard.get_ref<const std::string&>();
      if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..") {
        fail(ErrorCode::kCorruption,
             "{}: weight_map['{}'] = {:?} is not a file name in the model folder",
             index_path.string(), tensor, s);
      }
      if (std::find(shard_names.begin(), shard_names.end(), s) == shard_names.end()) {
        shard_names.push_back(s);
      }
    }
    for (const std::string& s : shard_names) {
      try {
        set.files_.push_back(SafetensorsFile::open((fs::path(dir) / s).string()));
      } catch (const Error& e) {
        // Name the index that sent us there: the shard's own message names the shard.
        fail(e.code(), "{}: weight_map names shard '{}': {}", index_path.string(), s, e.what());
      }
    }
    for (auto& [tensor, shard] : wm->items()) {
      const std::string& s = shard.get_ref<const std::string&>();
      size_t i = std::find(shard_names.begin(), shard_names.end(), s) - shard_names.begin();
      if (set.files_[i].find(tensor) == nullptr) {
        fail(ErrorCode::kCorruption, "{}: tensor '{}' is listed in weight_map but missing from {}",
             index_path.string(), tensor, s);
      }
    }
  } else if (fs::exists(single)) {
    set.files_.push_back(SafetensorsFile::open(single.string()));
  } else {
    fail(ErrorCode::kNotFound, "{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  // A tensor name must be unique across shards.
  std::unordered_map<std::string_view, const std::string*> seen;
  for (const SafetensorsFile& f : set.files_) {
    for (const SafetensorsTensor& t : f.tensors()) {
      auto [it, inserted] = seen.emplace(t.name, &f.path());
      if (!inserted) {
        fail(ErrorCode::kCorruption, "tensor '{}' appears in both {} and {}", t.name, *it->second,
             f.path());
      }
    }
  }
  return set;
}

std::vector<const SafetensorsTensor*> SafetensorsSet::tensors() const {
  std::vector<const SafetensorsTensor*> out;
  for (const SafetensorsFile& f : files_) {
    for (const SafetensorsTensor& t : f.tensors()) out.push_back(&t);
  }
  return out;
}

const SafetensorsTensor* SafetensorsSet::find(std::string_view name) const {
  for (const SafetensorsFile& f : files_) {
    if (const SafetensorsTensor* t = f.find(name)) return t;
  }
  return nullptr;
}

const std::string& SafetensorsSet::file_of(const SafetensorsTensor& tensor) const {
  for (const SafetensorsFile& f : files_) {
    if (f.find(tensor.name) == &tensor) return f.path();
  }
  LOOM_ASSERT(false && "tensor does not belong to this set");
  return files_.front().path();
}

}  // namespace loom
