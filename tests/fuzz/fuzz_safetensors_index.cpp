// libFuzzer target: arbitrary bytes as a model folder's model.safetensors.index.json, beside
// two real shards (model-00001-of-00002.safetensors holding 'a' and 'b', model-00002-...
// holding 'c'). Opening the set must end in the tensors or a loom::Error; a weight_map must
// never reach outside the folder (no path separators, "." or "..").
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "fuzz_util.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace {

std::filesystem::path make_folder() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("loom-fuzz-index-" + std::to_string(getpid()));
  fs::create_directories(dir);
  static const float values[4] = {1, 2, 3, 4};
  loom::write_safetensors(
      (dir / "model-00001-of-00002.safetensors").string(),
      {{"a", loom::DType::kF32, {2}, values, 8}, {"b", loom::DType::kF32, {1, 2}, values + 2, 8}});
  loom::write_safetensors((dir / "model-00002-of-00002.safetensors").string(),
                          {{"c", loom::DType::kF32, {4}, values, 16}});
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(
        std::filesystem::temp_directory_path() / ("loom-fuzz-index-" + std::to_string(getpid())),
        ec);
  });
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = make_folder();
  const std::string index = (dir / "model.safetensors.index.json").string();
  std::FILE* f = std::fopen(index.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  try {
    const loom::SafetensorsSet set = loom::SafetensorsSet::open_dir(dir.string());
    for (const loom::SafetensorsTensor* t : set.tensors()) {
      if (set.find(t->name) != t) __builtin_trap();
      (void)set.file_of(*t);
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
