// libFuzzer target: a whole model load from a small GGUF, as llama.cpp's fuzz_load_model does
// on OSS-Fuzz: the spec (architecture, hyper-parameters), the tensor mapping and shape checks,
// the tokenizer and chat template, and the one-token forward pass load_model runs. Every step
// must end in a model or a loom::Error; memory stays bounded by what the file holds.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "app/loaded_model.h"
#include "core/error.h"
#include "fuzz_util.h"

namespace {

std::string temp_file() {
  // /dev/shm when present: one write per input, never to disk.
  const std::filesystem::path shm = "/dev/shm";
  std::error_code ec;
  const auto dir =
      std::filesystem::is_directory(shm, ec) ? shm : std::filesystem::temp_directory_path();
  std::string path = (dir / ("loom-fuzz-model-" + std::to_string(getpid()) + ".gguf")).string();
  static std::string registered;
  registered = path;
  std::atexit([] { std::remove(registered.c_str()); });
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = temp_file();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  try {
    loom::app::LoadedModel m = loom::app::load_model(path, 1, /*want_tokenizer=*/true);
    if (m.tokenizer) {
      (void)m.tokenizer->encode("Hello world", true);
    }
    try {
      (void)loom::app::render_chat(m, {{{"role", "user"}, {"content", "hi"}}}, true);
    } catch (const loom::Error& e) {
      loom::fuzz::check_error(e);
    }
  } catch (const loom::Error& e) {
    loom::fuzz::check_error(e);
  }
  return 0;
}
