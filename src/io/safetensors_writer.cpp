#include "io/safetensors_writer.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/checked_math.h"
#include "core/error.h"
#include "core/output_file.h"

namespace loom {

void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsEntry& t : tensors) {
    const DTypeInfo& info = dtype_info(t.dtype);
    if (info.safetensors_name.empty()) {
      fail(ErrorCode::kInvalidArgument, "tensor '{}': {} cannot be stored in safetensors", t.name,
           info.name);
    }
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    auto bytes = checked_mul(n, info.block_bytes);
    if (!bytes || *bytes != t.n_bytes) {
      fail(ErrorCode::kInvalidArgument, "tensor '{}': {} bytes do not match its shape", t.name,
           t.n_bytes);
    }
    header[t.name] = {{"dtype", std::string(info.safetensors_name)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.n_bytes}}};
    offset += t.n_bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the spec allows
  const std::string tmp = output_staging_path(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) fail(ErrorCode::kIoError, "{}: cannot create file", tmp);
  uint64_t len = h.size();
  bool ok = std::fwrite(&len, 8, 1, f) == 1 && std::fwrite(h.data(), 1, h.size(), f) == h.size();
  for (const SafetensorsEntry& t : tensors) {
    ok = ok && (t.n_bytes == 0 || std::fwrite(t.data, 1, t.n_bytes, f) == t.n_bytes);
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    discard_output_file(tmp, path);
    fail(ErrorCode::kIoError, "{}: write failed (disk full?)", path);
  }
  commit_output_file(tmp, path);
}

}  // namespace loom
