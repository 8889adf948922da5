// GGUF files: a reader (memory-mapped, bounds-checked) and a writer whose output llama.cpp loads.
//
// Layout (GGUF spec, v2/v3, little-endian): magic "GGUF", u32 version, u64 tensor_count,
// u64 kv_count, kv pairs (string key, u32 type, value), tensor infos (string name, u32 n_dims,
// u64 ne[n_dims] innermost first, u32 ggml type, u64 offset), padding to general.alignment
// (default 32), then tensor data; each tensor's offset is relative to the data section and a
// multiple of the alignment.
//
// Every count, length and offset read from a file is checked before use; a bad file throws
// loom::Error naming the file, the byte offset and what was expected. Reading never copies
// tensor data: GgufTensorInfo::data points into the mapping that the GgufFile owns.
// Thread-safety: a GgufFile is immutable after open(); GgufWriter is single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "io/gguf_value.h"

namespace loom {

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr uint32_t kGgufMaxDims = 4;  // GGML_MAX_DIMS

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the contiguous (innermost) dimension
  uint64_t offset = 0;       // relative to the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the file's mapping

  // Shape outermost first (ne reversed), as TensorView and safetensors use.
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and parses a file. Throws loom::Error (kNotFound, kIoError, kCorruption, kUnsupported).
  static GgufFile open(const std::string& path);
  // Parses bytes owned by the caller (which must outlive the result); `name` is used in errors.
  static GgufFile parse(std::string name, const uint8_t* data, uint64_t size);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters: nullopt when absent; throw kCorruption naming the key when the type is wrong.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const GgufArray* get_array(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  friend class GgufParser;
  std::shared_ptr<MappedFile> mapping_;  // null when parsing caller-owned bytes
  std::string name_;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// Builds a GGUF v3 file. Tensors are laid out in the order added, each padded to the alignment,
// exactly as llama.cpp's gguf writer does, so llama.cpp accepts the result.
class GgufWriter {
 public:
  // Sets (or replaces, keeping its first position) a metadata key.
  void set(const std::string& key, GgufValue value);
  // Sets general.alignment (u32, a power of two).
  void set_alignment(uint32_t alignment);
  // Adds a tensor. `data` is borrowed and must stay valid until write(); n_bytes must match the
  // dtype and shape (checked, kInvalidArgument otherwise). `ne` is in ggml order.
  void add_tensor(std::string name, DType dtype, std::vector<uint64_t> ne, const void* data,
                  uint64_t n_bytes);

  // Writes to `path` through a temporary file renamed into place, so a failed write never
  // leaves a half file under the final name.
  void write(const std::string& path) const;
  std::string write_to_string() const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<uint64_t> ne;
    const void* data;
    uint64_t n_bytes;
  };
  template <typename Sink>
  void emit(Sink& sink) const;

  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
  uint32_t alignment_ = kGgufDefaultAlignment;
};

}  // namespace loom
