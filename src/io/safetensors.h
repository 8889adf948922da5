// safetensors files: an 8-byte little-endian header length N, N bytes of JSON header
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}),
// then the data buffer; offsets are relative to the buffer. As the format's reference
// implementation requires, tensors must exactly tile the buffer: no overlap, no holes.
//
// Reading maps the file and never copies tensor data. Bad files throw loom::Error naming the
// file, the byte offset (for the binary framing) or the tensor and field (for the header).
// Thread-safety: immutable after open().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace loom {

inline constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;  // as the reference reader

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  uint64_t begin = 0;          // offset into the data buffer
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);
  // Parses caller-owned bytes (kept alive by the caller); `name` is used in errors.
  static SafetensorsFile parse(std::string name, const uint8_t* data, uint64_t size);

  const std::string& path() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<MappedFile> mapping_;
  std::string name_;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All the safetensors of a HF model folder: `model.safetensors`, or the shards listed in
// `model.safetensors.index.json` (each tensor looked up in the shard its weight_map names).
class SafetensorsSet {
 public:
  static SafetensorsSet open_dir(const std::string& dir);

  // Every tensor of every shard, in shard order.
  std::vector<const SafetensorsTensor*> tensors() const;
  const SafetensorsTensor* find(std::string_view name) const;
  const std::vector<SafetensorsFile>& files() const { return files_; }
  // Which file holds `tensor` (for error messages).
  const std::string& file_of(const SafetensorsTensor& tensor) const;

 private:
  std::vector<SafetensorsFile> files_;
};

}  // namespace loom
